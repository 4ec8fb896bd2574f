"""All configuration, read from the environment (and an optional ``.env`` file) in this one place.

Defaults are safe and polite: one request at a time per host, seconds between requests, a desktop
browser identity, health endpoint bound to loopback only.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit

from crawler.settings import CrawlOptions

# The crawl declares its options and their defaults; the settings below take those defaults from here.
_CRAWL = CrawlOptions()


class ConfigError(ValueError):
    """A setting has a value haowatch cannot use; the message names the variable."""


# ASCII digits only: str.isdigit()/\d would accept fullwidth and Arabic-Indic digits too.
_DURATION_RE = re.compile(r"^\s*([0-9]{1,12}(?:\.[0-9]{1,9})?)\s*(s|sec|m|min|h|d)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}

MIN_INTERVAL_SECONDS = 1
MAX_INTERVAL_SECONDS = 366 * 86400  # also a CHECK constraint on sources.interval (migration 004)


def shorten(text: str, limit: int = 80) -> str:
    """``repr`` of user input, cut to about ``limit`` characters so a huge argument is not echoed whole."""
    if len(text) <= limit:
        return repr(text)
    return repr(text[:limit]) + f"… ({len(text)} characters)"


def parse_duration(text: str, maximum: int = MAX_INTERVAL_SECONDS) -> int:
    """Parse ``90s``, ``15m``, ``2h``, ``1d`` or plain seconds into whole seconds (1 s to ``maximum``)."""
    match = _DURATION_RE.match(text)
    if not match:
        raise ValueError(f"{shorten(text)} is not a duration (examples: 90s, 15m, 2h)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    if seconds < MIN_INTERVAL_SECONDS:
        raise ValueError(f"{shorten(text)} is shorter than one second")
    if seconds > maximum:
        raise ValueError(f"{shorten(text)} is longer than {format_duration(maximum)}")
    return int(seconds)


def format_duration(seconds: int) -> str:
    """Render seconds the way users type them: ``30m``, ``2h``, ``90s``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting haowatch reads. Field ``x`` comes from ``HAOWATCH_X`` unless noted.

    Fields named like a :class:`~crawler.settings.CrawlOptions` field are that crawl option (same
    default); :meth:`crawl_options` hands them to the crawl.
    """

    database_url: str | None = None  # DATABASE_URL; None means the embedded server
    site_url: str = _CRAWL.site_url
    list_api_url: str = _CRAWL.list_api_url
    data_dir: Path | None = None
    pg_bindir: Path | None = None
    log_level: str = _CRAWL.log_level
    log_json: bool = False
    user_agent: str = _CRAWL.user_agent
    concurrency: int = _CRAWL.concurrency
    download_delay: float = _CRAWL.download_delay
    request_timeout: int = _CRAWL.request_timeout
    retry_times: int = _CRAWL.retry_times
    retry_backoff: float = _CRAWL.retry_backoff
    tick_seconds: int = 60
    default_interval: int = 30 * 60  # of a source added without an interval
    max_backoff: int = _CRAWL.max_backoff
    crawl_timeout: int = 30 * 60
    lease_seconds: int = _CRAWL.lease_seconds
    revisit_ages: tuple[int, ...] = _CRAWL.revisit_ages
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    sources_per_crawl: int = 200
    parse_workers: int = _CRAWL.parse_workers
    http_token: str | None = None  # HAOWATCH_HTTP_TOKEN; required when http_host is not loopback
    notify_max_attempts: int = 12
    notify_retry_seconds: int = 30
    notify_max_backoff_seconds: int = 3600
    notify_lease_seconds: int = 120
    health_stale_ticks: int = 5
    db_wait: int = 120  # HAOWATCH_DB_WAIT: how long `run` and `db upgrade` wait for DATABASE_URL at start
    allowed_hosts: tuple[str, ...] = _CRAWL.allowed_hosts
    max_response_bytes: int = _CRAWL.max_response_bytes
    max_header_bytes: int = _CRAWL.max_header_bytes
    retry_wait_total: int = _CRAWL.retry_wait_total
    # Discovery channels, blocks and evidence (issue 11).
    app_api_url: str = _CRAWL.app_api_url
    cross_check_every: int = _CRAWL.cross_check_every
    gap_pages: int = _CRAWL.gap_pages
    proxies: tuple[str, ...] = _CRAWL.proxies
    impersonate: str | None = _CRAWL.impersonate
    block_slowdown_max: float = _CRAWL.block_slowdown_max
    capture_per_reason: int = _CRAWL.capture_per_reason
    capture_max_age: int = _CRAWL.capture_max_age
    # The continuous crawl worker (issue 13).
    poll_seconds: float = _CRAWL.poll_seconds
    fetch_retry_seconds: int = _CRAWL.fetch_retry_seconds
    worker_max_age: int = _CRAWL.worker_max_age
    worker_max_requests: int = _CRAWL.worker_max_requests
    worker_max_memory: int = _CRAWL.worker_max_memory

    def crawl_options(self) -> CrawlOptions:
        """The crawl's options as configured (options without a setting keep their default)."""
        names = {f.name for f in fields(Settings)}
        return CrawlOptions(**{f.name: getattr(self, f.name) for f in fields(CrawlOptions) if f.name in names})


