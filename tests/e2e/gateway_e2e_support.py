"""Processes for the gateway e2e tests (not a test module): a real gateway (``parta gateway
init`` + ``parta gateway run``) and real school nodes (``parta node init`` + ``parta node
run``) on loopback ports, driven only through the CLI and HTTP, stopped with SIGTERM (a
non-zero exit status fails the test)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any

import yaml

from e2e_helpers import free_port, http_request, parta_command

STARTUP_TIMEOUT = 60.0
OFFICE_PASSWORD = "city office password"


def parta(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(
        parta_command() + list(args),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    if check and res.returncode != 0:
        raise AssertionError(
            f"parta {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
        )
    return res


def _health(url: str, ca_file: str | None) -> bool:
    if ca_file is None:
        return http_request("GET", url, timeout=2.0)[0] == 200
    import ssl
    import urllib.request

    ctx = ssl.create_default_context(cafile=ca_file)
    with urllib.request.urlopen(url, timeout=2.0, context=ctx) as resp:  # noqa: S310 - loopback
        return resp.status == 200


class Proc:
    """A ``parta <kind> run`` subprocess."""

    def __init__(self, kind: str, data_dir: str, server_name: str) -> None:
        self.kind = kind
        self.data_dir = data_dir
        self.server_name = server_name
        self.config_path = os.path.join(data_dir, "config.yaml")
        self.proc: subprocess.Popen | None = None
        self.log_path = os.path.join(data_dir, f"{kind}.log")
        with open(self.config_path) as fh:
            config = yaml.safe_load(fh)
        self.port = config["client_listener"]["port"]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.health_url = self.base_url + "/health"

    def start(self, ca_file: str | None = None) -> "Proc":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            parta_command() + [self.kind, "run", "-c", self.config_path],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.kind} exited during start-up:\n{self.log_tail()}")
            try:
                if _health(self.health_url, ca_file):
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.proc.kill()
        raise AssertionError(f"{self.kind} did not start:\n{self.log_tail()}")

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired as exc:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError(f"{self.kind} ignored SIGTERM:\n{self.log_tail()}") from exc
        code = self.proc.returncode
        self.proc = None
        self._log.close()
        return code

    def log_tail(self, lines: int = 60) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                return b"\n".join(fh.read().splitlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    # --- HTTP -----------------------------------------------------------------------------
    def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        status, _, data = http_request("GET", self.base_url + path, headers=headers)
        return status, json.loads(data) if data else None

    def post(self, path: str, body: Any, token: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        status, _, data = http_request(
            "POST", self.base_url + path, body=json.dumps(body).encode(), headers=headers
        )
        return status, json.loads(data) if data else None

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """``parta <kind> <args...> -c CONFIG``."""
        return parta(self.kind, *args, "-c", self.config_path, check=check)


def _configure(data_dir: str, database_url: str | None = None) -> None:
    path = os.path.join(data_dir, "config.yaml")
    with open(path) as fh:
        config = yaml.safe_load(fh)
    config["rate_limits"] = {**config.get("rate_limits", {}), "enabled": False}
    fed = config.get("federation")
    if isinstance(fed, dict) and isinstance(fed.get("listener"), dict):
        # Two processes on one machine: never the default federation port for both.
        fed["listener"] = {**fed["listener"], "bind_address": "127.0.0.1", "port": free_port()}
    if database_url:
        config["database_url"] = database_url
    with open(path, "w") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)


def init_gateway(
    data_dir: str, server_name: str = "city.e2e.test", database_url: str | None = None
) -> Proc:
    pw_file = os.path.join(os.path.dirname(data_dir), "office-password")
    with open(pw_file, "w") as fh:
        fh.write(OFFICE_PASSWORD + "\n")
    args = [
        "gateway",
        "init",
        "--server-name",
        server_name,
        "--data-dir",
        data_dir,
        "--port",
        str(free_port()),
        "--metrics-port",
        str(free_port()),
        "--admin-password-file",
        pw_file,
    ]
    if database_url:
        args += ["--database-url", database_url]
    parta(*args)
    _configure(data_dir)
    return Proc("gateway", data_dir, server_name)


def init_school(data_dir: str, server_name: str, database_url: str | None = None) -> Proc:
    parta(
        "node",
        "init",
        "--server-name",
        server_name,
        "--data-dir",
        data_dir,
        "--port",
        str(free_port()),
        "--metrics-port",
        str(free_port()),
    )
    _configure(data_dir, database_url)
    return Proc("node", data_dir, server_name)


def roster_public_key(gateway: Proc) -> Any:
    from federation.keys import VerifyKey

    with open(os.path.join(gateway.data_dir, "roster.pub")) as fh:
        data = json.load(fh)
    return VerifyKey.decode(data["key_id"], data["key"])


def create_token(gateway: Proc, school_id: str, name: str, district: str = "") -> str:
    res = gateway.cli(
        "enrol", "create", "--school-id", school_id, "--name", name, "--district", district
    )
    return res.stdout.strip()
