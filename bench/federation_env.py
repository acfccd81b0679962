"""Federation plumbing shared by the federation e2e tests, the Synapse interop tests and
``bench/bench_federation.py``: a test CA, the node's ``federation:`` config section, an
in-process fake homeserver with a real signing key, and Parta / Synapse servers with an HTTPS
federation listener on loopback.

* ``TestCA`` - a throwaway CA (``federation.transport.tls.generate_ca``) that signs every
  server's certificate, so outbound TLS verification stays ON everywhere: Parta nodes get the
  CA file as ``federation.tls_ca_file``, Synapse as ``federation_custom_ca_list``.
* ``parta_federation_section`` - the ``federation:`` section of a node's config.
* ``FakeServer`` - a minimal homeserver in this process: serves its signed keys on
  ``GET /_matrix/key/v2/server`` over HTTPS, records what it receives, answers ``/send`` with
  success, and signs requests (``federation.transport.xmatrix.sign_request``) and events
  (``federation.events.builder``) with its own key - the tool for the attack tests and the
  ingest benchmark.
* ``FederatedParta`` / ``FederatedSynapse`` - ``bench.synapse_env``'s servers with the
  server name ``localhost:<federation port>`` and a TLS federation listener.

Only loopback addresses are used.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import ssl
import sys
import threading
import time
import uuid
from typing import Any, Callable, Iterable
from urllib.parse import quote

import yaml

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from federation.canonical_json import encode_canonical_json
from federation.events.builder import build_event, next_depth
from federation.events.model import Event
from federation.keys import SigningKey
from federation.room_versions import RoomVersion, get_room_version
from federation.transport.key_server import build_server_keys
from federation.transport.tls import generate_ca, issue_certificate
from federation.transport.xmatrix import sign_request
from synapse_env import PartaServer, SynapseServer, free_port

KEY_LIFETIME_MS = 24 * 3600 * 1000


def now_ms() -> int:
    return int(time.time() * 1000)


def q(segment: str) -> str:
    """One percent-encoded path segment."""
    return quote(segment, safe="")


# --- certificates --------------------------------------------------------------------------
class TestCA:
    """A CA for one test session / bench run; ``issue`` signs a server certificate."""

    __test__ = False  # not a pytest class

    def __init__(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.cert_path = os.path.join(directory, "test-ca.crt")
        self.key_path = os.path.join(directory, "test-ca.key")
        generate_ca("Parta federation test CA", self.cert_path, self.key_path)

    def issue(
        self, server_name: str, cert_path: str, key_path: str, extra_sans: Iterable[str] = ()
    ) -> tuple[str, str]:
        issue_certificate(
            self.cert_path, self.key_path, server_name, cert_path, key_path, extra_sans=extra_sans
        )
        return cert_path, key_path

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this CA (hostname checking on)."""
        ctx = ssl.create_default_context(cafile=self.cert_path)
        return ctx


LOOPBACK_RANGES = ("127.0.0.0/8", "::1/128")


def parta_federation_section(
    *,
    port: int,
    cert_path: str,
    key_path: str,
    ca_file: str,
    overrides: dict[str, str] | None = None,
    bind_address: str = "127.0.0.1",
    insecure: bool = False,
) -> dict:
    """The ``federation:`` section of a Parta node's config (node/config.py)."""
    return {
        "listener": {
            "bind_address": bind_address,
            "port": port,
            "tls_certificate_path": cert_path,
            "tls_private_key_path": key_path,
        },
        "tls_ca_file": ca_file,
        "insecure_skip_tls_verify": insecure,
        "server_overrides": dict(overrides or {}),
        # Every node here is on loopback, which outbound federation refuses by default.
        "ip_range_whitelist": list(LOOPBACK_RANGES),
    }


class TLSNameConnection(http.client.HTTPSConnection):
    """HTTPS to ``127.0.0.1:port`` checking the certificate for ``tls_name`` (a server name's
    host that need not resolve, e.g. ``school-a1.fed.test`` mapped by server_overrides)."""

    def __init__(
        self, tls_name: str, port: int, context: ssl.SSLContext, timeout: float = 60.0
    ) -> None:
        super().__init__("127.0.0.1", port, timeout=timeout, context=context)
        self._tls_name = tls_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._tls_name)


def server_host(server_name: str) -> str:
    """The hostname part of ``host[:port]`` (IPv6 literals keep their brackets off)."""
    if server_name.startswith("["):
        return server_name[1 : server_name.index("]")]
    return server_name.rsplit(":", 1)[0] if ":" in server_name else server_name


