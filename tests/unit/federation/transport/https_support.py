"""Real HTTPS servers and clients on 127.0.0.1 for the transport tests (not a test module).

Each test gets its own (not installed) asyncio reactor, driven with
``loop.run_until_complete``; ``Env.run`` waits for one Deferred/coroutine, with a generous
safety limit that only turns a hang into a failure (no timing is asserted).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from twisted.internet import defer
from twisted.internet.asyncioreactor import AsyncioSelectorReactor
from twisted.web import resource, server

from federation.canonical_json import parse_json
from federation.errors import MatrixError
from federation.keys import SigningKey
from federation.transport import tls
from federation.transport.client import FederationHttpClient
from federation.transport.key_server import KeyServer
from federation.transport.keyring import DirectKeyFetcher, KeyRing
from federation.transport.resolution import ServerResolver
from federation.transport.xmatrix import verify_request_async

SAFETY_LIMIT_S = 60


class ReactorClock:
    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor

    def time_ms(self) -> int:
        return int(self._reactor.seconds() * 1000)


class Env:
    def __init__(self, tmp_path: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.reactor = AsyncioSelectorReactor(self.loop)
        self.reactor.startRunning(installSignalHandlers=False)
        self.clock = ReactorClock(self.reactor)
        self.tmp = str(tmp_path)
        self._ports: list[Any] = []
        self._clients: list[Any] = []

    def run(self, work: Any) -> Any:
        d = work if isinstance(work, defer.Deferred) else defer.ensureDeferred(work)
        return self.loop.run_until_complete(asyncio.wait_for(d.asFuture(self.loop), SAFETY_LIMIT_S))

    def path(self, name: str) -> str:
        return os.path.join(self.tmp, name)

    # --- certificates -----------------------------------------------------------------
    def self_signed(self, name: str, server_name: str) -> tuple[str, str]:
        cert, key = self.path(f"{name}.crt"), self.path(f"{name}.key")
        tls.generate_self_signed(server_name, cert, key)
        return cert, key

    def city_ca(self) -> tuple[str, str]:
        cert, key = self.path("ca.crt"), self.path("ca.key")
        if not os.path.exists(cert):
            tls.generate_ca("Test City CA", cert, key)
        return cert, key

    def issued(self, name: str, server_name: str) -> tuple[str, str]:
        ca_cert, ca_key = self.city_ca()
        cert, key = self.path(f"{name}.crt"), self.path(f"{name}.key")
        tls.issue_certificate(ca_cert, ca_key, server_name, cert, key)
        return cert, key

    # --- servers and clients ----------------------------------------------------------
    def listen(self, res: resource.Resource, cert: str, key: str) -> int:
        site = server.Site(res, reactor=self.reactor)
        port = self.run(tls.listen_tls(self.reactor, site, 0, tls.server_tls_options(cert, key)))
        self._ports.append(port)
        return port.getHost().port

    def client(
        self,
        server_name: str,
        signing_key: SigningKey,
        *,
        ca_file: str | None = None,
        insecure: bool = False,
        overrides: dict | None = None,
        **kw: Any,
    ) -> FederationHttpClient:
        c = FederationHttpClient(
            self.reactor,
            server_name,
            signing_key,
            ServerResolver(self.clock, None, overrides),
            tls.ClientTLSPolicy(ca_file, insecure_skip_tls_verify=insecure),
            **kw,
        )
        self._clients.append(c)
        return c

    def close(self) -> None:
        for c in self._clients:
            self.run(c.close())
        for p in self._ports:
            self.run(p.stopListening())
        # Let aborted connections finish closing.
        self.run(_later(self.reactor, 0.01))
        if self.reactor.threadpool is not None:
            self.reactor.threadpool.stop()
        self.loop.close()


def _later(reactor: Any, seconds: float) -> defer.Deferred:
    d: defer.Deferred = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


class MiniNode(resource.Resource):
    """A tiny federation server: key endpoint, X-Matrix verification, a few test routes.

    ``keyring`` decides which origins are accepted (pinned keys, or fetching with
    ``client`` through a ``DirectKeyFetcher``).
    """

    isLeaf = True

    def __init__(self, env: Env, signing_key: SigningKey) -> None:
        super().__init__()
        self.env = env
        self.signing_key = signing_key
        self.server_name = ""
        self.key_server: KeyServer | None = None
        self.keyring: KeyRing | None = None
        self.channels: set[int] = set()
        self.seen: list[dict] = []

    def start(self, cert: str, key: str, server_name_fmt: str = "localhost:{port}") -> int:
        port = self.env.listen(self, cert, key)
        self.server_name = server_name_fmt.format(port=port)
        self.key_server = KeyServer(self.server_name, [self.signing_key], self.env.clock)
        return port

    def fetch_keys_with(self, client: FederationHttpClient, **kw: Any) -> None:
        self.keyring = KeyRing(
            self.env.clock, [DirectKeyFetcher(client, self.env.clock)], local=self.key_server, **kw
        )

    def render(self, request: Any) -> Any:
        self.channels.add(id(request.channel))
        defer.ensureDeferred(self._respond(request))
        return server.NOT_DONE_YET

    async def _respond(self, request: Any) -> None:
        try:
            status, body, ctype = await self._handle(request)
        except MatrixError as exc:
            status, body, ctype = (
                exc.http_status,
                json.dumps(exc.to_json()).encode(),
                b"application/json",
            )
        if body is None:
            return  # never answer (timeouts)
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", ctype)
        request.write(body)
        request.finish()

    async def _handle(self, request: Any) -> tuple[int, bytes | None, bytes]:
        path = request.path.decode()
        if path == "/_matrix/key/v2/server":
            assert self.key_server is not None
            return (
                200,
                json.dumps(self.key_server.server_keys_response()).encode(),
                b"application/json",
            )
        raw = request.content.read()
        body_json = parse_json(raw) if raw else None
        assert self.keyring is not None, "MiniNode.fetch_keys_with() not called"
        origin = await verify_request_async(
            request.method.decode(),
            request.uri,
            body_json,
            request.requestHeaders.getRawHeaders(b"authorization"),
            self.server_name,
            self.keyring.get_verify_key,
        )
        info = {
            "origin": origin,
            "method": request.method.decode(),
            "uri": request.uri.decode(),
            "content": body_json,
            "host": request.getHeader(b"host").decode(),
        }
        self.seen.append(info)
        if path == "/slow":
            return 200, None, b""
        if path == "/notjson":
            return 200, b"<html>proxy error</html>", b"text/html"
        if path == "/array":
            return 200, b"[1, 2]", b"application/json"
        if path == "/media":
            return 200, b"\x89PNG\r\n" + bytes(range(256)) * 40, b"image/png"
        if path == "/error":
            return (
                403,
                json.dumps({"errcode": "M_FORBIDDEN", "error": "no"}).encode(),
                b"application/json",
            )
        return 200, json.dumps(info).encode(), b"application/json"
