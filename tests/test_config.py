"""Settings from the environment: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.config import ConfigError, format_duration, load_settings, parse_duration


def test_defaults_are_polite() -> None:
    s = load_settings({"HAOWATCH_ENV_FILE": "/nonexistent"})
    assert s.database_url is None
    assert s.site_url == "https://www.163.com"
    assert s.concurrency <= 2 and s.download_delay >= 1
    assert "Mozilla/5.0" in s.user_agent and "Scrapy" not in s.user_agent
    assert s.http_host == "127.0.0.1"


def test_values_are_read(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("HAOWATCH_TICK_SECONDS=5\nHAOWATCH_SITE_URL=http://127.0.0.1:9/\n")
    s = load_settings({"HAOWATCH_ENV_FILE": str(env_file), "HAOWATCH_TICK_SECONDS": "7",
                       "DATABASE_URL": "postgresql://u@h/db", "HAOWATCH_REVISIT_AGES": "6h,1h"})
    assert s.tick_seconds == 7  # the environment wins over .env
    assert s.site_url == "http://127.0.0.1:9"
    assert s.database_url == "postgresql://u@h/db"
    assert s.revisit_ages == (3600, 21600)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HAOWATCH_SITE_URL", "www.163.com"),
        ("HAOWATCH_TICK_SECONDS", "0"),
        ("HAOWATCH_HTTP_PORT", "70000"),
        ("HAOWATCH_LOG_JSON", "maybe"),
        ("HAOWATCH_DOWNLOAD_DELAY", "fast"),
        ("HAOWATCH_DEFAULT_INTERVAL", "sometimes"),
        ("HAOWATCH_LOG_LEVEL", "LOUD"),
        ("DATABASE_URL", "mysql://x"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({"HAOWATCH_ENV_FILE": "/nonexistent", name: value})


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("45", 45)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_format_duration_round_trips() -> None:
    for seconds in (90, 900, 1800, 7200, 86400, 61):
        assert parse_duration(format_duration(seconds)) == seconds


def test_scrapy_settings_are_polite_and_closed() -> None:
    from crawler.settings import scrapy_settings

    s = scrapy_settings(load_settings({"HAOWATCH_ENV_FILE": "/nonexistent"}).crawl_options(), "postgresql:///x")
    assert s["TELNETCONSOLE_ENABLED"] is False
    assert s["EXTENSIONS"]["scrapy.extensions.telnet.TelnetConsole"] is None
    assert s["CONCURRENT_REQUESTS_PER_DOMAIN"] == 2 and s["DOWNLOAD_DELAY"] == 2.0 and s["AUTOTHROTTLE_ENABLED"]
    assert s["DEFAULT_REQUEST_HEADERS"]["Referer"] == "https://www.163.com/"
    assert 429 in s["RETRY_HTTP_CODES"] and 503 in s["RETRY_HTTP_CODES"]
    assert s["DOWNLOAD_FAIL_ON_DATALOSS"] is True
    assert "Scrapy" not in s["USER_AGENT"]


def test_crawl_options_defaults_are_stated_once() -> None:
    """A setting that is a crawl option has the option's default; the crawl gets what was configured."""
    from dataclasses import fields

    from crawler.settings import CrawlOptions
    from scheduler.config import Settings

    assert Settings().crawl_options() == CrawlOptions()
    settings = load_settings({"HAOWATCH_ENV_FILE": "/nonexistent", "HAOWATCH_PARSE_WORKERS": "0",
                              "HAOWATCH_CONCURRENCY": "3", "HAOWATCH_MAX_BACKOFF": "2h"})
    options = settings.crawl_options()
    assert (options.parse_workers, options.concurrency, options.max_backoff) == (0, 3, 7200)
    setting_names = {f.name for f in fields(Settings)}
    for option in fields(CrawlOptions):
        if option.name in setting_names:
            assert getattr(Settings(), option.name) == option.default, option.name


def test_spider_and_pipelines_take_options_from_the_crawl_settings() -> None:
    from scrapy.settings import Settings as ScrapySettings

    from crawler.settings import CrawlOptions, crawl_options, scrapy_settings

    options = CrawlOptions(parse_workers=0, max_fetch_failures=3, revisit_ages=(60,))
    assert crawl_options(ScrapySettings(scrapy_settings(options, "postgresql:///x"))) == options
    assert crawl_options(ScrapySettings()) == CrawlOptions()
