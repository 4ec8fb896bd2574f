"""`haowatch db shell`, `haowatch db url`, `haowatch --version` and the exit code of `haowatch crawl`."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from db.connection import connect
from db.embedded import read_secrets
from scheduler.dbcli import split_password
from tests.helpers import HAOWATCH, run_cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="haowatch-dbcli-"))
    path.chmod(0o755)  # as root the server's OS user must reach the data directory
    yield path / "data"
    subprocess.run(["rm", "-rf", str(path)], check=False)


def test_version() -> None:
    out = run_cli("--version")
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert (out.returncode, out.stdout.strip()) == (0, f"haowatch {version}")


def test_db_url_hides_the_password_of_database_url_unless_asked(db_url: str) -> None:
    with_password = db_url.replace("://postgres@", "://postgres:s3cret%40x@", 1)
    hidden = run_cli("db", "url", db_url=with_password)
    assert hidden.returncode == 0, hidden.stderr
    assert "s3cret" not in hidden.stdout + hidden.stderr
    assert conninfo_to_dict(hidden.stdout.strip())["dbname"] == conninfo_to_dict(db_url)["dbname"]
    shown = run_cli("db", "url", "--show-secret", db_url=with_password)
    assert shown.stdout.strip() == with_password


def test_db_url_of_the_embedded_server(data_dir: Path) -> None:
    env = {"HAOWATCH_DATA_DIR": str(data_dir)}
    hidden = run_cli("db", "url", env=env)
    assert hidden.returncode == 0, hidden.stderr
    secrets = read_secrets(data_dir / "secrets")
    assert secrets is not None and secrets.app not in hidden.stdout and secrets.admin not in hidden.stdout
    parts = urlsplit(hidden.stdout.strip())
    assert (parts.username, parts.password, parts.path) == ("haowatch", None, "/haowatch")
    shown = run_cli("db", "url", "--show-secret", env=env)
    assert urlsplit(shown.stdout.strip()).password == secrets.app
    assert "--show-secret" not in shown.stderr


def test_db_shell_on_database_url(db_url: str) -> None:
    out = run_cli("db", "shell", "--", "-tAc", "SELECT current_database()", db_url=db_url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == conninfo_to_dict(db_url)["dbname"]


def test_db_shell_on_the_embedded_server_is_the_app_role(data_dir: Path) -> None:
    env = {"HAOWATCH_DATA_DIR": str(data_dir)}
    assert run_cli("sources", "add", "T1536566896022", env=env).returncode == 0
    out = run_cli("db", "shell", "--", "-tAc", "SELECT current_user || ' ' || count(*) FROM sources", env=env)
    assert (out.returncode, out.stdout.strip()) == (0, "haowatch 1"), out.stderr
    failed = run_cli("db", "shell", "--", "-v", "ON_ERROR_STOP=1", "-c", "SELECT * FROM no_such_table", env=env)
    assert failed.returncode != 0 and "no_such_table" in failed.stderr  # psql's exit code comes through


def test_split_password_forms() -> None:
    assert split_password("postgresql://u:p%40ss@h:5/d?sslmode=require") == ("postgresql://u@h:5/d?sslmode=require",
                                                                             "p@ss")
    assert split_password("postgresql://u@/d?host=/tmp/a%20b&password=x") == ("postgresql://u@/d?host=/tmp/a%20b", "x")
    stripped, password = split_password("host=/tmp dbname=d password=x user=u")
    assert password == "x" and "password" not in stripped


def test_crawl_exits_1_when_every_source_failed_and_still_prints_the_summary(db_url: str) -> None:
    with connect(db_url) as conn:
        conn.execute("INSERT INTO sources (tid) VALUES ('T1536566896022'), ('T1536566896023')")
    env = {"HAOWATCH_SITE_URL": "http://127.0.0.1:9", "HAOWATCH_RETRY_TIMES": "0", "HAOWATCH_DOWNLOAD_DELAY": "0"}
    out = run_cli("crawl", db_url=db_url, env=env)
    assert out.returncode == 1
    assert out.stdout.startswith("crawl #") and "2 sources" in out.stdout
    assert "every source failed" in out.stderr and "Traceback" not in out.stderr


def test_a_crawl_prints_no_scrapy_boilerplate(db_url: str) -> None:
    with connect(db_url) as conn:
        conn.execute("INSERT INTO sources (tid) VALUES ('T1536566896022')")
    env = {"HAOWATCH_SITE_URL": "http://127.0.0.1:9", "HAOWATCH_RETRY_TIMES": "0", "HAOWATCH_DOWNLOAD_DELAY": "0"}
    out = run_cli("crawl", db_url=db_url, env=env)
    for boilerplate in ("Versions:", "Overridden settings", "Enabled extensions", "Enabled item pipelines",
                        "Dumping Scrapy stats", "Remote control", "Telnet", "Spider opened"):
        assert boilerplate not in out.stderr, boilerplate
    assert len(out.stderr.strip().splitlines()) <= 6, out.stderr
    debug = run_cli("crawl", db_url=db_url, env={**env, "HAOWATCH_LOG_LEVEL": "DEBUG"})
    assert "Enabled extensions" in debug.stderr  # still there for debugging
    assert "RemoteControl" not in debug.stderr and "TelnetConsole" not in debug.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_and_upgrade_give_up_waiting_for_the_database_after_db_wait() -> None:
    url = f"postgresql://haowatch:pw@127.0.0.1:{_free_port()}/haowatch"
    started = time.monotonic()
    out = run_cli("db", "upgrade", db_url=url, env={"HAOWATCH_DB_WAIT": "3s"})
    assert out.returncode == 1 and time.monotonic() - started >= 2
    assert "retrying" in out.stderr and "pw@" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("haowatch: database unavailable")
    quick = run_cli("db", "upgrade", db_url=url, env={"HAOWATCH_DB_WAIT": "0"})
    assert quick.returncode == 1 and "retrying" not in quick.stderr


def _forward_when(target: tuple[int, str | tuple[str, int]], ready: threading.Event) -> int:
    """A TCP port that starts forwarding to ``target`` (a database) once ``ready`` is set."""
    port = _free_port()

    def pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def serve() -> None:
        ready.wait(120)
        with socket.create_server(("127.0.0.1", port)) as server:
            server.settimeout(120)
            with contextlib.suppress(OSError):
                while True:
                    client, _ = server.accept()
                    upstream = socket.socket(target[0])
                    upstream.connect(target[1])
                    for a, b in ((client, upstream), (upstream, client)):
                        threading.Thread(target=pump, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return port


def test_db_upgrade_waits_for_a_database_that_comes_up_late(db_url: str) -> None:
    params = conninfo_to_dict(db_url)
    host, db_port = str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432)
    target: tuple[int, str | tuple[str, int]] = (
        (socket.AF_UNIX, f"{host}/.s.PGSQL.{db_port}") if host.startswith("/") else (socket.AF_INET, (host, db_port))
    )
    ready = threading.Event()
    port = _forward_when(target, ready)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAOWATCH_", "DATABASE_URL"))}
    env.update(HAOWATCH_ENV_FILE="/nonexistent", HAOWATCH_DB_WAIT="120s",
               DATABASE_URL=make_conninfo(db_url, host="127.0.0.1", port=str(port)))
    proc = subprocess.Popen([HAOWATCH, "db", "upgrade"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:  # the database "comes up" once haowatch has failed and said it retries
        seen.append(line)
        if "retrying" in line:
            ready.set()
            break
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, "".join(seen) + err
    assert "schema is up to date" in out