# --- a fake homeserver ---------------------------------------------------------------------
Handler = Callable[["FakeServer", str, str, Any, dict], "tuple[int, Any] | None"]


class _RequestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_HTTPServer"

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet
        pass

    def _handle(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, reply = fake.dispatch(self.command, self.path, body, headers)
        data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
        self.send_response(status)
        self.send_header(
            "Content-Type",
            "application/octet-stream" if isinstance(reply, bytes) else "application/json",
        )
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = _handle


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    fake: "FakeServer"


class FakeServer:
    """A homeserver that is only a signing key and an HTTPS endpoint (see module docstring).

    ``received`` lists ``(method, path, json_body, headers)`` of every request after the key
    endpoint; ``handlers`` may be extended with ``handler(fake, method, path, body, headers)``
    returning ``(status, json)`` or None to fall through.
    """

    def __init__(self, ca: TestCA, workdir: str) -> None:
        os.makedirs(workdir, exist_ok=True)
        self.workdir = workdir
        self.ca = ca
        self.port = free_port()
        self.server_name = f"localhost:{self.port}"
        self.signing_key = SigningKey.generate()
        self.cert_path, self.key_path = ca.issue(
            self.server_name, os.path.join(workdir, "fake.crt"), os.path.join(workdir, "fake.key")
        )
        self.received: list[tuple[str, str, Any, dict]] = []
        self.handlers: list[Handler] = []
        self._lock = threading.Lock()
        self._txn = 0
        self.room_versions: dict[str, str] = {}  # room ID -> version, for /send replies
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._client_ctx = ca.client_context()
        self._local = threading.local()

    # server side ------------------------------------------------------------------------
    def start(self) -> "FakeServer":
        httpd = _HTTPServer(("127.0.0.1", self.port), _RequestHandler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_path, self.key_path)
        httpd.socket = ctx.wrap_socket(
            httpd.socket, server_side=True, do_handshake_on_connect=False
        )
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name="fake-hs", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def server_keys(self) -> dict:
        return build_server_keys(
            self.server_name, [self.signing_key], [], now_ms() + KEY_LIFETIME_MS
        )

    def dispatch(self, method: str, path: str, body: Any, headers: dict) -> tuple[int, Any]:
        if method == "GET" and path.split("?")[0] == "/_matrix/key/v2/server":
            return 200, self.server_keys()
        with self._lock:
            self.received.append((method, path, body, headers))
        for handler in list(self.handlers):
            result = handler(self, method, path, body, headers)
            if result is not None:
                return result
        if method == "GET" and path.startswith("/_matrix/federation/v1/version"):
            return 200, {"server": {"name": "parta-test-fake", "version": "0"}}
        if method == "PUT" and path.startswith("/_matrix/federation/v1/send/"):
            pdus = body.get("pdus", []) if isinstance(body, dict) else []
            results = {}
            for pdu in pdus:
                try:
                    rv = get_room_version(self.room_versions.get(pdu.get("room_id"), "12"))
                    results[Event(pdu, rv).event_id] = {}
                except Exception:  # noqa: BLE001 - a fake only reports success
                    pass
            return 200, {"pdus": results}
        return 404, {"errcode": "M_NOT_FOUND", "error": f"fake server: no {method} {path}"}

    def requests_to(self, prefix: str) -> list[tuple[str, str, Any, dict]]:
        with self._lock:
            return [r for r in self.received if r[1].startswith(prefix)]

    def received_pdus(self) -> list[dict]:
        out = []
        for _m, _p, body, _h in self.requests_to("/_matrix/federation/v1/send/"):
            if isinstance(body, dict):
                out.extend(body.get("pdus", []))
        return out

    # client side ------------------------------------------------------------------------
    def request(
        self,
        destination: str,
        method: str,
        path: str,
        body: Any = None,
        *,
        port: int | None = None,
        sign: bool = True,
        signing_key: SigningKey | None = None,
        origin: str | None = None,
        sign_destination: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60.0,
        keepalive: bool = False,
    ) -> tuple[int, Any]:
        """An HTTPS request to ``destination`` (``localhost:PORT``, or ``port`` given), signed
        with X-Matrix unless ``sign`` is false.  ``signing_key``/``origin``/
        ``sign_destination`` let a test sign with the wrong key, origin or destination."""
        if port is None:
            port = int(destination.rsplit(":", 1)[1])
        hdrs = {"Host": destination, **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if sign:
            hdrs["Authorization"] = sign_request(
                method,
                path,
                origin or self.server_name,
                sign_destination or destination,
                signing_key or self.signing_key,
                body,
            )
        if keepalive:
            status, raw = self._keepalive_request(
                destination, port, method, path, data, hdrs, timeout
            )
        else:
            conn = TLSNameConnection(server_host(destination), port, self._client_ctx, timeout)
            try:
                conn.request(method, path, body=data, headers=hdrs)
                resp = conn.getresponse()
                status, raw = resp.status, resp.read()
            finally:
                conn.close()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw

    def _keepalive_request(
        self,
        destination: str,
        port: int,
        method: str,
        path: str,
        data: bytes | None,
        hdrs: dict,
        timeout: float,
    ) -> tuple[int, bytes]:
        """One persistent connection per thread and destination (the benchmark's sender)."""
        conns = self._local.__dict__.setdefault("conns", {})
        for attempt in (1, 2):
            conn = conns.get((destination, port))
            if conn is None:
                conn = conns[(destination, port)] = TLSNameConnection(
                    server_host(destination), port, self._client_ctx, timeout
                )
            try:
                conn.request(method, path, body=data, headers=hdrs)
                resp = conn.getresponse()
                return resp.status, resp.read()
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                conns.pop((destination, port), None)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    # events -----------------------------------------------------------------------------
    def build_event(
        self,
        room_version: RoomVersion | str,
        *,
        type: str,
        sender: str,
        content: dict,
        room_id: str,
        prev_events: list[str],
        auth_events: list[str],
        depth: int,
        state_key: str | None = None,
        signing_key: SigningKey | None = None,
        server_name: str | None = None,
        origin_server_ts: int | None = None,
    ) -> Event:
        rv = get_room_version(room_version) if isinstance(room_version, str) else room_version
        return build_event(
            rv,
            server_name=server_name or self.server_name,
            signing_key=signing_key or self.signing_key,
            type=type,
            sender=sender,
            content=content,
            room_id=room_id,
            prev_events=prev_events,
            auth_events=auth_events,
            depth=depth,
            origin_server_ts=origin_server_ts or now_ms(),
            state_key=state_key,
        )

    def prepare_transaction(
        self, destination: str, pdus: list[dict]
    ) -> tuple[str, bytes, dict[str, str]]:
        """A signed ``PUT /send`` ready to go: (path, body, headers), for a load generator
        that does its JSON and signing work before the clock starts."""
        self._txn += 1
        txn_id = f"fake-{uuid.uuid4().hex[:8]}-{self._txn}"
        path = f"/_matrix/federation/v1/send/{q(txn_id)}"
        body = {"origin": self.server_name, "origin_server_ts": now_ms(), "pdus": list(pdus)}
        hdrs = {
            "Host": destination,
            "Content-Type": "application/json",
            "Authorization": sign_request(
                "PUT", path, self.server_name, destination, self.signing_key, body
            ),
        }
        # Sent in canonical JSON, the bytes the signature covers, as Synapse and Parta do.
        return path, encode_canonical_json(body), hdrs

    def send_prepared(
        self, destination: str, prepared: tuple[str, bytes, dict[str, str]], timeout: float = 60.0
    ) -> tuple[int, Any]:
        """Send a ``prepare_transaction`` result on this thread's persistent connection."""
        path, data, hdrs = prepared
        status, raw = self._keepalive_request(
            destination, int(destination.rsplit(":", 1)[1]), "PUT", path, data, hdrs, timeout
        )
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw

    def send_transaction(
        self,
        destination: str,
        pdus: list[dict],
        edus: list[dict] = (),
        txn_id: str | None = None,
        **kw: Any,
    ) -> tuple[str, int, Any]:
        """``PUT /_matrix/federation/v1/send/{txnId}``; returns (txn_id, status, body)."""
        if txn_id is None:
            self._txn += 1
            txn_id = f"fake-{uuid.uuid4().hex[:8]}-{self._txn}"
        body = {"origin": self.server_name, "origin_server_ts": now_ms(), "pdus": list(pdus)}
        if edus:
            body["edus"] = list(edus)
        status, reply = self.request(
            destination, "PUT", f"/_matrix/federation/v1/send/{q(txn_id)}", body, **kw
        )
        return txn_id, status, reply

    def join_room(self, destination: str, room_id: str, user_id: str) -> dict:
        """make_join + send_join (v2) as the joining server.  Returns ``{"event": Event,
        "room_version": str, "state": [pdu], "auth_chain": [pdu]}``; raises on failure."""
        path = f"/_matrix/federation/v1/make_join/{q(room_id)}/{q(user_id)}?ver=10&ver=11&ver=12"
        status, body = self.request(destination, "GET", path)
        if status != 200:
            raise AssertionError(f"make_join at {destination}: {status} {body}")
        template = body["event"]
        version = body.get("room_version", "1")
        self.room_versions[room_id] = version
        event = self.build_event(
            version,
            type="m.room.member",
            sender=user_id,
            state_key=user_id,
            content=template["content"],
            room_id=room_id,
            prev_events=template["prev_events"],
            auth_events=template["auth_events"],
            depth=template["depth"],
        )
        status, reply = self.request(
            destination,
            "PUT",
            f"/_matrix/federation/v2/send_join/{q(room_id)}/{q(event.event_id)}",
            event.pdu,
        )
        if status != 200:
            raise AssertionError(f"send_join at {destination}: {status} {reply}")
        return {
            "event": event,
            "room_version": version,
            "state": reply.get("state", []),
            "auth_chain": reply.get("auth_chain", []),
        }


# --- servers with a federation listener ----------------------------------------------------
class FederatedParta(PartaServer):
    """``synapse_env.PartaServer`` named ``localhost:<federation port>`` with a TLS
    federation listener whose certificate the ``TestCA`` signed."""

    def __init__(self, workdir: str, ca: TestCA, command: list[str] | None = None) -> None:
        super().__init__(workdir, command)
        self.ca = ca
        self.fed_port = free_port()
        self.server_name = f"localhost:{self.fed_port}"

    def configure(self) -> None:
        super().configure()
        cert, key = self.ca.issue(
            self.server_name,
            os.path.join(self.workdir, "fed-tls.crt"),
            os.path.join(self.workdir, "fed-tls.key"),
        )
        with open(self.config_path) as fh:
            cfg = yaml.safe_load(fh) or {}
        cfg["federation"] = {
            **(cfg.get("federation") or {}),
            **parta_federation_section(
                port=self.fed_port, cert_path=cert, key_path=key, ca_file=self.ca.cert_path
            ),
        }
        with open(self.config_path, "w") as fh:
            yaml.safe_dump(cfg, fh, sort_keys=False)


class FederatedSynapse(SynapseServer):
    """``synapse_env.SynapseServer`` named ``localhost:<federation port>`` with a TLS
    ``federation`` listener (certificate from the ``TestCA``), certificate verification on
    against that CA, loopback allowed as a federation target, and no key servers."""

    def __init__(
        self, workdir: str, python: str, ca: TestCA, *, log_level: str = "WARNING"
    ) -> None:
        super().__init__(workdir, python)
        self.ca = ca
        self.fed_port = free_port()
        self.server_name = f"localhost:{self.fed_port}"
        self.log_level = log_level

    def configure(self) -> None:
        super().configure()
        cert, key = self.ca.issue(
            self.server_name,
            os.path.join(self.workdir, "fed-tls.crt"),
            os.path.join(self.workdir, "fed-tls.key"),
        )
        with open(self.config_path) as fh:
            cfg = yaml.safe_load(fh)
        cfg["listeners"].append(
            {
                "port": self.fed_port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": True,
                "x_forwarded": False,
                "resources": [{"names": ["federation"], "compress": False}],
            }
        )
        cfg.update(
            {
                "tls_certificate_path": cert,
                "tls_private_key_path": key,
                "federation_verify_certificates": True,
                "federation_custom_ca_list": [self.ca.cert_path],
                "ip_range_blacklist": [],
                "ip_range_whitelist": ["127.0.0.1", "::1"],
                "trusted_key_servers": [],
                "allow_public_rooms_over_federation": True,
                "default_room_version": "12",
            }
        )
        with open(self.config_path, "w") as fh:
            yaml.safe_dump(cfg, fh, sort_keys=False)
        if self.log_level != "WARNING":
            log_config = cfg.get("log_config")
            if log_config and os.path.exists(log_config):
                with open(log_config) as fh:
                    lc = yaml.safe_load(fh)
                lc.setdefault("root", {})["level"] = self.log_level
                for logger in lc.get("loggers", {}).values():
                    logger["level"] = self.log_level
                with open(log_config, "w") as fh:
                    yaml.safe_dump(lc, fh, sort_keys=False)

    @property
    def homeserver_log(self) -> str:
        return os.path.join(self.workdir, "homeserver.log")


# --- locating Synapse ----------------------------------------------------------------------
SYNAPSE_PY_ENV = "PARTA_SYNAPSE_PY"
WELL_KNOWN_SYNAPSE_PYTHONS = (
    os.path.join(os.path.dirname(_HERE), ".venv-synapse", "bin", "python"),  # make test
    os.path.join(os.path.dirname(_HERE), ".ci-cache", "synapse-venv", "bin", "python"),
    "/tmp/parta-ci/synapse-venv/bin/python",
    "/tmp/parta-bench/synapse-venv/bin/python",
)


def find_synapse_python() -> tuple[str | None, str]:
    """(python that imports synapse, how it was found) or (None, why not)."""
    import subprocess

    explicit = os.environ.get(SYNAPSE_PY_ENV)
    candidates = [explicit] if explicit else list(WELL_KNOWN_SYNAPSE_PYTHONS)
    tried = []
    for python in candidates:
        if python and os.path.exists(python):
            res = subprocess.run(
                [python, "-c", "import synapse; print(synapse.__version__)"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if res.returncode == 0:
                return python, f"{python} (Synapse {res.stdout.strip()})"
            tried.append(f"{python}: cannot import synapse: {res.stderr.strip()[-300:]}")
        else:
            tried.append(f"{python}: not found")
    where = f"${SYNAPSE_PY_ENV}" if explicit else "the well-known paths"
    return None, f"no Synapse at {where}: " + "; ".join(tried)


class FakeRoom:
    """The fake server's view of one room it joined: state keys -> event IDs (from the
    send_join answer plus its own accepted state events), and the tip of its own chain of
    events, so it can build further events with correct auth and prev events."""

    def __init__(self, fake: FakeServer, destination: str, room_id: str, joined: dict) -> None:
        self.fake = fake
        self.destination = destination
        self.room_id = room_id
        self.version = get_room_version(joined["room_version"])
        self.state: dict[tuple[str, str], str] = {}
        self.pdus: dict[str, dict] = {}
        for pdu in list(joined["auth_chain"]) + list(joined["state"]):
            ev = Event(pdu, self.version)
            self.pdus[ev.event_id] = pdu
        for pdu in joined["state"]:
            ev = Event(pdu, self.version)
            if ev.state_key is not None:
                self.state[(ev.type, ev.state_key)] = ev.event_id
        join: Event = joined["event"]
        self.state[("m.room.member", join.state_key)] = join.event_id
        self.tip = join.event_id
        self.depth = join.depth

    @classmethod
    def join(cls, fake: FakeServer, destination: str, room_id: str, user_id: str) -> "FakeRoom":
        return cls(fake, destination, room_id, fake.join_room(destination, room_id, user_id))

    def auth_events_for(
        self, type: str, sender: str, state_key: str | None, content: dict
    ) -> list[str]:
        from federation.auth.selection import auth_types_for_event

        keys = auth_types_for_event(self.version, type, sender, state_key, content)
        return [self.state[k] for k in keys if k in self.state]

    def build(
        self,
        *,
        type: str,
        sender: str,
        content: dict,
        state_key: str | None = None,
        prev_events: list[str] | None = None,
        auth_events: list[str] | None = None,
        depth: int | None = None,
        **kw: Any,
    ) -> Event:
        """An event after the fake's chain tip (not yet sent, chain not advanced)."""
        if auth_events is None:
            auth_events = self.auth_events_for(type, sender, state_key, content)
        return self.fake.build_event(
            self.version,
            type=type,
            sender=sender,
            content=content,
            room_id=self.room_id,
            state_key=state_key,
            prev_events=prev_events or [self.tip],
            auth_events=auth_events,
            depth=depth if depth is not None else next_depth(self.depth),
            **kw,
        )

    def advance(self, event: Event) -> None:
        """Make ``event`` (accepted by the destination) the new chain tip."""
        self.tip = event.event_id
        self.depth = max(self.depth, event.depth)
        if event.state_key is not None:
            self.state[(event.type, event.state_key)] = event.event_id

    def send(self, pdus: list[dict], **kw: Any) -> tuple[str, int, Any]:
        return self.fake.send_transaction(self.destination, pdus, **kw)
