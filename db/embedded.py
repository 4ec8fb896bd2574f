"""A local PostgreSQL server that haowatch starts itself when no ``DATABASE_URL`` is set.

The server binaries come from the machine (``pg_config --bindir``, ``/usr/lib/postgresql/*/bin``,
``PATH``) or, as a fallback, from the ``pgserver`` wheel. The server listens on a Unix socket inside
the data directory only (no TCP port, so it never collides with another server), and its data
persists across runs. PostgreSQL refuses to run as root, so as root every server command runs as
the ``postgres`` system user.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg

DB_NAME = "haowatch"
PORT = 5432


class EmbeddedError(RuntimeError):
    """The embedded server could not be found, initialised or started."""


def default_data_dir() -> Path:
    """Where the embedded server keeps its data unless ``HAOWATCH_DATA_DIR`` says otherwise."""
    if os.geteuid() == 0:
        return Path("/var/lib/haowatch")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "haowatch"


def find_bindir(preferred: Path | None = None) -> Path:
    """Find a directory holding ``initdb``, ``pg_ctl`` and ``postgres`` (``preferred`` first)."""
    candidates: list[Path] = [preferred] if preferred else []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0:
                candidates.append(Path(out.stdout.strip()))
    lib = Path("/usr/lib/postgresql")
    if lib.is_dir():
        versions = sorted(lib.iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else 0, reverse=True)
        candidates.extend(v / "bin" for v in versions)
    for tool in ("postgres", "pg_ctl"):
        found = shutil.which(tool)
        if found:
            candidates.append(Path(found).resolve().parent)
    # Locate the pgserver wheel's binaries without importing it (its import has side effects).
    spec = importlib.util.find_spec("pgserver")
    if spec and spec.origin:
        candidates.append(Path(spec.origin).parent / "pginstall" / "bin")
    for cand in candidates:
        if all((cand / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return cand
    raise EmbeddedError(
        "no PostgreSQL server binaries found: install PostgreSQL, `pip install .[embedded]`, "
        "or set DATABASE_URL"
    )


@dataclass
class EmbeddedServer:
    """One embedded server over a data directory."""

    data_dir: Path
    bindir: Path
    started_here: bool = False

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def socket_dir(self) -> Path:
        # Unix socket paths are limited to ~107 bytes; fall back to a short private directory.
        preferred = self.data_dir / "run"
        if len(str(preferred)) < 80:
            return preferred
        # A stable digest: every haowatch process must arrive at the same directory.
        digest = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"haowatch-{digest}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "postgres.log"

    def url(self, dbname: str = DB_NAME) -> str:
        """A libpq URL for a database on this server, through the Unix socket."""
        return f"postgresql://postgres@/{dbname}?host={quote(str(self.socket_dir), safe='')}&port={PORT}"

    def _as_server_user(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise EmbeddedError("running as root needs a 'postgres' system user for the embedded server") from None
        runuser = shutil.which("runuser")
        if not runuser:
            raise EmbeddedError("running as root needs `runuser` to start PostgreSQL as 'postgres'")
        return [runuser, "-u", "postgres", "--"]

    def _prepare_dirs(self) -> None:
        for path in (self.data_dir, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            for path in (self.data_dir, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            if self.pgdata.exists():
                os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
            if self.log_file.exists():
                os.chown(self.log_file, entry.pw_uid, entry.pw_gid)

    def _run(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._as_server_user(), *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    def is_running(self) -> bool:
        """True when a server answers on this data directory's socket."""
        if not (self.pgdata / "postmaster.pid").exists():
            return False
        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=3):
                return True
        except psycopg.OperationalError:
            return False

    def initialise(self) -> None:
        """Create the cluster if the data directory has none."""
        if (self.pgdata / "PG_VERSION").exists():
            return
        result = self._run(
            [
                str(self.bindir / "initdb"),
                "-D", str(self.pgdata),
                "-U", "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        )
        if result.returncode != 0:
            # Some builds lack C.UTF-8; the plain C locale still stores UTF-8 correctly.
            shutil.rmtree(self.pgdata, ignore_errors=True)
            result = self._run(
                [str(self.bindir / "initdb"), "-D", str(self.pgdata), "-U", "postgres",
                 "--auth=trust", "--encoding=UTF8", "--locale=C"]
            )
        if result.returncode != 0:
            raise EmbeddedError(f"initdb failed: {result.stderr.strip().splitlines()[-1:]}")

    def start(self) -> None:
        """Start the server unless one already runs on this data directory."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.data_dir / ".start.lock"):
            if self.is_running():
                return
            self._prepare_dirs()
            self.initialise()
            options = f"-k {self.socket_dir} -p {PORT} -c listen_addresses='' -c max_connections=200"
            result = self._run(
                [str(self.bindir / "pg_ctl"), "-D", str(self.pgdata), "-l", str(self.log_file),
                 "-o", options, "-w", "-t", "60", "start"]
            )
            if result.returncode != 0:
                log = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
                tail = log.strip().splitlines()[-1:]
                raise EmbeddedError(f"PostgreSQL did not start ({'; '.join(tail) or result.stderr.strip()})")
            self.started_here = True
        self._ensure_database()

    def _ensure_database(self) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
            if row is None:
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(f"CREATE DATABASE {DB_NAME}")

    def stop(self) -> None:
        """Stop the server (fast shutdown: running transactions roll back, data is safe)."""
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"])
        self.started_here = False


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def embedded_server(data_dir: Path | None = None, bindir: Path | None = None) -> Iterator[EmbeddedServer]:
    """Run the embedded server for the duration of the block.

    Every haowatch process using the server holds a shared lock on ``users.lock``; the last one to
    leave (the one that can turn it into an exclusive lock) stops the server, so a short
    ``haowatch sources add`` never pulls the server from under a running ``haowatch run``.
    """
    server = EmbeddedServer(data_dir=(data_dir or default_data_dir()).resolve(), bindir=find_bindir(bindir))
    try:
        server.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmbeddedError(
            f"cannot use data directory {server.data_dir}: {exc.strerror} (set HAOWATCH_DATA_DIR)"
        ) from None
    with open(server.data_dir / "users.lock", "a") as users:
        fcntl.flock(users, fcntl.LOCK_SH)
        try:
            server.start()
            yield server
        finally:
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass  # another haowatch process still uses the server
            else:
                server.stop()


@contextlib.contextmanager
def throwaway_server() -> Iterator[EmbeddedServer]:
    """A server in a fresh temporary directory, removed afterwards (tests and benchmarks)."""
    data_dir = Path(tempfile.mkdtemp(prefix="haowatch-tmp-"))
    data_dir.chmod(0o755)  # as root the server runs as 'postgres' and must reach its data
    server = EmbeddedServer(data_dir=data_dir, bindir=find_bindir())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