_DEFAULTS = Settings()


_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _read_dotenv(path: Path) -> dict[str, str]:
    # Errors name the file and line only: never the line's text, which may hold a password.
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    values: dict[str, str] = {}
    for number, raw_bytes in enumerate(data.splitlines(), start=1):
        try:
            raw = raw_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: line {number} is not UTF-8 text") from None
        if "\x00" in raw:
            raise ConfigError(f"{path}: line {number} contains a NUL character")
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line or not _ENV_KEY_RE.match(line.removeprefix("export ").partition("=")[0].strip()):
            raise ConfigError(f"{path}: line {number} is not NAME=value")
        key, _, value = line.removeprefix("export ").partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def _env(environ: Mapping[str, str]) -> dict[str, str]:
    merged: dict[str, str] = {}
    dotenv = Path(environ.get("HAOWATCH_ENV_FILE", ".env"))
    if dotenv.is_file():
        merged.update(_read_dotenv(dotenv))
    merged.update(environ)  # the real environment wins over .env
    return merged


_INT_RE = re.compile(r"^\s*[+-]?[0-9]{1,12}\s*$")
_FLOAT_RE = re.compile(r"^\s*[+-]?[0-9]{0,12}(?:\.[0-9]{0,9})?\s*$")
_SIZE_RE = re.compile(r"^\s*([0-9]{1,12})\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
               "g": 1024**3, "gb": 1024**3, "gib": 1024**3}


