"""The health and metrics endpoint: ``/healthz`` and ``/metrics`` (bound to 127.0.0.1 by default)."""

from __future__ import annotations

import errno
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import psycopg
from loguru import logger

from db import status as status_db
from db.connection import connect
from scheduler.status import render_metrics


class StartupError(RuntimeError):
    """The service cannot start (for example its health port is taken)."""


class _Service(Protocol):
    counters: Any

    @property
    def healthy(self) -> bool: ...


class HealthServer:
    """A small threaded HTTP server; each request asks the database afresh (with a short timeout)."""

    def __init__(self, host: str, port: int, database_url: str, service: _Service) -> None:
        self.host, self.port = host, port
        self.database_url = database_url
        self.service = service
        self._server: ThreadingHTTPServer | None = None

    def _overview(self) -> dict[str, Any] | None:
        try:
            with connect(self.database_url) as conn:
                conn.execute("SET statement_timeout = '5s'")
                return status_db.overview(conn)
        except psycopg.Error as exc:
            logger.warning("health check: database unavailable: {}", str(exc).splitlines()[0] if str(exc) else exc)
            return None

    def _db_ok(self) -> bool:
        try:
            with psycopg.connect(self.database_url, connect_timeout=3, autocommit=True) as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.Error:
            return False

    def start(self) -> None:
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/healthz":
                    db_ok = server_self._db_ok()
                    scheduler_ok = server_self.service.healthy
                    code = 200 if db_ok and scheduler_ok else 503
                    body = json.dumps({"status": "ok" if code == 200 else "unhealthy",
                                       "database": db_ok, "scheduler": scheduler_ok}).encode()
                    self._reply(code, body, "application/json")
                elif self.path.split("?")[0] == "/metrics":
                    counters = dict(server_self.service.counters)
                    counters["scheduler_running"] = 1.0 if server_self.service.healthy else 0.0
                    text = render_metrics(server_self._overview(), counters)
                    self._reply(200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")
                else:
                    self._reply(404, b"not found\n", "text/plain")

            def _reply(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        try:
            self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        except OSError as exc:
            # An unknown or foreign address is the host's fault; a taken or forbidden port the port's.
            bad_host = isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL
            variable = "HAOWATCH_HTTP_HOST" if bad_host else "HAOWATCH_HTTP_PORT"
            raise StartupError(
                f"cannot serve health on {self.host}:{self.port} ({exc.strerror}); set {variable}"
            ) from None
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True, name="health").start()
        logger.info("health and metrics on http://{}:{}/healthz and /metrics", self.host,
                    self._server.server_address[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
