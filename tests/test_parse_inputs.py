"""``haowatch parse`` on inputs that are not saved pages (issue 9): one line each, never a hang."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import run_cli


def test_a_directory_is_named_as_such(tmp_path: Path) -> None:
    out = run_cli("parse", str(tmp_path))
    assert out.returncode == 2 and "is a directory" in out.stderr and "no such file" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_fifo_is_named_as_such_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    out = run_cli("parse", str(fifo), timeout=30)  # opening a FIFO for reading would block
    assert out.returncode == 2 and "FIFO" in out.stderr and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_a_device_is_named_as_such(device: str) -> None:
    out = run_cli("parse", device, timeout=30)  # /dev/zero would be read forever
    assert out.returncode == 2 and "device" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_a_file_over_the_size_cap_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.html"
    with big.open("wb") as handle:
        handle.truncate(3 * 1024 * 1024)
    out = run_cli("parse", str(big), env={"HAOWATCH_MAX_RESPONSE_SIZE": "1MB"})
    assert out.returncode == 2 and "larger than" in out.stderr and "HAOWATCH_MAX_RESPONSE_SIZE" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_standard_input_over_the_size_cap_is_refused() -> None:
    out = run_cli("parse", "-", stdin=b"<html>" + b"a" * (2 * 1024 * 1024),
                  env={"HAOWATCH_MAX_RESPONSE_SIZE": "1MB"})
    assert out.returncode == 2 and "standard input" in out.stderr and "larger than" in out.stderr



def test_a_huge_file_name_is_shortened(tmp_path: Path) -> None:
    out = run_cli("parse", str(tmp_path / ("x" * 200)) + "/" + "y" * 100_000)
    assert out.returncode == 2 and len(out.stderr) < 600
