"""Scrapy settings derived from haowatch's settings: polite by default."""

from __future__ import annotations

import importlib.util
from typing import Any

from scheduler.config import Settings

# Every request says it comes from the site's front page, as a reader's browser would after
# arriving there (the spider sets it on each request so Scrapy's Referer middleware keeps it).
REFERER = "https://www.163.com/"


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


def scrapy_settings(settings: Settings, database_url: str) -> dict[str, Any]:
    """The Scrapy settings for one crawl process."""
    return {
        "BOT_NAME": "haowatch",
        "USER_AGENT": settings.user_agent,
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
        "CONCURRENT_REQUESTS": max(2, settings.concurrency * max(1, len(settings.proxies))),
        "CONCURRENT_REQUESTS_PER_DOMAIN": settings.concurrency,
        "DOWNLOAD_DELAY": settings.download_delay,
        "DOWNLOAD_DELAY_JITTER": 0.5,
        "AUTOTHROTTLE_ENABLED": settings.download_delay > 0,
        "AUTOTHROTTLE_START_DELAY": max(settings.download_delay, 0.1),
        "AUTOTHROTTLE_MAX_DELAY": 60.0,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "DOWNLOAD_TIMEOUT": settings.request_timeout,
        "DOWNLOAD_FAIL_ON_DATALOSS": True,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": settings.retry_times,
        "RETRY_GIVE_UP_LOG_LEVEL": "WARNING",
        "RETRY_HTTP_CODES": [408, 429, 500, 502, 503, 504, 522, 524],
        "HAOWATCH_RETRY_BACKOFF_BASE": settings.retry_backoff,
        "HAOWATCH_RETRY_BACKOFF_MAX": 60.0,
        "HAOWATCH_RETRY_AFTER_MAX": 300.0,
        "HAOWATCH_RETRY_WAIT_TOTAL": float(settings.retry_wait_total),
        # Size caps: the body (Scrapy also applies it after decompression, so a gzip bomb stops at
        # the cap) and the header block. A refused response is not retried.
        "DOWNLOAD_MAXSIZE": settings.max_response_bytes,
        "DOWNLOAD_WARNSIZE": 0,
        "HAOWATCH_MAX_HEADER_SIZE": settings.max_header_bytes,
        # Only NetEase's own redirects are followed (see OffsiteMiddleware); never a meta refresh.
        "METAREFRESH_ENABLED": False,
        "REDIRECT_MAX_TIMES": 5,
        "HAOWATCH_ALLOWED_HOSTS": list(settings.allowed_hosts),
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
        "HAOWATCH_SITE_URL": settings.site_url,
        "HAOWATCH_LIST_API_URL": settings.list_api_url,
        "HAOWATCH_REVISIT_AGES": list(settings.revisit_ages),
        "HAOWATCH_MAX_BACKOFF": settings.max_backoff,
        "HAOWATCH_MAX_FETCH_FAILURES": 8,
        "HAOWATCH_PARSE_WORKERS": settings.parse_workers,
        "HAOWATCH_APP_API_URL": settings.app_api_url,
        "HAOWATCH_CROSS_CHECK_EVERY": settings.cross_check_every,
        "HAOWATCH_GAP_PAGES": settings.gap_pages,
        "HAOWATCH_PROXIES": list(settings.proxies),
        "HAOWATCH_BLOCK_SLOWDOWN_MAX": settings.block_slowdown_max,
        "HAOWATCH_CAPTURE_PER_REASON": settings.capture_per_reason,
        "HAOWATCH_CAPTURE_MAX_AGE": settings.capture_max_age,
        **impersonation_settings(settings.impersonate),
        # Scrapy's records go to the root logger, which haowatch routes into loguru.
        "LOG_INSTALL_ROOT_HANDLER": False,
        "LOG_FORMATTER": "crawler.logformatter.ShortLogFormatter",
        "LOG_LEVEL": "DEBUG" if settings.log_level in ("DEBUG", "TRACE") else "INFO",
        "LOGSTATS_INTERVAL": 60.0,
        "MEMUSAGE_ENABLED": False,
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
    }
