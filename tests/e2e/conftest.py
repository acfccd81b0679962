"""Shared end-to-end fixtures: real nodes in subprocesses on loopback, SQLite and PostgreSQL.

Fixtures (all e2e tests may use them):

- ``db_backend`` (module scope, parametrized ``["sqlite", "postgres"]``): every test that uses a
  node below runs once per backend.
- ``node_factory`` (module scope): ``node_factory(rate_limits=False, **config_overrides)`` runs
  ``parta node init`` in a fresh temp dir, rewrites the config (free loopback ports, the
  backend's database URL, rate limits off unless asked for, any nested overrides such as
  ``media={"max_upload_bytes": 1000}``), starts ``parta node run -c ...`` and waits for
  ``/health``.  Returns a ``RunningNode``.  Every node is stopped at module end with SIGTERM and
  must exit cleanly (exit status 0) — a node that crashes or hangs on shutdown fails the test.
- ``node`` (module scope): one shared default node per backend.  Tests create their own users
  (``node.new_user()``) so they do not depend on each other.
- ``pg_server`` (session scope): a throwaway PostgreSQL cluster (Debian's ``initdb``/``pg_ctl`` in
  a temp dir on a free port, run as user ``postgres`` when we are root), or the server named by
  ``PARTA_TEST_PG_URL``.  Each node gets its own database.  Without PostgreSQL the postgres
  variants skip — except in CI (``CI=true``), where that is a hard failure.

Every test here is marked ``e2e``; the PostgreSQL variants also ``postgres`` (so
``pytest -m "not postgres"`` runs the SQLite half only).

matrix-nio is async: tests write ``async def scenario(): ...`` and call ``run(scenario())`` (plain
``asyncio.run`` with a per-scenario timeout), so no pytest plugin is needed.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import pytest
import yaml

from e2e_helpers import DEFAULT_PASSWORD, free_port, http_request, parta_command

IN_CI = os.environ.get("CI", "").lower() == "true"
STARTUP_TIMEOUT = 60.0
SHUTDOWN_TIMEOUT = 20.0
_counter = itertools.count(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.e2e)
            callspec = getattr(item, "callspec", None)
            if callspec is not None and callspec.params.get("db_backend") == "postgres":
                item.add_marker(pytest.mark.postgres)


# --- helpers -------------------------------------------------------------------------------
def init_node(server_name: str, data_dir: str) -> tuple[str, dict]:
    """``parta node init`` into ``data_dir``: (path of its config.yaml, the config read)."""
    res = subprocess.run(
        parta_command() + ["node", "init", "--server-name", server_name, "--data-dir", data_dir],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if res.returncode != 0:
        raise NodeFailed(
            f"parta node init {server_name} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
        )
    config_path = os.path.join(data_dir, "config.yaml")
    with open(config_path) as fh:
        return config_path, yaml.safe_load(fh) or {}


def _merge(base: dict, overrides: dict) -> dict:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


# --- PostgreSQL ----------------------------------------------------------------------------
@dataclass
class PgServer:
    base_url: str  # postgresql://user@host:port  (no database)
    admin_db: str = "postgres"
    _n: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def new_database(self) -> str:
        """Create an empty database; return its URL."""
        import psycopg

        name = f"parta_e2e_{os.getpid()}_{next(self._n)}"
        with psycopg.connect(f"{self.base_url}/{self.admin_db}", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"{self.base_url}/{name}"


def _pg_bin(name: str) -> str | None:
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if found:
        return found[-1]
    return shutil.which(name)


def _start_cluster(tmp_root: str) -> tuple[PgServer, Any]:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found; "
            "install Debian's postgresql package"
        )
    as_root = os.geteuid() == 0
    prefix: list[str] = []
    if as_root:
        if subprocess.run(["id", "-u", "postgres"], capture_output=True).returncode != 0:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "postgres"],
                check=True,
                capture_output=True,
            )
        runuser = shutil.which("runuser")
        prefix = [runuser, "-u", "postgres", "--"] if runuser else ["su", "postgres", "-c"]
    os.chmod(tmp_root, 0o755)
    data = os.path.join(tmp_root, "pgdata")
    sock = os.path.join(tmp_root, "sock")
    os.makedirs(sock)
    logfile = os.path.join(tmp_root, "pg.log")
    open(logfile, "w").close()
    if as_root:
        shutil.chown(tmp_root, "postgres")
        shutil.chown(sock, "postgres")
        shutil.chown(logfile, "postgres")

    def as_pg(args: list[str]) -> subprocess.CompletedProcess:
        cmd = prefix + args if prefix[:1] != ["su"] else prefix + [shlex.join(args)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    res = as_pg([initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale"])
    if res.returncode != 0:
        raise RuntimeError(f"initdb failed: {res.stdout}\n{res.stderr}")
    port = free_port()
    opts = (
        f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
        f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    res = as_pg([pg_ctl, "-D", data, "-l", logfile, "-o", opts, "-w", "-t", "60", "start"])
    if res.returncode != 0:
        log = open(logfile).read() if os.path.exists(logfile) else ""
        raise RuntimeError(f"pg_ctl start failed: {res.stdout}\n{res.stderr}\n{log}")

    def stop() -> None:
        as_pg([pg_ctl, "-D", data, "-m", "fast", "-w", "stop"])

    return PgServer(f"postgresql://postgres@127.0.0.1:{port}"), stop


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    url = os.environ.get("PARTA_TEST_PG_URL")
    if url:
        # A full URL: reuse its server, create per-node databases next to its database.
        base, _, dbname = url.rstrip("/").rpartition("/")
        yield PgServer(base, admin_db=dbname or "postgres")
        return
    tmp_root = tempfile.mkdtemp(prefix="parta-pg-")
    try:
        server, stop = _start_cluster(tmp_root)
    except Exception as exc:  # noqa: BLE001 - whatever stops the server: skip, or fail in CI
        shutil.rmtree(tmp_root, ignore_errors=True)
        if IN_CI:
            pytest.fail(
                f"PostgreSQL is required in CI but could not be started: {exc}", pytrace=False
            )
        pytest.skip(f"PostgreSQL not available: {exc}")
    try:
        yield server
    finally:
        stop()
        shutil.rmtree(tmp_root, ignore_errors=True)


# --- the node ------------------------------------------------------------------------------
class NodeFailed(AssertionError):
    pass


class RunningNode:
    """A ``parta node run`` subprocess with its data dir, config and helpers."""

    def __init__(self, data_dir: str, config_path: str, config: dict) -> None:
        self.data_dir = data_dir
        self.config_path = config_path
        self.config = config
        self.server_name: str = config["server_name"]
        port = config["client_listener"]["port"]
        self.base_url = f"http://127.0.0.1:{port}"
        self.metrics_url = f"http://127.0.0.1:{config['metrics_listener']['port']}"
        self.log_path = os.path.join(data_dir, "node.log")
        self.proc: subprocess.Popen | None = None
        self._users = itertools.count(1)
        self._shared_token: str | None = None

    # process ----------------------------------------------------------------------------
    def start(self) -> None:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            parta_command() + ["node", "run", "-c", self.config_path],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise NodeFailed(
                    f"node exited during start-up with {self.proc.returncode}:\n{self.log_tail()}"
                )
            for url in (self.base_url + "/health", self.metrics_url + "/health"):
                try:
                    if http_request("GET", url, timeout=2.0)[0] == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        self.kill()
        raise NodeFailed(
            f"node did not answer /health within {STARTUP_TIMEOUT}s:\n{self.log_tail()}"
        )

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit status (asserted 0 by the fixture)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(SHUTDOWN_TIMEOUT)
            except subprocess.TimeoutExpired as exc:
                self.kill()
                raise NodeFailed(
                    f"node did not exit within {SHUTDOWN_TIMEOUT}s of SIGTERM:\n{self.log_tail()}"
                ) from exc
        code = self.proc.returncode
        self.proc = None
        self._log.close()
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self, lines: int = 60) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                return b"\n".join(fh.read().splitlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    # CLI --------------------------------------------------------------------------------
    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        """``parta node <args[0]> [<args[1]>] -c CONFIG <rest>``; raises on failure."""
        words = list(args)
        split = 2 if len(words) >= 2 and words[0] in ("user", "token", "db") else 1
        cmd = parta_command() + ["node"] + words[:split] + ["-c", self.config_path] + words[split:]
        res = subprocess.run(cmd, capture_output=True, text=True, input=input, timeout=120)
        if res.returncode != 0:
            raise NodeFailed(
                f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
            )
        return res

    def add_user(
        self,
        localpart: str,
        password: str = DEFAULT_PASSWORD,
        role: str = "pupil",
        display_name: str | None = None,
    ) -> str:
        pw_file = os.path.join(self.data_dir, f".pw-{localpart}")
        with open(pw_file, "w") as fh:
            fh.write(password + "\n")
        args = ["user", "add", localpart, "--role", role, "--password-file", pw_file]
        if display_name:
            args += ["--display-name", display_name]
        try:
            self.cli(*args)
        finally:
            os.unlink(pw_file)
        return f"@{localpart}:{self.server_name}"

    def registration_token(self, uses: int = 1) -> str:
        """``parta node token create --uses N``: the token is the last word it prints."""
        out = self.cli("token", "create", "--uses", str(uses)).stdout
        words = out.split()
        if not words:
            raise NodeFailed(f"token create printed nothing: {out!r}")
        return words[-1].strip("'\"")

    def register(self, localpart: str, password: str = DEFAULT_PASSWORD) -> dict:
        """Register over HTTP with the spec's registration-token UIA flow; returns the 200 body."""
        if self._shared_token is None:
            self._shared_token = self.registration_token(uses=100_000)
        url = self.base_url + "/_matrix/client/v3/register"
        body: dict = {
            "username": localpart,
            "password": password,
            "initial_device_display_name": "e2e",
        }
        status, _, data = http_request(
            "POST",
            url,
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        for _ in range(3):
            reply = json.loads(data)
            if status == 200:
                return reply
            if status != 401 or "session" not in reply:
                raise NodeFailed(f"register {localpart}: {status} {reply}")
            done = set(reply.get("completed", []))
            stage = (
                "m.login.registration_token"
                if "m.login.registration_token" not in done
                else "m.login.dummy"
            )
            auth = {"type": stage, "session": reply["session"]}
            if stage == "m.login.registration_token":
                auth["token"] = self._shared_token
            body["auth"] = auth
            status, _, data = http_request(
                "POST",
                url,
                body=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
        raise NodeFailed(f"register {localpart}: UIA did not finish: {status} {data!r}")

    def new_user(self, prefix: str = "user") -> tuple[str, str]:
        """A fresh user (unique localpart) registered over HTTP; returns (user_id, password)."""
        localpart = f"{prefix}{next(self._users)}"
        return self.register(localpart)["user_id"], DEFAULT_PASSWORD

    async def login(
        self, user_id: str, password: str = DEFAULT_PASSWORD, device_name: str = "e2e"
    ) -> Any:
        """A matrix-nio AsyncClient logged in with m.login.password (close it after use)."""
        from nio import AsyncClient, LoginResponse

        client = AsyncClient(self.base_url, user_id)
        resp = await client.login(password, device_name=device_name)
        if not isinstance(resp, LoginResponse):
            await client.close()
            raise NodeFailed(f"login of {user_id} failed: {resp}")
        return client

    async def new_client(self, prefix: str = "user") -> Any:
        """A fresh user's matrix-nio AsyncClient, holding the token from registration."""
        from nio import AsyncClient

        localpart = f"{prefix}{next(self._users)}"
        reg = self.register(localpart)
        client = AsyncClient(self.base_url, reg["user_id"])
        client.restore_login(reg["user_id"], reg["device_id"], reg["access_token"])
        return client


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def db_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def node_factory(
    db_backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    pg = request.getfixturevalue("pg_server") if db_backend == "postgres" else None
    started: list[RunningNode] = []

    def start(*, rate_limits: bool | dict = False, **overrides: Any) -> RunningNode:
        n = next(_counter)
        data_dir = str(tmp_path_factory.mktemp(f"node{n}-{db_backend}"))
        server_name = f"school{n}.e2e.test"
        shutil.rmtree(data_dir)  # init creates it and refuses an existing config
        config_path, config = init_node(server_name, data_dir)
        config["server_name"] = server_name
        config["client_listener"] = {
            **config.get("client_listener", {}),
            "bind_address": "127.0.0.1",
            "port": free_port(),
        }
        config["metrics_listener"] = {
            **config.get("metrics_listener", {}),
            "bind_address": "127.0.0.1",
            "port": free_port(),
        }
        fed = config.setdefault("federation", {})
        # init defaults the federation listener to 8448: nodes started side by side (and
        # parallel sessions on one machine) would collide, so every node gets a free port.
        fed["listener"] = {
            **fed.get("listener", {}),
            "bind_address": "127.0.0.1",
            "port": free_port(),
        }
        if isinstance(rate_limits, dict):
            config["rate_limits"] = {
                **config.get("rate_limits", {}),
                "enabled": True,
                **rate_limits,
            }
        else:
            config["rate_limits"] = {**config.get("rate_limits", {}), "enabled": rate_limits}
        if pg is not None:
            config["database_url"] = pg.new_database()
        _merge(config, overrides)
        with open(config_path, "w") as fh:
            yaml.safe_dump(config, fh, sort_keys=False)
        node = RunningNode(data_dir, config_path, config)
        started.append(node)
        node.start()
        return node

    yield start

    failures = []
    for node in started:
        try:
            code = node.stop()
        except NodeFailed as exc:
            failures.append(str(exc))
            continue
        if code != 0:
            failures.append(
                f"node {node.server_name} exited with {code} on SIGTERM:\n{node.log_tail()}"
            )
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


@pytest.fixture(scope="module")
def node(node_factory: Any) -> RunningNode:
    return node_factory()
