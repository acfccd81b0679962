"""A city on loopback for the roster enforcement e2e tests: a real gateway
(``parta gateway init`` + ``parta gateway run``) and real school nodes (``parta node init``
+ ``parta node enrol`` + ``parta node run``), every server named ``localhost:<federation
port>`` with a federation certificate from the session's test CA (outbound TLS verified
against it everywhere), plus in-process member-server doubles (``FakeServer``) enrolled
through the gateway's HTTP enrolment API with their own keys.

Reused, not copied: ``tests/e2e/federation/fed_harness.py`` (``FedCluster`` initialises
nodes, ``FedNode`` runs them; ``Watcher``/``Account`` drive matrix-nio clients) and
``bench/federation_env.py`` (``TestCA``, ``FakeServer``, the ``federation:`` section);
``tests/e2e/conftest.py`` through them (``RunningNode``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
_E2E = os.path.dirname(_HERE)
for _p in (os.path.join(_E2E, "federation"), _E2E):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import yaml

from e2e_helpers import http_request
from fed_harness import (
    FED_STARTUP_TIMEOUT,
    FakeServer,
    FedCluster,
    FedNode,
    NodeFailed,
    TestCA,
    free_port,
    parta_command,
    parta_federation_section,
)

OFFICE_PASSWORD = "city office password"
REFRESH_SECONDS = 3  # roster refresh interval of every server in these tests
WAIT = 90.0


def parta(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(
        parta_command() + list(args),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    if check and res.returncode != 0:
        raise NodeFailed(
            f"parta {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
        )
    return res


def metric(node: Any, name: str, labels: dict | None = None) -> float | None:
    """One sample from the node's /metrics (None when absent)."""
    with urllib.request.urlopen(node.metrics_url + "/metrics", timeout=10) as resp:  # noqa: S310 - loopback
        text = resp.read().decode()
    want = name + (
        "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""
    )
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return None


