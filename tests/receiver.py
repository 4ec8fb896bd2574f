"""A webhook receiver on 127.0.0.1 for notification tests: records what Apprise's json:// posts.

It can be taken down (the port refuses connections) and brought back on the same port, and it can
be told to hang on requests (to kill a sender mid-delivery).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """Collects JSON posts; ``received`` is every post in arrival order (duplicates included)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.hang_seconds = 0.0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def url(self, path: str = "/hook") -> str:
        """The Apprise URL that posts here."""
        return f"json://127.0.0.1:{self.port}{path}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length)
                if receiver.hang_seconds:
                    time.sleep(receiver.hang_seconds)
                with receiver._lock:
                    receiver.received.append({**json.loads(data), "_path": self.path.split("?")[0]})
                    receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def event_ids(self, path: str | None = None) -> list[int]:
        """Event ids received (at ``path`` only, when given), in arrival order."""
        with self._lock:
            return [int(p["event_id"]) for p in self.received if "event_id" in p and path in (None, p["_path"])]

    def events(self, path: str | None = None) -> list[dict[str, Any]]:
        """The event documents received (at ``path`` only, when given)."""
        with self._lock:
            return [p["event"] for p in self.received if "event" in p and path in (None, p["_path"])]

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