def _int(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    if not _INT_RE.match(raw):  # ASCII digits only, no 1e3, no 10**100-digit strings
        raise ConfigError(f"{name}={shorten(raw)} is not a whole number")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name}={shorten(raw)} must be between {minimum} and {maximum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float, maximum: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    # Plain decimals only: float() would also take inf, nan and 1e20.
    if not _FLOAT_RE.match(raw) or not any(ch.isdigit() for ch in raw):
        raise ConfigError(f"{name}={shorten(raw)} is not a number (plain decimal, e.g. 2.5)")
    value = float(raw)
    if not math.isfinite(value) or not minimum <= value <= maximum:
        raise ConfigError(f"{name}={shorten(raw)} must be between {minimum:g} and {maximum:g}")
    return value


def _size(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    match = _SIZE_RE.match(raw)
    if not match:
        raise ConfigError(f"{name}={shorten(raw)} is not a size (examples: 8MB, 512KB, 1048576)")
    value = int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name}={shorten(raw)} must be between {minimum} and {maximum} bytes")
    return value


_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?$")


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", host):  # looks like an IPv4 address but is not one (300.1.2.3)
        return False
    return bool(_HOSTNAME_RE.match(host.lower()))


def _host(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not _valid_host(raw.strip("[]")):
        raise ConfigError(f"{name}={shorten(raw)} is not an IP address or host name")
    return raw.strip("[]")


def _hosts(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None or raw.strip() == "":  # blank means the default, as for every setting (compose passes "")
        return default
    if raw.strip().lower() == "none":
        return ()
    hosts: list[str] = []
    for part in raw.split(","):
        entry = part.strip().lower()
        if not entry:
            continue
        host, _, port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if port and (not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535):
            raise ConfigError(f"{name}: {shorten(part.strip())} has a bad port")
        bare = host.removeprefix("*.").removeprefix(".")
        if not _valid_host(bare.strip("[]")):
            raise ConfigError(f"{name}: {shorten(part.strip())} is not a host name (host, host:port or *.domain)")
        hosts.append(entry)
    return tuple(hosts)


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use 1 or 0)")


def _duration(env: Mapping[str, str], name: str, default: int, minimum: int = 1,
              maximum: int = MAX_INTERVAL_SECONDS) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = parse_duration(raw, maximum)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    if value < minimum:
        raise ConfigError(f"{name}: {shorten(raw)} is shorter than {format_duration(minimum)}")
    return value


def _wait(env: Mapping[str, str], name: str, default: int, maximum: int = 86400) -> int:
    """A duration that may also be 0 (do not wait)."""
    raw = env.get(name)
    if raw is not None and raw.strip() == "0":
        return 0
    value = _duration(env, name, default)
    if value > maximum:
        raise ConfigError(f"{name}={raw!r} must be at most {format_duration(maximum)}")
    return value


def _http_url(env: Mapping[str, str], name: str, default: str) -> str:
    raw = (env.get(name) or default).strip()
    try:
        parts = urlsplit(raw)
        port = parts.port  # raises for a port out of range or not a number
    except ValueError:
        raise ConfigError(f"{name}={shorten(raw)} is not an http(s) URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0 or not raw.isascii():
        raise ConfigError(f"{name}={shorten(raw)} is not an http(s) URL")
    return raw.rstrip("/")


def _proxies(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("HAOWATCH_PROXIES", "").strip()
    proxies: list[str] = []
    for number, part in enumerate((p.strip() for p in raw.replace("\n", ",").split(",")), 1):
        if not part:
            continue
        # Proxy URLs may carry passwords: errors name the entry, never its text.
        try:
            parts = urlsplit(part)
            port = parts.port
        except ValueError:
            raise ConfigError(f"HAOWATCH_PROXIES: entry {number} is not a proxy URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
            raise ConfigError(f"HAOWATCH_PROXIES: entry {number} is not an http:// or https:// proxy URL")
        proxies.append(part.rstrip("/"))
    if len(proxies) > 1000:
        raise ConfigError("HAOWATCH_PROXIES: at most 1000 proxies")
    return tuple(dict.fromkeys(proxies))


_IMPERSONATE_RE = re.compile(r"^[a-z][a-z0-9_.]{1,40}$")


def _impersonate(env: Mapping[str, str]) -> str | None:
    raw = env.get("HAOWATCH_IMPERSONATE", "").strip().lower()
    if raw in ("", "0", "off", "no", "false"):
        return None
    if not _IMPERSONATE_RE.match(raw):
        raise ConfigError(f"HAOWATCH_IMPERSONATE={raw!r} is not a browser name (e.g. chrome, safari, edge)")
    if importlib.util.find_spec("scrapy_impersonate") is None:
        raise ConfigError("HAOWATCH_IMPERSONATE needs the optional extra: pip install 'haowatch[impersonate]'")
    return raw


def _database_url(env: Mapping[str, str]) -> str | None:
    raw = env.get("DATABASE_URL", "").strip()
    if not raw:
        return None
    if not raw.startswith(("postgresql://", "postgres://")) and "=" not in raw:
        raise ConfigError("DATABASE_URL must be a postgresql:// URL or a libpq key=value string")
    return raw


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every setting from ``environ`` (default: the process environment plus ``.env``).

    Raises :class:`ConfigError` naming the variable when a value is unusable.
    """
    env = _env(os.environ if environ is None else environ)
    level = env.get("HAOWATCH_LOG_LEVEL", "").strip().upper() or _DEFAULTS.log_level
    if level not in ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"HAOWATCH_LOG_LEVEL={shorten(level)} is not a log level")
    user_agent = env.get("HAOWATCH_USER_AGENT", "").strip() or _DEFAULTS.user_agent
    if not user_agent.isascii() or not user_agent.isprintable() or len(user_agent) > 512:
        raise ConfigError("HAOWATCH_USER_AGENT must be printable ASCII of at most 512 characters")
    revisit_raw = env.get("HAOWATCH_REVISIT_AGES", "").strip()
    revisit = _DEFAULTS.revisit_ages
    if revisit_raw:
        try:
            revisit = tuple(sorted(parse_duration(part) for part in revisit_raw.split(",") if part.strip()))
        except ValueError as exc:
            raise ConfigError(f"HAOWATCH_REVISIT_AGES: {exc}") from None
        if len(revisit) > 20:
            raise ConfigError("HAOWATCH_REVISIT_AGES: at most 20 ages")
    data_dir = env.get("HAOWATCH_DATA_DIR", "").strip()
    pg_bindir = env.get("HAOWATCH_PG_BINDIR", "").strip()
    return Settings(
        database_url=_database_url(env),
        site_url=_http_url(env, "HAOWATCH_SITE_URL", _DEFAULTS.site_url),
        list_api_url=_http_url(env, "HAOWATCH_LIST_API_URL", _DEFAULTS.list_api_url),
        data_dir=Path(data_dir).expanduser() if data_dir else None,
        pg_bindir=Path(pg_bindir).expanduser() if pg_bindir else None,
        log_level=level,
        log_json=_bool(env, "HAOWATCH_LOG_JSON", _DEFAULTS.log_json),
        user_agent=user_agent,
        concurrency=_int(env, "HAOWATCH_CONCURRENCY", _DEFAULTS.concurrency, 1, 16),
        download_delay=_float(env, "HAOWATCH_DOWNLOAD_DELAY", _DEFAULTS.download_delay, 0.0, 600.0),
        request_timeout=_int(env, "HAOWATCH_REQUEST_TIMEOUT", _DEFAULTS.request_timeout, 1, 600),
        retry_times=_int(env, "HAOWATCH_RETRY_TIMES", _DEFAULTS.retry_times, 0, 20),
        retry_backoff=_float(env, "HAOWATCH_RETRY_BACKOFF", _DEFAULTS.retry_backoff, 0.0, 600.0),
        tick_seconds=_int(env, "HAOWATCH_TICK_SECONDS", _DEFAULTS.tick_seconds, 1, 86400),
        default_interval=_duration(env, "HAOWATCH_DEFAULT_INTERVAL", _DEFAULTS.default_interval),
        max_backoff=_duration(env, "HAOWATCH_MAX_BACKOFF", _DEFAULTS.max_backoff),
        crawl_timeout=_duration(env, "HAOWATCH_CRAWL_TIMEOUT", _DEFAULTS.crawl_timeout, 10, 7 * 86400),
        lease_seconds=_duration(env, "HAOWATCH_LEASE", _DEFAULTS.lease_seconds, 10, 7 * 86400),
        revisit_ages=revisit,
        http_host=_host(env, "HAOWATCH_HTTP_HOST", _DEFAULTS.http_host),
        http_port=_int(env, "HAOWATCH_HTTP_PORT", _DEFAULTS.http_port, 0, 65535),
        sources_per_crawl=_int(env, "HAOWATCH_SOURCES_PER_CRAWL", _DEFAULTS.sources_per_crawl, 1, 100000),
        parse_workers=_int(env, "HAOWATCH_PARSE_WORKERS", _DEFAULTS.parse_workers, 0, 16),
        http_token=env.get("HAOWATCH_HTTP_TOKEN", "").strip() or None,
        notify_max_attempts=_int(env, "HAOWATCH_NOTIFY_MAX_ATTEMPTS", _DEFAULTS.notify_max_attempts, 1, 1000),
        notify_retry_seconds=_int(env, "HAOWATCH_NOTIFY_RETRY_SECONDS", _DEFAULTS.notify_retry_seconds, 1, 86400),
        notify_max_backoff_seconds=_int(env, "HAOWATCH_NOTIFY_MAX_BACKOFF_SECONDS",
                                        _DEFAULTS.notify_max_backoff_seconds, 1, 7 * 86400),
        notify_lease_seconds=_int(env, "HAOWATCH_NOTIFY_LEASE_SECONDS", _DEFAULTS.notify_lease_seconds, 2, 3600),
        health_stale_ticks=_int(env, "HAOWATCH_HEALTH_STALE_TICKS", _DEFAULTS.health_stale_ticks, 1, 10000),
        db_wait=_wait(env, "HAOWATCH_DB_WAIT", _DEFAULTS.db_wait),
        allowed_hosts=_hosts(env, "HAOWATCH_ALLOWED_HOSTS", _DEFAULTS.allowed_hosts),
        max_response_bytes=_size(env, "HAOWATCH_MAX_RESPONSE_SIZE", _DEFAULTS.max_response_bytes,
                                 64 * 1024, 64 * 1024 * 1024),
        max_header_bytes=_size(env, "HAOWATCH_MAX_HEADER_SIZE", _DEFAULTS.max_header_bytes, 4 * 1024, 1024 * 1024),
        retry_wait_total=_duration(env, "HAOWATCH_RETRY_WAIT_TOTAL", _DEFAULTS.retry_wait_total, 1, 3600),
        app_api_url=_http_url(env, "HAOWATCH_APP_API_URL", _DEFAULTS.app_api_url),
        cross_check_every=_int(env, "HAOWATCH_CROSS_CHECK_EVERY", _DEFAULTS.cross_check_every, 0, 100000),
        gap_pages=_int(env, "HAOWATCH_GAP_PAGES", _DEFAULTS.gap_pages, 1, 100),
        proxies=_proxies(env),
        impersonate=_impersonate(env),
        block_slowdown_max=_float(env, "HAOWATCH_BLOCK_SLOWDOWN_MAX", _DEFAULTS.block_slowdown_max,
                                          0.0, 3600.0),
        capture_per_reason=_int(env, "HAOWATCH_CAPTURE_PER_REASON", _DEFAULTS.capture_per_reason, 0, 100000),
        capture_max_age=_duration(env, "HAOWATCH_CAPTURE_MAX_AGE", _DEFAULTS.capture_max_age, 3600, 3650 * 86400),
        poll_seconds=_float(env, "HAOWATCH_POLL_SECONDS", _DEFAULTS.poll_seconds, 0.1, 3600.0),
        fetch_retry_seconds=_duration(env, "HAOWATCH_FETCH_RETRY", _DEFAULTS.fetch_retry_seconds, 1, 7 * 86400),
        worker_max_age=_duration(env, "HAOWATCH_WORKER_MAX_AGE", _DEFAULTS.worker_max_age, 60, 366 * 86400),
        worker_max_requests=_int(env, "HAOWATCH_WORKER_MAX_REQUESTS", _DEFAULTS.worker_max_requests, 100,
                                 10**9),
        worker_max_memory=_size(env, "HAOWATCH_WORKER_MAX_MEMORY", _DEFAULTS.worker_max_memory,
                                64 * 1024 * 1024, 64 * 1024 * 1024 * 1024),
    )