def wait_until(check: Any, what: str, timeout: float = WAIT, interval: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = check()
        except (AssertionError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s (last: {last!r})")
        time.sleep(interval)


class GatewayNode(FedNode):
    """``parta gateway run`` with a TLS federation listener (the gateway is a node)."""

    def start(self) -> None:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            parta_command() + ["gateway", "run", "-c", self.config_path],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + FED_STARTUP_TIMEOUT
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise NodeFailed(f"gateway exited during start-up:\n{self.log_tail()}")
            try:
                if (
                    http_request("GET", self.base_url + "/health", timeout=2.0)[0] == 200
                    and self.fed_get("/_matrix/federation/v1/version")[0] == 200
                ):
                    return
            except OSError as exc:
                last = exc
            time.sleep(0.2)
        self.kill()
        raise NodeFailed(f"gateway did not start ({last}):\n{self.log_tail()}")

    # the gateway's own HTTP API and CLI ------------------------------------------------
    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        status, _, raw = http_request(
            method, self.base_url + path, body=data, headers={"Content-Type": "application/json"}
        )
        return status, json.loads(raw) if raw else None

    def gw_cli(self, *args: str) -> str:
        return parta("gateway", *args, "-c", self.config_path).stdout

    def create_token(self, school_id: str, name: str, server_class: str = "school") -> str:
        out = parta(
            "gateway",
            "enrol",
            "create",
            "--school-id",
            school_id,
            "--name",
            name,
            "--district",
            "Loopback",
            "--class",
            server_class,
            "-c",
            self.config_path,
        ).stdout
        return out.strip().splitlines()[0]

    def revoke(self, school_id: str) -> int:
        """``parta gateway school revoke``; the new roster version."""
        out = self.gw_cli("school", "revoke", school_id)
        m = re.search(r"roster version (\d+)", out)
        assert m, out
        return int(m.group(1))

    def roster(self) -> dict:
        status, doc = self.api("GET", "/_parta/v1/roster")
        assert status == 200, doc
        return doc

    def roster_version(self) -> int:
        return self.roster()["version"]

    def enrol_keys(
        self, server_name: str, keys: list, school_id: str, name: str, server_class: str = "school"
    ) -> dict:
        """Enrol a server we hold the signing keys of (a fake, or a Synapse) through the
        gateway's HTTP enrolment API -- what ``parta node enrol`` does; the new roster."""
        from federation.enrolment import build_enrolment_request, parse_token

        token = parse_token(self.create_token(school_id, name, server_class))
        body = build_enrolment_request(token, server_name, list(keys), int(time.time() * 1000))
        status, answer = self.api("POST", "/_parta/v1/enrol", body)
        assert status == 200, answer
        return answer

    def enrol_fake(
        self, fake: FakeServer, school_id: str, name: str, server_class: str = "school"
    ) -> dict:
        return self.enrol_keys(fake.server_name, [fake.signing_key], school_id, name, server_class)


class City:
    """One gateway and its schools for a test module."""

    def __init__(self, tmp_root: str, ca: TestCA) -> None:
        self.tmp_root = tmp_root
        self.ca = ca
        self.cluster = FedCluster(os.path.join(tmp_root, "nodes"), ca)
        self.gateway: GatewayNode | None = None
        self.fakes: list[FakeServer] = []
        self._ids = 0

    # --- the gateway -------------------------------------------------------------------
    def start_gateway(self, **overrides: Any) -> GatewayNode:
        fed_port = free_port()
        name = f"localhost:{fed_port}"
        data_dir = os.path.join(self.tmp_root, "gateway")
        pw_file = os.path.join(self.tmp_root, "office-password")
        with open(pw_file, "w") as fh:
            fh.write(OFFICE_PASSWORD + "\n")
        parta(
            "gateway",
            "init",
            "--server-name",
            name,
            "--data-dir",
            data_dir,
            "--port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
            "--federation-port",
            str(fed_port),
            "--admin-password-file",
            pw_file,
        )
        config_path = os.path.join(data_dir, "config.yaml")
        with open(config_path) as fh:
            config = yaml.safe_load(fh)
        cert, key = self.ca.issue(
            name,
            os.path.join(data_dir, "fed-ca-signed.crt"),
            os.path.join(data_dir, "fed-ca-signed.key"),
        )
        config["rate_limits"] = {**config.get("rate_limits", {}), "enabled": False}
        config["federation"] = {
            **(config.get("federation") or {}),
            **parta_federation_section(
                port=fed_port, cert_path=cert, key_path=key, ca_file=self.ca.cert_path
            ),
            "roster_refresh_seconds": REFRESH_SECONDS,
        }
        for k, v in overrides.items():
            config[k] = v
        with open(config_path, "w") as fh:
            yaml.safe_dump(config, fh, sort_keys=False)
        gw = GatewayNode(data_dir, config_path, config, fed_port, self.ca, "gateway")
        self.cluster.nodes.append(gw)  # stopped (and checked) with the others
        gw.start()
        self.gateway = gw
        return gw

    # --- schools -----------------------------------------------------------------------
    def new_node(self, label: str, **overrides: Any) -> FedNode:
        """An initialised, not yet started node (``parta node init``)."""
        fed_port = free_port()
        fed = {"roster_refresh_seconds": REFRESH_SECONDS, **overrides.pop("federation", {})}
        node = self.cluster._init_node(
            label, fed_port, f"localhost:{fed_port}", "sqlite", {}, {"federation": fed, **overrides}
        )
        self.cluster.nodes.append(node)
        return node

    def enrol(self, node: FedNode, name: str | None = None, server_class: str = "school") -> str:
        """``parta node enrol`` of ``node`` with the gateway; returns the school ID."""
        self._ids += 1
        school_id = f"{node.label}{self._ids}"
        token = self.gateway.create_token(school_id, name or f"School {node.label}", server_class)
        parta("node", "enrol", self.gateway.base_url, "--token", token, "-c", node.config_path)
        return school_id

    def school(self, label: str, **overrides: Any) -> tuple[FedNode, str]:
        """A started, enrolled school."""
        node = self.new_node(label, **overrides)
        school_id = self.enrol(node)
        node.start()
        return node, school_id

    def fake(self, school_id: str | None = None, server_class: str = "school") -> FakeServer:
        """An in-process member-server double (enrolled unless ``school_id`` is None)."""
        fake = FakeServer(self.ca, os.path.join(self.tmp_root, f"fake-{len(self.fakes)}")).start()
        self.fakes.append(fake)
        if school_id is not None:
            self.gateway.enrol_fake(fake, school_id, f"Fake {school_id}", server_class)
        return fake

    def wait_version(self, node: Any, version: int, what: str = "") -> None:
        """Until ``node`` enforces roster version ``version`` or later."""
        wait_until(
            lambda: (metric(node, "parta_roster_version") or 0) >= version,
            what or f"{node.label} enforces roster version {version}",
        )

    def stop(self) -> list[str]:
        for fake in self.fakes:
            fake.stop()
        return self.cluster.stop_all()


def signing_key_of(node: FedNode) -> Any:
    from federation.keys import load_signing_key_file

    return load_signing_key_file(
        node.config.get("signing_key_path") or os.path.join(node.data_dir, "signing.key")
    )[0]
