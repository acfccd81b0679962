"""``parta demo`` (and ``make demo``) as a city: a gateway and two school
nodes on loopback, SQLite, each in its own process, federating over HTTPS.

Steps (each prints a progress line; re-runs reuse ``var/demo-city`` and skip what is done):

1. a demo CA (``ca.crt``/``ca.key``, generated on the fly) and, once per node,
   ``parta gateway init`` / ``parta node init`` with a federation certificate issued by that
   CA for the node's server name; every config points ``federation.tls_ca_file`` at the CA
   and maps the other servers' names to their loopback ports (``server_overrides``);
2. the gateway starts; each school not yet enrolled gets a one-time token
   (``parta gateway enrol create``) and enrols (``parta node enrol``);
3. demo accounts are created in each school's database (the same function as
   ``parta node user add``); the schools start and are waited for until they enforce the
   latest roster;
4. seeding through the client API (``demo_city_seed``): class rooms, a public club room per
   school, the cross-school teachers' room (created on school A, school B's teachers join
   over federation), everyone joins the city announcements room, the office posts an
   announcement, the gateway gathers the directory and invites the directors, who join
   the directors' room;
5. verification: a teacher of school B sees school A's message and the announcement, the
   gateway lists both schools as enrolled and both schools' public rooms.

Then it prints the dashboard URL, the client URLs and the demo logins and serves until
Ctrl-C (or SIGTERM), stopping every process cleanly.  ``--seed-only`` stops after step 5.
Ports: the gateway listens on ``--port`` (client), +1 (metrics), +2 (federation); school A
on +10..+12, school B on +20..+22 (fixed at the first run, see ``demo.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from . import demo_city_seed as seed
from .demo_city_layout import (
    OFFICE,
    PASSWORD,
    STEP_TIMEOUT,
    City,
    DemoError,
    NodeDir,
    log_tail,
    say,
)


class _Stop(BaseException):
    """Ctrl-C / SIGTERM."""


def parta_command() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "parta")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-c", "import sys; from node.cli.main import main; sys.exit(main())"]


def _cli(*argv: str) -> str:
    """A ``parta`` command in this process (no reactor); its stdout; DemoError on failure."""
    from node.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    if rc != 0:
        raise DemoError(f"parta {' '.join(argv[:3])} failed: {err.getvalue().strip()}")
    return out.getvalue()


def _subprocess_cli(*argv: str) -> str:
    res = subprocess.run(
        parta_command() + list(argv),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    if res.returncode != 0:
        raise DemoError(f"parta {' '.join(argv[:3])} failed: {(res.stderr or res.stdout).strip()}")
    return res.stdout


# --- step 1: CA, init, configs ---------------------------------------------------------------


def _ports(root: str, base_port: int) -> int:
    """The base port fixed at the first run (``demo.json``)."""
    path = os.path.join(root, "demo.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            stored = int(json.load(fh)["base_port"])
        if stored != base_port:
            say(
                f"  (reusing the ports of the first run: gateway on {stored}; "
                f"--fresh to change them)"
            )
        return stored
    os.makedirs(root, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"base_port": base_port}, fh)
    return base_port


def _check_ports_free(city: City) -> None:
    for node in city.nodes:
        for port in (node.client_port, node.metrics_port, node.fed_port):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Twisted does
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    raise DemoError(
                        f"port {port} ({node.label}) is in use: stop what uses "
                        f"it, or start afresh with --fresh --port N"
                    ) from None


def init_city(city: City) -> None:
    from federation.transport.tls import generate_ca, issue_certificate

    if not os.path.exists(city.ca_cert):
        generate_ca("Parta demo city CA", city.ca_cert, city.ca_key)
        say(f"[1/5] demo CA created: {city.ca_cert}")
    else:
        say(f"[1/5] demo CA: {city.ca_cert}")
    pw_file = os.path.join(city.root, ".office-password")
    with open(pw_file, "w", encoding="utf-8") as fh:
        fh.write(PASSWORD + "\n")
    for node in city.nodes:
        if os.path.exists(node.config_path):
            continue
        common = [
            "--server-name",
            node.server,
            "--data-dir",
            node.path,
            "--port",
            str(node.client_port),
            "--metrics-port",
            str(node.metrics_port),
            "--federation-port",
            str(node.fed_port),
        ]
        if node.kind == "gateway":
            _cli(
                "gateway",
                "init",
                *common,
                "--city-name",
                "City office",
                "--admin",
                OFFICE,
                "--admin-password-file",
                pw_file,
            )
        else:
            _cli("node", "init", *common)
        issue_certificate(
            city.ca_cert,
            city.ca_key,
            node.server,
            os.path.join(node.path, "tls.crt"),
            os.path.join(node.path, "tls.key"),
        )
        say(f"      initialised {node.label} ({node.server}) in {node.path}")
    for node in city.nodes:
        configure(city, node)


def configure(city: City, node: NodeDir) -> None:
    """Ports, the demo CA and the other servers' loopback addresses (every start)."""
    import yaml

    with open(node.config_path, encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    config["client_listener"] = {
        **config.get("client_listener", {}),
        "bind_address": "127.0.0.1",
        "port": node.client_port,
    }
    config["metrics_listener"] = {
        **config.get("metrics_listener", {}),
        "bind_address": "127.0.0.1",
        "port": node.metrics_port,
    }
    fed = config.setdefault("federation", {})
    fed["listener"] = {
        **fed.get("listener", {}),
        "bind_address": "127.0.0.1",
        "port": node.fed_port,
        "tls_certificate_path": "tls.crt",
        "tls_private_key_path": "tls.key",
    }
    fed["tls_ca_file"] = city.ca_cert
    fed["server_overrides"] = {
        o.server: f"127.0.0.1:{o.fed_port}" for o in city.nodes if o is not node
    }
    # The demo city lives on loopback, which outbound federation refuses by default.
    fed["ip_range_whitelist"] = ["127.0.0.0/8", "::1/128"]
    if node.kind == "gateway":
        config.setdefault("gateway", {})["directory_refresh_seconds"] = 60
    with open(node.config_path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)


# --- processes -----------------------------------------------------------------------------


def start(node: NodeDir, city: City) -> None:
    node.log = open(os.path.join(node.path, f"{node.kind}.log"), "ab")
    node.proc = subprocess.Popen(
        parta_command() + [node.kind, "run", "-c", node.config_path],
        stdout=node.log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    seed.wait_ready(node, city.ca_cert, STEP_TIMEOUT)


def stop_all(city: City) -> bool:
    """SIGTERM every running process (schools first); True when all exited with 0."""
    for s in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not interrupt this
        signal.signal(s, signal.SIG_IGN)
    ok = True
    for node in reversed(city.nodes):
        if node.proc is not None and node.proc.poll() is None:
            node.proc.send_signal(signal.SIGTERM)
    for node in reversed(city.nodes):
        if node.proc is None:
            continue
        try:
            code = node.proc.wait(30)
        except subprocess.TimeoutExpired:
            node.proc.kill()
            code = node.proc.wait(10)
        if code != 0:
            ok = False
            say(f"  {node.label} exited with status {code} (log: {node.log.name})")
        node.log.close()
        node.proc = None
    return ok


# --- step 2/3: enrolment and accounts ------------------------------------------------------


def enrol_schools(city: City) -> None:
    for node in city.schools:
        school = node.school
        assert school is not None
        if os.path.exists(os.path.join(node.path, "roster_key.json")):
            say(f"[2/5] {school.name} is enrolled")
            continue
        out = _cli(
            "gateway",
            "enrol",
            "create",
            "-c",
            city.gateway.config_path,
            "--school-id",
            school.school_id,
            "--name",
            school.name,
            "--district",
            school.district,
        )
        token = out.strip().splitlines()[0]
        _subprocess_cli("node", "enrol", city.gateway.url, "--token", token, "-c", node.config_path)
        say(f"[2/5] {school.name} enrolled with a one-time token ({node.server})")


def create_accounts(city: City) -> None:
    from node.accounts import admin
    from node.accounts.admin import AdminError
    from node.cli.node_cmd import _engine
    from node.config import load_config

    for node in city.schools:
        school = node.school
        assert school is not None
        config = load_config(node.config_path)
        engine = _engine(config)
        made = 0
        try:
            for localpart, role, display in school.users:
                try:
                    with engine.begin() as conn:
                        admin.create_user(
                            conn,
                            server_name=config.server_name,
                            localpart=localpart,
                            password=PASSWORD,
                            role=role,
                            display_name=display,
                            now_ms=int(time.time() * 1000),
                        )
                    made += 1
                except AdminError as exc:
                    if "already exists" not in str(exc):
                        raise DemoError(f"{school.name}: {exc}") from None
        finally:
            engine.dispose()
        say(
            f"[3/5] {school.name}: {len(school.users)} accounts"
            + (f" ({made} created)" if made else "")
        )


# --- the command ---------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """``parta demo`` (city mode); ``args`` from ``node.cli.demo``."""
    root = os.path.abspath(args.data_dir or os.path.join("var", "demo-city"))
    if args.fresh and os.path.isdir(root):
        shutil.rmtree(root)
    say(
        "Parta demo city: a gateway and two school nodes on loopback (SQLite, HTTPS "
        "federation with a demo CA)"
    )
    say(f"  data dir: {root}")

    def on_signal(signum: int, _frame: Any) -> None:
        raise _Stop()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    city = City(root, _ports(root, args.port))
    try:
        try:
            _check_ports_free(city)
            init_city(city)
            start(city.gateway, city)
            say(f"      gateway running: {city.gateway.url}")
            enrol_schools(city)
            create_accounts(city)
            for node in city.schools:
                start(node, city)
                say(f"      {node.label} running: {node.url}")
            rooms = seed.seed(city)
            seed.verify(city, rooms)
            seed.print_summary(city, rooms)
            if args.seed_only:
                say("Seeded and verified; stopping (--seed-only).")
                return 0 if stop_all(city) else 1
            say("Serving; Ctrl-C stops the gateway and both schools.")
            while True:
                for node in city.nodes:
                    if node.proc.poll() is not None:
                        raise DemoError(
                            f"{node.label} stopped unexpectedly "
                            f"(status {node.proc.returncode}):\n{log_tail(node)}"
                        )
                time.sleep(0.5)
        except _Stop:
            say("\nStopping the city...")
            ok = stop_all(city)
            say("Stopped." if ok else "Stopped (with errors).")
            return 0 if ok else 1
        except DemoError as exc:
            say(f"parta demo: {exc}")
            stop_all(city)
            return 1
        except BaseException:
            stop_all(city)
            raise
    finally:
        for s, h in old.items():
            signal.signal(s, h)
