"""City gateway benchmark: the roster check per inbound request, and the fan-out of one
announcement from the gateway to N school servers (not a test).

Run: ``.venv/bin/python bench/bench_city.py [--n 100] [--announcements 3]
[--skip-fanout] [--json FILE]``.

1. **Roster check** (in process, ``timeit``, interleaved batches, best of 25):
   ``RosterPolicy.allow_inbound`` on a roster of 1000 servers (a member and a non-member)
   against a plain ``name in dict``;
   then the whole X-Matrix authentication of one inbound ``PUT /send`` (header parsing,
   destination check, policy, key lookup, canonical JSON of the request, ed25519 verify --
   ``node.federation.xmatrix_auth.XMatrixAuthenticator.authenticate``) with the roster policy
   and pinned keys, and with the open policy and a cached key.
2. **Fan-out** (real processes on loopback): a real gateway (``parta gateway init`` +
   ``parta gateway run``, SQLite, HTTPS federation with a throwaway CA, verification on)
   whose roster lists N simulated school servers; one Twisted process (``--receiver``)
   serves the N server names, each on its own TLS port with its own certificate
   (``federation.server_overrides`` maps each name to its port), checks every request's
   X-Matrix signature against the gateway's key and that its destination is the server of
   that port, and records when each server first received each announcement.  Each
   simulated school joins ``#announcements`` with a real make_join/send_join handshake (its
   own ed25519 key, pinned by the roster); once the gateway's outbound queue is empty, the
   office posts an announcement through the client API and the clock runs until all N
   servers have it.  ``--announcements`` warm rounds (pooled TLS connections), then one cold
   round after a gateway restart (new connections, TLS handshakes; once the gateway's
   start-up directory round is over).  The per-school cost is what each further school
   adds after the first arrival, ``(last - first) / (N - 1)``; the estimate for 1000
   schools is the first arrival plus 999 times that.

Everything is bounded in time; processes are stopped and the temp dir removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from typing import Any
from urllib.parse import quote

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(_HERE)
for _p in (_HERE, _REPO):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from federation.keys import SigningKey, VerifyKey

GATEWAY = "city.bench"
TAG = "bench-announcement-"
ROSTER_SIZE = 1000


def log(msg: str) -> None:
    print(f"[bench_city] {msg}", file=sys.stderr, flush=True)


def school_name(i: int) -> str:
    return f"school{i:04d}.bench"


def school_key(i: int) -> SigningKey:
    return SigningKey("k1", i.to_bytes(4, "big") * 8)


# --- 1. roster check ------------------------------------------------------------------------


def _best(cases: dict[str, Any], number: int, rounds: int = 25) -> dict[str, float]:
    """Best time per call in ns of each case; the cases' batches are interleaved round by
    round, so load from other processes on the shared machine favours none of them."""
    best = {name: float("inf") for name in cases}
    for _ in range(rounds):
        for name, stmt in cases.items():
            best[name] = min(best[name], timeit.timeit(stmt, number=number) / number * 1e9)
    return best


def bench_roster_check() -> dict:
    from federation.roster import RosterState, build_roster, server_entry
    from node.federation.roster_policy import RosterPolicy

    roster_key = SigningKey("roster_1", b"\x07" * 32)
    servers = {
        school_name(i): server_entry(
            school_id=str(i), name=f"School {i}", verify_keys=[school_key(i).verify_key]
        )
        for i in range(1, ROSTER_SIZE + 1)
    }
    doc = build_roster(None, servers, int(time.time() * 1000), 86_400_000, GATEWAY, roster_key)
    state = RosterState(roster_key.verify_key, GATEWAY)
    state.accept(doc, doc["issued_ts"])
    policy = RosterPolicy(state)
    plain = {name: True for name in servers}
    member, outsider = school_name(500), "rogue.example"
    out: dict[str, Any] = {"roster_servers": ROSTER_SIZE}
    out.update(
        _best(
            {
                "allow_inbound_member_ns": lambda: policy.allow_inbound(member),
                "allow_inbound_outsider_ns": lambda: policy.allow_inbound(outsider),
                "dict_lookup_ns": lambda: member in plain,
                "empty_call_ns": lambda: None,  # the lambda's own cost, in every case
            },
            50_000,
        )
    )
    out.update(bench_request_path(policy, servers))
    return out


class _Req:
    """What ``XMatrixAuthenticator.authenticate`` reads of a request."""

    def __init__(self, method: str, uri: str, body: bytes, auth: str) -> None:
        self.method = method
        self.uri = uri
        self.path = uri
        self.body = body
        self.raw = None
        self.headers = {"authorization": auth}

    def json(self) -> Any:
        return json.loads(self.body)


def _run_sync(coro: Any) -> Any:
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise RuntimeError("authentication did not complete synchronously")


def bench_request_path(policy: Any, servers: dict) -> dict:
    from federation.transport.key_responses import ServerKeys
    from federation.transport.keyring import KeyRing
    from federation.transport.xmatrix import sign_request
    from node.federation.policy import AllowAllPolicy, PinnedKeysFromPolicy
    from node.federation.xmatrix_auth import XMatrixAuthenticator

    class Clock:
        def time_ms(self) -> int:
            return int(time.time() * 1000)

    origin, key = school_name(500), school_key(500)
    # A typical transaction: one message PDU (as in bench_core).
    pdu = {
        "type": "m.room.message",
        "room_id": "!" + "r" * 43,
        "sender": f"@teacher:{origin}",
        "origin_server_ts": 1_700_000_000_000,
        "depth": 42,
        "content": {"msgtype": "m.text", "body": "x" * 110},
        "prev_events": ["$" + "p" * 43],
        "auth_events": ["$" + "a" * 43] * 3,
        "hashes": {"sha256": "h" * 43},
        "signatures": {origin: {"ed25519:k1": "s" * 86}},
    }
    body = {"origin": origin, "origin_server_ts": 1_700_000_000_000, "pdus": [pdu]}
    uri = "/_matrix/federation/v1/send/1700000000000_1"
    auth = sign_request("PUT", uri, origin, GATEWAY, key, body)
    raw = json.dumps(body).encode()

    roster_auth = XMatrixAuthenticator(
        GATEWAY, KeyRing(Clock(), pinned=PinnedKeysFromPolicy(policy)), policy
    )
    open_ring = KeyRing(Clock())
    now = Clock().time_ms()
    open_ring.add_server_keys(
        ServerKeys(origin, {key.key_id: key.verify_key}, {}, now + 86_400_000, now, raw={})
    )
    open_auth = XMatrixAuthenticator(GATEWAY, open_ring, AllowAllPolicy())
    for a in (roster_auth, open_auth):  # both accept the request
        assert _run_sync(a.authenticate(_Req("PUT", uri, raw, auth))) == origin
    req = _Req("PUT", uri, raw, auth)
    best = _best(
        {
            "with": lambda: _run_sync(roster_auth.authenticate(req)),
            "open": lambda: _run_sync(open_auth.authenticate(req)),
        },
        200,
    )
    return {
        "xmatrix_request_with_roster_us": best["with"] / 1000,
        "xmatrix_request_open_us": best["open"] / 1000,
    }


# --- 2. fan-out: the receiver process ---------------------------------------------------------


def receiver_main(args: argparse.Namespace) -> int:
    """``--receiver``: N simulated school servers on one TLS port (see module docstring)."""
    from twisted.internet import reactor
    from twisted.web import resource, server

    from federation.errors import MatrixError
    from federation.transport.tls import server_tls_options
    from federation.transport.xmatrix import parse_authorization, verify_request

    with open(args.names, encoding="utf-8") as fh:
        ports = {name: int(port) for name, port in json.load(fh).items()}
    by_port = {port: name for name, port in ports.items()}
    gw_key = VerifyKey.decode(args.gateway_key_id, args.gateway_key)
    arrivals: dict[str, dict[str, float]] = {}
    counters = {"txns": 0, "pdus": 0, "refused": 0, "other": 0}

    def key_of(origin: str, key_id: str) -> VerifyKey | None:
        return gw_key if origin == args.gateway and key_id == gw_key.key_id else None

    class Root(resource.Resource):
        isLeaf = True

        def render(self, request: Any) -> bytes:
            now = time.time()
            path = request.path.decode()
            request.setHeader(b"Content-Type", b"application/json")
            if path == "/_bench/arrivals":
                tag = request.args.get(b"tag", [b""])[0].decode()
                return json.dumps({"arrivals": arrivals.get(tag, {}), **counters}).encode()
            if request.method == b"PUT" and path.startswith("/_matrix/federation/v1/send/"):
                body = json.loads(request.content.read() or b"null")
                headers = request.requestHeaders.getRawHeaders(b"authorization")
                try:
                    destination = parse_authorization(headers)[0].destination
                    if destination != by_port.get(request.getHost().port):
                        raise ValueError(f"not the server of this port: {destination}")
                    verify_request("PUT", request.uri, body, headers, destination, key_of)
                except (MatrixError, ValueError) as exc:
                    counters["refused"] += 1
                    request.setResponseCode(401)
                    return json.dumps({"errcode": "M_UNAUTHORIZED", "error": str(exc)}).encode()
                counters["txns"] += 1
                for pdu in body.get("pdus", []):
                    counters["pdus"] += 1
                    text = (pdu.get("content") or {}).get("body")
                    if isinstance(text, str) and text.startswith(TAG):
                        tag = text.split()[0]
                        arrivals.setdefault(tag, {}).setdefault(destination, now)
                return b'{"pdus": {}}'
            # Anything else (directory gathering, stats, hints): not here, and no pooled
            # connection is kept for it (the cold round must start without connections).
            counters["other"] += 1
            request.setHeader(b"Connection", b"close")
            request.setResponseCode(404)
            return b'{"errcode": "M_UNRECOGNIZED", "error": "bench receiver"}'

    site = server.Site(Root())
    site.log = lambda *a, **kw: None  # type: ignore[method-assign]
    for name, port in ports.items():
        reactor.listenSSL(
            port,
            site,
            server_tls_options(
                os.path.join(args.certs, name + ".crt"), os.path.join(args.certs, name + ".key")
            ),
            interface="127.0.0.1",
        )
    reactor.listenTCP(args.port, site, interface="127.0.0.1")  # /_bench/ (control)
    print("ready", flush=True)
    reactor.run()
    return 0


# --- 2. fan-out: the driver -------------------------------------------------------------------


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports (all bound at once, then released)."""
    import socket

    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _http(
    method: str,
    url: str,
    body: Any = None,
    token: str | None = None,
    context: Any = None,
    timeout: float = 60,
) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        url, data=json.dumps(body).encode() if body is not None else None, method=method
    )
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:  # noqa: S310 - loopback
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


