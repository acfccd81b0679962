"""A real node in a subprocess (``parta node init`` + ``parta node run``) for the accounts
HTTP tests: loopback, port 0 (the node prints the port it got), stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import yaml

PASSWORD = "correct horse battery"


def parta(*args: str, check: bool = True, **kw: Any) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-c",
        "import sys; from node.cli.main import main; sys.exit(main())",
        *args,
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)
    if check and res.returncode != 0:
        raise AssertionError(f"parta {' '.join(args)} failed: {res.stdout}\n{res.stderr}")
    return res


def _merge(base: dict, overrides: dict) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


class NodeProcess:
    def __init__(self, data_dir: str, server_name: str = "school.test", **overrides: Any) -> None:
        self.data_dir = data_dir
        self.server_name = server_name
        parta(
            "node",
            "init",
            "--server-name",
            server_name,
            "--data-dir",
            data_dir,
            "--port",
            "0",
            "--metrics-port",
            "0",
        )
        self.config_path = os.path.join(data_dir, "config.yaml")
        with open(self.config_path) as fh:
            config = yaml.safe_load(fh)
        _merge(config, overrides)
        with open(self.config_path, "w") as fh:
            yaml.safe_dump(config, fh)
        self.log = open(os.path.join(data_dir, "node.log"), "w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from node.cli.main import main; sys.exit(main())",
                "node",
                "run",
                "-c",
                self.config_path,
            ],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        line = self._first_line()  # "... listening on http://127.0.0.1:PORT (metrics on ...)"
        urls = re.findall(r"https?://127\.0\.0\.1:\d+", line)
        if len(urls) < 2:
            self.stop()
            raise AssertionError(f"node did not start: {line!r}\n{self.read_log()}")
        self.base_url, self.metrics_url = urls[0], urls[1]

    def _first_line(self, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                return self.proc.stdout.readline()
            if self.proc.poll() is not None:
                return ""
        return ""

    def read_log(self) -> str:
        self.log.flush()
        with open(os.path.join(self.data_dir, "node.log")) as fh:
            return fh.read()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    # --- HTTP ------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        raw: bytes | None = None,
        base: str | None = None,
    ) -> tuple[int, Any]:
        headers = {}
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(
            (base or self.base_url) + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback
                status, payload, ctype = resp.status, resp.read(), resp.headers["Content-Type"]
        except urllib.error.HTTPError as exc:
            status, payload, ctype = exc.code, exc.read(), exc.headers["Content-Type"]
        if ctype and ctype.startswith("application/json"):
            return status, json.loads(payload)
        return status, payload.decode("utf-8", "replace")

    def add_user(
        self,
        localpart: str,
        role: str = "teacher",
        password: str = PASSWORD,
        display_name: str | None = None,
    ) -> str:
        pw_file = os.path.join(self.data_dir, f"pw-{localpart}")
        with open(pw_file, "w") as fh:
            fh.write(password + "\n")
        args = [
            "node",
            "user",
            "add",
            localpart,
            "--role",
            role,
            "--password-file",
            pw_file,
            "-c",
            self.config_path,
        ]
        if display_name:
            args += ["--display-name", display_name]
        parta(*args)
        return f"@{localpart}:{self.server_name}"

    def login(self, user: str, password: str = PASSWORD, **extra: Any) -> dict:
        status, body = self.request(
            "POST",
            "/_matrix/client/v3/login",
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user},
                "password": password,
                **extra,
            },
        )
        assert status == 200, body
        return body

    def token(self, *args: str) -> str:
        return parta("node", "token", "create", *args, "-c", self.config_path).stdout.strip()


def wait_until(predicate, attempts: int = 100, delay: float = 0.05) -> bool:
    for _ in range(attempts):
        if predicate():
            return True
        time.sleep(delay)
    return False
