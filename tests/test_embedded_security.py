"""The embedded server admits only its owner: private socket, scram passwords, a non-superuser app role."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from db import migrate
from db.embedded import (
    PORT,
    SERVER_USER,
    EmbeddedServer,
    find_bindir,
    open_server,
    read_secrets,
    server_major,
    throwaway_server,
    wheel_bindirs,
)
from tests.helpers import run_cli

IS_ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedServer]:
    with throwaway_server() as s:
        yield s


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="haowatch-sec-"))
    path.chmod(0o755)  # as root the server's OS user must reach the data directory
    yield path / "data"
    subprocess.run(["rm", "-rf", str(path)], check=False)


def test_the_app_role_is_not_a_superuser_and_cannot_run_programs(server: EmbeddedServer) -> None:
    with psycopg.connect(server.url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_user, r.rolsuper, r.rolcreaterole, r.rolcreatedb,"
            " pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER'),"
            " (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database())"
            " FROM pg_roles r WHERE r.rolname = current_user"
        ).fetchone()
        assert row == ("haowatch", False, False, False, False, "haowatch")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("COPY (SELECT 1) TO PROGRAM 'id'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT pg_read_file('/etc/passwd')")
    with psycopg.connect(server.url()) as conn:  # the role owns its database: migrations need nothing more
        migrate.upgrade(conn)


def test_logins_need_the_password(server: EmbeddedServer) -> None:
    for admin in (False, True):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(server.url("postgres", admin=admin, password=False), connect_timeout=5)
        wrong = server.url("postgres", admin=admin).replace("@/", "x@/", 1)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(wrong, connect_timeout=5)
    hba = (server.pgdata / "pg_hba.conf").read_bytes()
    rules = [line.split() for line in hba.decode().splitlines() if line.strip() and not line.startswith("#")]
    assert rules == [["local", "all", "all", "scram-sha-256"]]


def test_the_socket_directory_and_the_secret_are_private(server: EmbeddedServer) -> None:
    owner = pwd.getpwnam(SERVER_USER).pw_uid if IS_ROOT else os.geteuid()
    for path in (server.data_dir, server.socket_dir):
        st = path.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o700, owner), path
    st = server.secrets_file.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o600, os.geteuid())
    socket = server.socket_dir / f".s.PGSQL.{PORT}"
    assert stat.S_IMODE(socket.stat().st_mode) == 0o700


def _python_for(user: str) -> str:
    for candidate in (sys.executable, "/usr/bin/python3", shutil.which("python3") or ""):
        if candidate and subprocess.run(["runuser", "-u", user, "--", candidate, "-c", "pass"],
                                        capture_output=True, check=False).returncode == 0:
            return candidate
    pytest.fail(f"no Python that user {user} can run", pytrace=False)


@pytest.mark.skipif(not IS_ROOT, reason="needs root to act as another local user (the modes are checked above)")
def test_another_local_user_cannot_connect(server: EmbeddedServer) -> None:
    user = f"hwtest{os.getpid() % 100000}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
                   check=True, capture_output=True)
    try:
        secret = read_secrets(server.secrets_file)
        assert secret is not None
        # Even knowing the password, the user cannot reach the socket (or read the secret).
        probe = textwrap.dedent(f"""
            import socket, sys
            results = []
            for path in ({str(server.socket_dir / f".s.PGSQL.{PORT}")!r}, {str(server.secrets_file)!r}):
                try:
                    if path.endswith("secrets"):
                        open(path).read()
                    else:
                        s = socket.socket(socket.AF_UNIX); s.connect(path)
                    results.append("open")
                except PermissionError:
                    results.append("denied")
            print(",".join(results))
        """)
        out = subprocess.run(["runuser", "-u", user, "--", _python_for(user), "-c", probe],
                             capture_output=True, text=True, check=False, cwd="/")
        assert out.stdout.strip() == "denied,denied", out.stderr
    finally:
        subprocess.run(["userdel", user], check=False, capture_output=True)


def _as(user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--"] if user else []


def test_a_data_dir_of_the_previous_version_is_secured_in_place(data_dir: Path) -> None:
    """Before 0.2 the cluster trusted every local login and haowatch worked as the superuser."""
    old = open_server(data_dir)
    user = None
    entry = None
    if IS_ROOT:  # the previous version ran the server as 'postgres' when there was one
        try:
            user = pwd.getpwnam("postgres").pw_name
        except KeyError:
            user = pwd.getpwnam(SERVER_USER).pw_name if _has_user(SERVER_USER) else None
        if user is None:
            from db.embedded import ensure_server_user

            user = ensure_server_user().pw_name
        entry = pwd.getpwnam(user)
    data_dir.mkdir()
    (data_dir / "run").mkdir(mode=0o755)
    if entry is not None:
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)
        os.chown(data_dir / "run", entry.pw_uid, entry.pw_gid)
    # As root the wheel's binaries may sit in a venv the server's user cannot enter (a 0700 home):
    # the copy haowatch makes for that user is what the previous version's user runs here too.
    b = old._runnable_bindir() if IS_ROOT else old.bindir
    run = lambda *args: subprocess.run([*_as(user), *args], capture_output=True, text=True, check=True, cwd="/")  # noqa: E731
    run(str(b / "initdb"), "-D", str(old.pgdata), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C")
    run(str(b / "pg_ctl"), "-D", str(old.pgdata), "-l", str(data_dir / "postgres.log"), "-w",
        "-o", f"-k {data_dir / 'run'} -p {PORT} -c listen_addresses=''", "start")
    trust_url = f"postgresql://postgres@/{{}}?host={data_dir / 'run'}&port={PORT}"
    try:
        with psycopg.connect(trust_url.format("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE haowatch")
        with psycopg.connect(trust_url.format("haowatch"), autocommit=True) as conn:
            migrate.upgrade(conn)
            conn.execute("INSERT INTO sources (tid, name) VALUES ('T1536566896022', '旧的')")
    finally:
        run(str(b / "pg_ctl"), "-D", str(old.pgdata), "-m", "fast", "-w", "stop")

    env = {"HAOWATCH_DATA_DIR": str(data_dir)}
    listed = run_cli("sources", "list", env=env)
    assert listed.returncode == 0 and "旧的" in listed.stdout, listed.stderr
    assert "securing the embedded database" in listed.stderr
    added = run_cli("sources", "add", "T1536566896023", env=env)  # the app role may write its tables
    assert added.returncode == 0, added.stderr
    assert read_secrets(data_dir / "secrets") is not None
    assert stat.S_IMODE((data_dir / "run").stat().st_mode) == 0o700
    again = run_cli("sources", "list", env=env)
    assert again.returncode == 0 and "T1536566896023" in again.stdout and "securing" not in again.stderr
    server = open_server(data_dir)
    server.start()
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            owners = conn.execute(
                "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
            ).fetchall()
            assert owners == [("haowatch",)]
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(trust_url.format("haowatch"), connect_timeout=5)  # trust is gone
    finally:
        server.stop()


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def test_a_data_dir_of_another_major_version_says_how_to_move_it(data_dir: Path) -> None:
    (data_dir / "pgdata").mkdir(parents=True)
    (data_dir / "pgdata" / "PG_VERSION").write_text("9\n")
    out = run_cli("sources", "list", env={"HAOWATCH_DATA_DIR": str(data_dir)})
    assert out.returncode == 1
    [line] = out.stderr.strip().splitlines()
    assert "PostgreSQL 9" in line and "pg_dump" in line and "pg_upgrade" in line and "HAOWATCH_PG_BINDIR" in line


def test_a_data_dir_keeps_the_postgresql_version_it_was_made_with(data_dir: Path) -> None:
    """pgserver 0.1.4 made PostgreSQL 16 clusters: found again without HAOWATCH_PG_BINDIR (the wheel ships 16)."""
    sixteen = [b for b in wheel_bindirs() if server_major(b) == 16]
    assert sixteen, "the wheel ships PostgreSQL 16"
    env = {"HAOWATCH_DATA_DIR": str(data_dir)}
    made = run_cli("sources", "add", "T1536566896022", env={**env, "HAOWATCH_PG_BINDIR": str(sixteen[0])})
    assert made.returncode == 0, made.stderr
    again = run_cli("sources", "list", env=env)
    assert again.returncode == 0 and "T1536566896022" in again.stdout, again.stderr
    assert (data_dir / "pgdata" / "PG_VERSION").read_text().strip() == "16"
    assert find_bindir(None, 16) in sixteen
