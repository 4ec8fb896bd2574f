"""The crawl's options with their defaults, and the Scrapy settings derived from them: polite by default.

:class:`CrawlOptions` is where every crawl option and its default is declared, once; the service's
configuration (``scheduler/config.py``, the only reader of the environment) fills it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from scrapy.settings import BaseSettings

# Every request says it comes from the site's front page, as a reader's browser would after
# arriving there (the spider sets it on each request so Scrapy's Referer middleware keeps it).
REFERER = "https://www.163.com/"

DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)

# Hosts NetEase itself redirects between (desktop, mobile, app share pages): a response from any
# other host is refused as off-site.
NETEASE_HOPS = ("www.163.com", "m.163.com", "3g.163.com", "c.m.163.com", "dy.163.com", "news.163.com")

# The key under which the options travel inside the Scrapy settings of a crawl.
OPTIONS_KEY = "HAOWATCH_OPTIONS"


@dataclass(frozen=True, slots=True)
class CrawlOptions:
    """Every option of a crawl, with its safe, polite default (``HAOWATCH_X`` sets field ``x``)."""

    site_url: str = "https://www.163.com"
    list_api_url: str = "https://dy.163.com"
    user_agent: str = DEFAULT_USER_AGENT
    concurrency: int = 2  # requests at once to the site
    download_delay: float = 2.0  # seconds between requests
    request_timeout: int = 30  # seconds
    retry_times: int = 4
    retry_backoff: float = 2.0  # seconds, doubled per retry
    max_backoff: int = 6 * 3600  # longest delay between checks of a failing source, seconds
    revisit_ages: tuple[int, ...] = (3600, 6 * 3600, 24 * 3600)  # re-fetch articles this long after first seen
    parse_workers: int = 1  # processes parsing pages beside the crawl (0: inline)
    max_fetch_failures: int = 8  # a listed article failing this often is no longer retried
    log_level: str = "INFO"
    allowed_hosts: tuple[str, ...] = NETEASE_HOPS  # besides the site and the list API
    max_response_bytes: int = 8 * 1024 * 1024  # a larger body (also after decompression) is refused
    max_header_bytes: int = 64 * 1024  # a larger header block is refused
    retry_wait_total: int = 120  # seconds one page may spend waiting between its retries
    # Discovery channels, blocks and evidence (issue 11).
    app_api_url: str = "https://c.m.163.com"
    cross_check_every: int = 48  # checks; at the default 30-minute interval: once a day
    gap_pages: int = 10
    proxies: tuple[str, ...] = ()
    impersonate: str | None = None
    block_slowdown_max: float = 120.0
    capture_per_reason: int = 100
    capture_max_age: int = 30 * 86400
    # The continuous crawl worker (issue 13).
    lease_seconds: int = 60  # claims on sources and articles, renewed by heartbeat while in flight
    poll_seconds: float = 5.0  # longest idle wait before looking for due work again (NOTIFY wakes sooner)
    fetch_retry_seconds: int = 1800  # a failed article fetch (or revisit) is tried again after this
    worker_max_age: int = 24 * 3600  # the worker is recycled (a fresh process) after this many seconds,
    worker_max_requests: int = 200_000  # ... or this many requests,
    worker_max_memory: int = 1024 * 1024 * 1024  # ... or when its resident memory passes this many bytes
    worker_owner: str | None = None  # set for a worker: the name its claims and checks carry


def crawl_options(settings: BaseSettings) -> CrawlOptions:
    """The options a crawl was started with (the defaults when started without any)."""
    options = settings.get(OPTIONS_KEY)
    return options if isinstance(options, CrawlOptions) else CrawlOptions()


class ImpersonationUnavailable(RuntimeError):
    """HAOWATCH_IMPERSONATE is set but the optional ``impersonate`` extra is not installed."""


def impersonation_settings(browser: str | None) -> dict[str, Any]:
    """Scrapy settings for browser TLS impersonation through scrapy-impersonate (optional extra)."""
    if not browser:
        return {}
    if importlib.util.find_spec("scrapy_impersonate") is None:
        raise ImpersonationUnavailable(
            "HAOWATCH_IMPERSONATE needs the optional extra: pip install 'haowatch[impersonate]'"
        )
    handler = "scrapy_impersonate.ImpersonateDownloadHandler"
    return {"DOWNLOAD_HANDLERS": {"http": handler, "https": handler}, "HAOWATCH_IMPERSONATE": browser}


def scrapy_settings(options: CrawlOptions, database_url: str) -> dict[str, Any]:
    """The Scrapy settings for one crawl process."""
    return {
        "BOT_NAME": "haowatch",
        "USER_AGENT": options.user_agent,
        "DEFAULT_REQUEST_HEADERS": {
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.6",
            "Referer": REFERER,
        },
        # Only pages of explicitly watched accounts are fetched, slowly; a robots.txt request per
        # crawl would double the cost of the steady state (one request per account).
        "ROBOTSTXT_OBEY": False,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        # No remote control of a crawl process: neither the telnet console nor the HTTP one.
        "REMOTE_CONTROL_ENABLED": False,
        "EXTENSIONS": {"scrapy.extensions.telnet.TelnetConsole": None,
                       "scrapy.extensions.remote_control.RemoteControl": None},
        # Politeness holds per proxy (a download slot each), so the overall cap grows with them.
        # Politeness is per download slot (below); the overall cap has room besides, so pages waiting
        # between retries (Retry-After) never hold up the rest of the work.
        "CONCURRENT_REQUESTS": options.concurrency * max(1, len(options.proxies)) + 8,
        "CONCURRENT_REQUESTS_PER_DOMAIN": options.concurrency,
        "DOWNLOAD_DELAY": options.download_delay,
        "DOWNLOAD_DELAY_JITTER": 0.5,
        "AUTOTHROTTLE_ENABLED": options.download_delay > 0,
        "AUTOTHROTTLE_START_DELAY": max(options.download_delay, 0.1),
        "AUTOTHROTTLE_MAX_DELAY": 60.0,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "DOWNLOAD_TIMEOUT": options.request_timeout,
        "DOWNLOAD_FAIL_ON_DATALOSS": True,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": options.retry_times,
        "RETRY_GIVE_UP_LOG_LEVEL": "WARNING",
        "RETRY_HTTP_CODES": [408, 429, 500, 502, 503, 504, 522, 524],
        "HAOWATCH_RETRY_BACKOFF_BASE": options.retry_backoff,
        "HAOWATCH_RETRY_BACKOFF_MAX": 60.0,
        "HAOWATCH_RETRY_AFTER_MAX": 300.0,
        "HAOWATCH_RETRY_WAIT_TOTAL": float(options.retry_wait_total),
        # Size caps: the body (Scrapy also applies it after decompression, so a gzip bomb stops at
        # the cap) and the header block. A refused response is not retried.
        "DOWNLOAD_MAXSIZE": options.max_response_bytes,
        "DOWNLOAD_WARNSIZE": 0,
        "HAOWATCH_MAX_HEADER_SIZE": options.max_header_bytes,
        # Only NetEase's own redirects are followed (see OffsiteMiddleware); never a meta refresh.
        "METAREFRESH_ENABLED": False,
        "REDIRECT_MAX_TIMES": 5,
        "HAOWATCH_ALLOWED_HOSTS": list(options.allowed_hosts),
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "crawler.middlewares.BackoffRetryMiddleware": 550,
            # Above the redirect middleware (600): sees each 3xx before it is followed.
            "crawler.middlewares.OffsiteMiddleware": 650,
            # Proxy choice before the slowdown gate, so both see the final download slot.
            "crawler.blockwatch.ProxyRotationMiddleware": 560,
            "crawler.blockwatch.BlockSlowdownMiddleware": 570,
        },
        "ITEM_PIPELINES": {
            "crawler.pipelines.ValidatePipeline": 100,
            "crawler.pipelines.DedupPipeline": 200,
            "crawler.pipelines.StorePipeline": 300,
        },
        # Block answers reach the callbacks, which record them as `blocked` (never as parse failures).
        "HTTPERROR_ALLOWED_CODES": [403, 404, 418, 429, 451],
        "HAOWATCH_DATABASE_URL": database_url,
        "HAOWATCH_SITE_URL": options.site_url,
        "HAOWATCH_LIST_API_URL": options.list_api_url,
        OPTIONS_KEY: options,
        "HAOWATCH_PROXIES": list(options.proxies),
        "HAOWATCH_BLOCK_SLOWDOWN_MAX": options.block_slowdown_max,
        **impersonation_settings(options.impersonate),
        # Scrapy's records go to the root logger, which haowatch routes into loguru.
        "LOG_INSTALL_ROOT_HANDLER": False,
        "LOG_FORMATTER": "crawler.logformatter.ShortLogFormatter",
        "LOG_LEVEL": "DEBUG" if options.log_level in ("DEBUG", "TRACE") else "INFO",
        "LOGSTATS_INTERVAL": 60.0,
        "MEMUSAGE_ENABLED": False,
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
        # Scrapy starts this many tasks for the output of every callback, however few items it has
        # (a handful here); its default of 100 made task creation a third of the CPU of a check.
        "CONCURRENT_ITEMS": 16,
        # A worker runs for days: its queue decides what to fetch (claims), and a set of every URL
        # ever seen would only grow.
        **({"DUPEFILTER_CLASS": "scrapy.dupefilters.BaseDupeFilter"} if options.worker_owner else {}),
    }
