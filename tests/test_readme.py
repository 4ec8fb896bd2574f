"""The README is the user's manual: every setting the code reads and every metric it serves is in it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import HAOWATCH
from tests.test_service import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def settings_read_by_the_code() -> set[str]:
    """Every environment variable scheduler/config.py (the only reader of the environment) reads."""
    source = (ROOT / "scheduler" / "config.py").read_text(encoding="utf-8")
    names = set(re.findall(r"[\"']((?:HAOWATCH_[A-Z0-9_]+)|DATABASE_URL)[\"']", source))
    assert len(names) > 10, names
    return names


def settings_table() -> dict[str, str]:
    """The rows of the README's configuration table: variable → default column."""
    section = README[README.index("## Configuration"):]
    section = section[: section.index("\n## ", 1)]
    rows = re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \| ([^|]*) \|", section, re.MULTILINE)
    return {name: default.strip() for name, default in rows}


def test_every_setting_is_in_the_readme_table() -> None:
    table = settings_table()
    missing = settings_read_by_the_code() - set(table)
    assert not missing, f"settings missing from the README's configuration table: {sorted(missing)}"
    assert all(table.values()), "every row states its default"


def test_the_readme_table_lists_no_setting_that_does_not_exist() -> None:
    stale = set(settings_table()) - settings_read_by_the_code()
    assert not stale, f"the README documents settings the code does not read: {sorted(stale)}"


@pytest.fixture
def served_metrics(db_url: str) -> Iterator[str]:
    """The real /metrics of a running `haowatch run`."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAOWATCH_", "DATABASE_URL"))}
    env.update(DATABASE_URL=db_url, HAOWATCH_HTTP_PORT=str(port), HAOWATCH_ENV_FILE="/nonexistent",
               HAOWATCH_SITE_URL="http://127.0.0.1:9")
    proc = subprocess.Popen([HAOWATCH, "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    text: list[str] = []

    def fetched() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                text.append(resp.read().decode())
                return True
        except OSError:
            return False

    try:
        wait_for(fetched, 90, "/metrics")
        yield text[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def test_every_served_metric_is_in_the_readme(served_metrics: str) -> None:
    families = set(re.findall(r"^# TYPE (haowatch_[a-zA-Z0-9_]+) ", served_metrics, re.MULTILINE))
    samples = {m.group(1) for m in re.finditer(r"^(haowatch_[a-zA-Z0-9_]+)[ {]", served_metrics, re.MULTILINE)}
    assert families or samples, served_metrics[:500]
    documented = set(re.findall(r"`(haowatch_[a-zA-Z0-9_]+)", README))

    def is_documented(name: str) -> bool:
        # A counter family `x` is served as `x_total` (and `x_created`); histograms add _bucket/_sum/_count.
        base = re.sub(r"_(total|created|bucket|sum|count|info)$", "", name)
        return bool({name, base, f"{base}_total", f"{base}_info"} & documented)

    missing = sorted(n for n in families | samples if not is_documented(n))
    assert not missing, f"metrics served but not in the README: {missing}"
