"""The Makefile: each command installs what it needs only, and a Python without venv is one line."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _make(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is not installed; the README's commands need it", pytrace=False)
    env = {k: v for k, v in os.environ.items() if k not in ("EXTRAS", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return subprocess.run([make, "--no-print-directory", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=60, check=False)


@pytest.fixture
def fresh_copy(tmp_path: Path) -> Path:
    """The Makefile and pyproject.toml in a directory without .venv, as in a fresh clone."""
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize(("target", "extras"), [("run", "embedded"), ("test", "embedded,test"),
                                                 ("bench", "embedded,bench")])
def test_each_command_installs_only_what_it_needs(fresh_copy: Path, target: str, extras: str) -> None:
    out = _make(fresh_copy, "-n", target)
    assert out.returncode == 0, out.stderr
    installs = [line for line in out.stdout.splitlines() if "pip install" in line and " -e " in line]
    assert installs == [f".venv/bin/python -m pip install --quiet -e '.[{extras}]'"]


def test_a_python_without_venv_is_one_line_saying_what_to_install(fresh_copy: Path) -> None:
    fake = fresh_copy / "python-without-venv"
    fake.write_text(f"#!/bin/sh\ncase \"$*\" in *ensurepip*) exit 1;; esac\nexec {shutil.which('python3')} \"$@\"\n")
    fake.chmod(0o755)
    for target in ("run", "test"):
        out = _make(fresh_copy, target, f"PYTHON={fake}")
        assert out.returncode != 0
        [line] = out.stderr.strip().splitlines()
        assert "no venv module" in line and "apt install python3-venv" in line
        assert not (fresh_copy / ".venv").exists()


def test_a_missing_python_is_one_line(fresh_copy: Path) -> None:
    out = _make(fresh_copy, "run", "PYTHON=python3-that-does-not-exist")
    assert out.returncode != 0
    [line] = out.stderr.strip().splitlines()
    assert "python3-that-does-not-exist not found" in line
