"""Which hosts a response may come from, and the refusals of responses haowatch will not use.

Every request is built on the configured site base, but a server may redirect anywhere: content
from another host (or another port of the same host) must never be stored under a NetEase URL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest


class RefusedResponse(IgnoreRequest):
    """A response haowatch refuses to use (never retried); ``reason`` is a short stable word."""

    reason = "refused"


class OffsiteResponse(RefusedResponse):
    """The response (or a redirect) points to a host that is not allowed."""

    reason = "off-site"


class RedirectLoop(RefusedResponse):
    """A redirect points back to a URL already visited for the same request."""

    reason = "redirect loop"


class TooLarge(RefusedResponse):
    """The headers or the (decompressed) body exceed the configured size."""

    reason = "too large"


@dataclass(frozen=True, slots=True)
class _Rule:
    host: str
    port: int | None  # None: the default ports (80 and 443)
    subdomains: bool


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


class AllowedHosts:
    """Hosts (with ports) a response may come from."""

    def __init__(self, urls: Iterable[str], entries: Iterable[str] = ()) -> None:
        rules: list[_Rule] = []
        for url in urls:
            parts = urlsplit(url)
            rules.append(_Rule((parts.hostname or "").lower(), parts.port, False))
        for entry in entries:
            entry = entry.strip().lower()
            if not entry:
                continue
            host, port = entry, None
            if entry.count(":") == 1:
                host, _, port_text = entry.partition(":")
                port = int(port_text)
            subdomains = host.startswith(("*.", "."))
            rules.append(_Rule(host.removeprefix("*.").removeprefix(".").strip("[]"), port, subdomains))
        self.rules = tuple(rules)

    def allows(self, url: str) -> bool:
        """Whether ``url`` is http(s) on an allowed host and port."""
        try:
            parts = urlsplit(url)
            port = parts.port or _default_port(parts.scheme)
        except ValueError:
            return False
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            return False
        for rule in self.rules:
            host_ok = host == rule.host or (rule.subdomains and host.endswith("." + rule.host))
            port_ok = port in (80, 443) if rule.port is None else port == rule.port
            if host_ok and port_ok:
                return True
        return False