class Fanout:
    def __init__(self, n: int, root: str) -> None:
        from federation_env import TestCA

        self.n = n
        self.root = root
        self.ca = TestCA(os.path.join(root, "ca"))
        self.names = [school_name(i) for i in range(1, n + 1)]
        self.gw_dir = os.path.join(root, "gateway")
        ports = _free_ports(n + 4)  # all at once: no two of them can be the same
        self.client_port, self.fed_port, self.metrics_port, self.recv_port = ports[:4]
        self.ports = dict(zip(self.names, ports[4:], strict=True))
        self.gateway: subprocess.Popen | None = None
        self.receiver: subprocess.Popen | None = None

    # setup ------------------------------------------------------------------------------
    def init_gateway(self) -> None:
        import yaml

        from node.cli.main import main

        pw = os.path.join(self.root, "office-password")
        with open(pw, "w") as fh:
            fh.write("bench office password\n")
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            rc = main(
                [
                    "gateway",
                    "init",
                    "--server-name",
                    GATEWAY,
                    "--data-dir",
                    self.gw_dir,
                    "--port",
                    str(self.client_port),
                    "--metrics-port",
                    str(self.metrics_port),
                    "--federation-port",
                    str(self.fed_port),
                    "--admin-password-file",
                    pw,
                ]
            )
        assert rc == 0
        self.ca.issue(
            GATEWAY, os.path.join(self.gw_dir, "tls.crt"), os.path.join(self.gw_dir, "tls.key")
        )
        path = os.path.join(self.gw_dir, "config.yaml")
        with open(path) as fh:
            config = yaml.safe_load(fh)
        config["rate_limits"] = {**config.get("rate_limits", {}), "enabled": False}
        config["log_level"] = "WARNING"
        fed = config["federation"]
        fed["tls_ca_file"] = self.ca.cert_path
        fed["server_overrides"] = {name: f"127.0.0.1:{port}" for name, port in self.ports.items()}
        fed["ip_range_whitelist"] = ["127.0.0.0/8", "::1/128"]  # loopback: refused by default
        config["gateway"]["directory_refresh_seconds"] = 86400
        with open(path, "w") as fh:
            yaml.safe_dump(config, fh, sort_keys=False)
        self.publish_roster(path)

    def publish_roster(self, config_path: str) -> None:
        from federation.roster import server_entry
        from gateway.cli import _Admin

        with _Admin(config_path) as a:
            current = a.wait(a.roster.current())
            servers = dict(current["servers"])
            for i, name in enumerate(self.names, 1):
                servers[name] = server_entry(
                    school_id=str(i),
                    name=f"Bench school {i}",
                    verify_keys=[school_key(i).verify_key],
                )
            doc = a.wait(a.roster.publish(servers))
        log(f"roster version {doc['version']}: gateway + {self.n} schools")

    def start_receiver(self) -> None:
        from federation.keys import read_signing_keys

        with open(os.path.join(self.gw_dir, "signing.key")) as fh:
            gw_key = read_signing_keys(fh.read())[0]
        names_file = os.path.join(self.root, "names.json")
        with open(names_file, "w") as fh:
            json.dump(self.ports, fh)
        certs = os.path.join(self.root, "certs")
        os.makedirs(certs)
        for name in self.names:
            self.ca.issue(
                name, os.path.join(certs, name + ".crt"), os.path.join(certs, name + ".key")
            )
        self.receiver = subprocess.Popen(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--receiver",
                "--port",
                str(self.recv_port),
                "--names",
                names_file,
                "--certs",
                certs,
                "--gateway",
                GATEWAY,
                "--gateway-key-id",
                gw_key.key_id,
                "--gateway-key",
                gw_key.verify_key.encode(),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.receiver.stdout.readline().strip() == "ready"

    def start_gateway(self) -> None:
        exe = os.path.join(os.path.dirname(sys.executable), "parta")
        self._log = open(os.path.join(self.gw_dir, "gateway.log"), "ab")
        self.gateway = subprocess.Popen(
            [exe, "gateway", "run", "-c", os.path.join(self.gw_dir, "config.yaml")],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.gateway.poll() is not None:
                with open(self._log.name, "rb") as fh:
                    tail = fh.read()[-2000:].decode("utf-8", "replace")
                raise RuntimeError(f"the gateway exited during start-up:\n{tail}")
            try:
                if (
                    _http("GET", f"{self.url}/health", timeout=2)[0] == 200
                    and self.fed_request("GET", "/_matrix/federation/v1/version", None, None)[0]
                    == 200
                ):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("gateway did not start")

    def stop_gateway(self) -> int:
        assert self.gateway is not None
        self.gateway.send_signal(signal.SIGTERM)
        code = self.gateway.wait(60)
        self._log.close()
        self.gateway = None
        return code

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    def fed_request(self, method: str, path: str, body: Any, signer: int | None) -> tuple[int, Any]:
        """A request to the gateway's federation listener as simulated school ``signer``."""
        from federation.transport.xmatrix import sign_request
        from federation_env import TLSNameConnection

        headers = {"Host": GATEWAY, "Content-Type": "application/json"}
        if signer is not None:
            headers["Authorization"] = sign_request(
                method, path, school_name(signer), GATEWAY, school_key(signer), body
            )
        conn = TLSNameConnection(GATEWAY, self.fed_port, self.ca.client_context(), 60)
        try:
            conn.request(
                method,
                path,
                body=json.dumps(body).encode() if body is not None else None,
                headers=headers,
            )
            resp = conn.getresponse()
            status, raw = resp.status, resp.read()
        finally:
            conn.close()
        return status, json.loads(raw) if raw else None

    def join_all(self, room_id: str) -> float:
        from federation.events.builder import build_event
        from federation.room_versions import get_room_version

        t0 = time.monotonic()
        for i in range(1, self.n + 1):
            user = f"@head:{school_name(i)}"
            status, body = self.fed_request(
                "GET",
                f"/_matrix/federation/v1/make_join/{quote(room_id)}/{quote(user)}"
                "?ver=10&ver=11&ver=12",
                None,
                i,
            )
            assert status == 200, (status, body)
            t = body["event"]
            ev = build_event(
                get_room_version(body["room_version"]),
                server_name=school_name(i),
                signing_key=school_key(i),
                type="m.room.member",
                sender=user,
                state_key=user,
                content=t["content"],
                room_id=room_id,
                prev_events=t["prev_events"],
                auth_events=t["auth_events"],
                depth=t["depth"],
                origin_server_ts=int(time.time() * 1000),
            )
            status, body = self.fed_request(
                "PUT",
                f"/_matrix/federation/v2/send_join/{quote(room_id)}/{quote(ev.event_id)}",
                ev.pdu,
                i,
            )
            assert status == 200, (status, body)
        return time.monotonic() - t0

    def queued(self) -> int:
        db = sqlite3.connect(os.path.join(self.gw_dir, "node.db"), timeout=30)
        try:
            return sum(
                db.execute(f"select count(*) from {t}").fetchone()[0]
                for t in ("federation_outbound_pdus", "federation_outbound_edus")
            )
        finally:
            db.close()

    def wait_drained(self, timeout: float = 600) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.queued() == 0:
                return time.monotonic() - t0
            time.sleep(0.5)
        raise RuntimeError("the gateway's outbound queue did not drain")

    def wait_startup_settled(self, timeout: float = 300) -> None:
        """Until the gateway's start-up directory round (publicRooms + stats of every
        school, answered 404 here) is over: no such request for 2 s."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            other = self.arrivals("")["other"]
            if other != last:
                last, since = other, time.monotonic()
            elif time.monotonic() - since > 2:
                return
            time.sleep(0.2)

    def arrivals(self, tag: str) -> dict:
        status, body = _http(
            "GET", f"http://127.0.0.1:{self.recv_port}/_bench/arrivals?tag={quote(tag)}"
        )
        return body

    def announce(self, token: str, room_id: str, k: int) -> dict:
        tag = f"{TAG}{k}"
        t0 = time.time()
        status, body = _http(
            "PUT",
            f"{self.url}/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message/bench{k}",
            {
                "msgtype": "m.text",
                "body": f"{tag} Schools close at noon on Friday for the city festival.",
            },
            token,
        )
        assert status == 200, (status, body)
        sent = time.time() - t0
        deadline = time.monotonic() + 300
        while True:
            got = self.arrivals(tag)["arrivals"]
            if len(got) >= self.n or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        delays = sorted(ts - t0 for ts in got.values())
        if len(delays) < self.n:
            raise RuntimeError(f"only {len(delays)}/{self.n} servers got {tag}")
        # Per school: what each further destination adds after the first one arrived;
        # 1000 schools: the first arrival plus 999 times that.
        marginal = (delays[-1] - delays[0]) / max(1, self.n - 1)
        return {
            "send_request_s": sent,
            "first_s": delays[0],
            "median_s": statistics.median(delays),
            "all_s": delays[-1],
            "per_school_ms": marginal * 1000,
            "estimate_1000_s": delays[0] + marginal * 999,
        }

    def stop(self) -> None:
        if self.gateway is not None and self.gateway.poll() is None:
            self.stop_gateway()
        if self.receiver is not None and self.receiver.poll() is None:
            self.receiver.terminate()
            self.receiver.wait(30)


def bench_fanout(n: int, rounds: int) -> dict:
    root = tempfile.mkdtemp(prefix="parta-bench-city-")
    f = Fanout(n, root)
    try:
        f.init_gateway()
        f.start_receiver()
        f.start_gateway()
        status, login = _http(
            "POST",
            f"{f.url}/_matrix/client/v3/login",
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": "office"},
                "password": "bench office password",
            },
        )
        assert status == 200, login
        token = login["access_token"]
        alias = quote(f"#announcements:{GATEWAY}")
        deadline = time.monotonic() + 60
        while True:
            status, body = _http("GET", f"{f.url}/_matrix/client/v3/directory/room/{alias}")
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        room_id = body["room_id"]
        join_s = f.join_all(room_id)
        log(f"{n} schools joined #announcements in {join_s:.1f} s")
        drain_s = f.wait_drained()
        log(f"join events delivered (queue drained {drain_s:.1f} s after the last join)")
        warm = []
        for k in range(1, rounds + 1):
            warm.append(f.announce(token, room_id, k))
            log(f"warm round {k}: all {n} in {warm[-1]['all_s']:.3f} s")
            f.wait_drained()
        code = f.stop_gateway()
        assert code == 0, f"gateway exited with {code}"
        f.start_gateway()
        status, login = _http(
            "POST",
            f"{f.url}/_matrix/client/v3/login",
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": "office"},
                "password": "bench office password",
            },
        )
        f.wait_startup_settled()
        cold = f.announce(login["access_token"], room_id, rounds + 1)
        log(f"cold round (after a restart): all {n} in {cold['all_s']:.3f} s")
        counters = f.arrivals("")
        return {
            "n": n,
            "join_s": join_s,
            "warm": warm,
            "cold": cold,
            "receiver": {k: counters[k] for k in ("txns", "pdus", "refused", "other")},
        }
    finally:
        f.stop()
        shutil.rmtree(root, ignore_errors=True)


# --- main -----------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100, help="simulated school servers (100)")
    p.add_argument("--announcements", type=int, default=3, help="warm rounds (3)")
    p.add_argument("--skip-fanout", action="store_true")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--receiver", action="store_true", help=argparse.SUPPRESS)
    for name in ("--port", "--names", "--certs", "--gateway", "--gateway-key-id", "--gateway-key"):
        p.add_argument(name, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.receiver:
        args.port = int(args.port)
        return receiver_main(args)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()}",
        "load_avg": os.getloadavg()[0],
    }
    log("roster check ...")
    results["roster_check"] = rc = bench_roster_check()
    print(
        f"roster check ({rc['roster_servers']} servers): allow_inbound member "
        f"{rc['allow_inbound_member_ns']:.0f} ns, outsider {rc['allow_inbound_outsider_ns']:.0f}"
        f" ns, plain dict lookup {rc['dict_lookup_ns']:.0f} ns (an empty call: "
        f"{rc['empty_call_ns']:.0f} ns)"
    )
    print(
        f"X-Matrix authenticated request: {rc['xmatrix_request_with_roster_us']:.1f} µs with "
        f"the roster, {rc['xmatrix_request_open_us']:.1f} µs open"
    )
    if not args.skip_fanout:
        log(f"fan-out to {args.n} simulated schools ...")
        results["fanout"] = fo = bench_fanout(args.n, args.announcements)
        for k, r in enumerate(fo["warm"], 1):
            print(
                f"fan-out warm {k}: first {r['first_s']:.3f} s, median {r['median_s']:.3f} s, "
                f"all {fo['n']} {r['all_s']:.3f} s ({r['per_school_ms']:.2f} ms/school, "
                f"1000 schools ~ {r['estimate_1000_s']:.1f} s)"
            )
        r = fo["cold"]
        print(
            f"fan-out cold: first {r['first_s']:.3f} s, median {r['median_s']:.3f} s, "
            f"all {fo['n']} {r['all_s']:.3f} s ({r['per_school_ms']:.2f} ms/school, "
            f"1000 schools ~ {r['estimate_1000_s']:.1f} s)"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
