"""build_transport: two and three transports talking over real HTTPS on 127.0.0.1, keys
fetched directly and through a notary (server-server API "Retrieving server keys",
"Querying Keys Through Another Server", "Request Authentication")."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, unquote

import pytest
from twisted.internet import defer
from twisted.web import resource, server

from federation.canonical_json import parse_json
from federation.errors import InvalidParam, MatrixError
from federation.signing import verify_json
from federation.transport.key_server import OldKey
from federation.transport.service import TransportConfig, build_transport, parse_notaries
from https_support import Env
from transport_support import key


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.close()


class Node(resource.Resource):
    """Routes a few federation endpoints onto a FederationTransport."""

    isLeaf = True

    def __init__(self, env, version, fill, cert, key_, **config):
        super().__init__()
        self.serve_keys = True
        self.port = env.listen(self, cert, key_)
        self.server_name = f"localhost:{self.port}"
        self.signing_key = key(version, fill)
        self.t = build_transport(
            env.reactor,
            env.clock,
            self.server_name,
            [self.signing_key],
            config=TransportConfig(ca_file=cert, **config),
        )
        env._clients.append(self.t)  # closed by Env.close()

    def render(self, request):
        defer.ensureDeferred(self._respond(request))
        return server.NOT_DONE_YET

    async def _respond(self, request):
        try:
            status, body = await self._handle(request)
        except MatrixError as exc:
            status, body = exc.http_status, exc.to_json()
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"application/json")
        request.write(json.dumps(body).encode())
        request.finish()

    async def _handle(self, request):
        path = request.path.decode()
        raw = request.content.read()
        body = parse_json(raw) if raw else None
        if path == "/_matrix/key/v2/server":
            if not self.serve_keys:
                return 404, {"errcode": "M_UNRECOGNIZED", "error": "off"}
            return 200, self.t.key_server.server_keys_response()
        if path == "/_matrix/key/v2/query":
            return await self.t.notary.handle_post(body)
        if path.startswith("/_matrix/key/v2/query/"):
            args = parse_qs(request.uri.decode().partition("?")[2])
            return await self.t.notary.handle_get(
                unquote(path.rsplit("/", 1)[1]), args.get("minimum_valid_until_ts", [None])[-1]
            )
        origin = await self.t.authenticate(
            request.method.decode(),
            request.uri,
            body,
            request.requestHeaders.getRawHeaders(b"authorization"),
        )
        return 200, {"origin": origin}


def notary_entry(node):
    return {
        "server_name": node.server_name,
        "verify_keys": {node.signing_key.key_id: node.signing_key.verify_key.encode()},
    }


def test_two_transports_authenticate_each_other(env):
    cert, key_ = env.self_signed("shared", "localhost")
    a = Node(env, "a1", 1, cert, key_)
    b = Node(env, "b1", 2, cert, key_)
    assert env.run(a.t.client.request(b.server_name, "PUT", "/send/1", json_body={"pdus": []})) == (
        200,
        {"origin": a.server_name},
    )
    assert env.run(b.t.client.request_ok(a.server_name, "GET", "/x")) == {"origin": b.server_name}
    # Each side fetched and cached the other's key over HTTPS.
    assert (
        b.t.keyring.get_verify_key_cached(a.server_name, "ed25519:a1") == a.signing_key.verify_key
    )
    assert (
        a.t.keyring.get_verify_key_cached(b.server_name, "ed25519:b1") == b.signing_key.verify_key
    )


def test_unsigned_request_is_refused(env):
    cert, key_ = env.self_signed("shared", "localhost")
    a = Node(env, "a1", 1, cert, key_)
    with pytest.raises(MatrixError) as exc:
        env.run(a.t.authenticate("GET", "/x", None, None))
    assert exc.value.http_status == 401 and exc.value.errcode == "M_UNAUTHORIZED"


def test_keys_through_a_notary_when_the_origin_stops_serving_them(env):
    cert, key_ = env.self_signed("shared", "localhost")
    b = Node(env, "b1", 2, cert, key_)
    n = Node(env, "n1", 3, cert, key_)
    a = Node(env, "a1", 1, cert, key_, trusted_notaries=[notary_entry(n)])
    # The notary learns B's keys while B serves them (GET /query/{serverName}).
    status, body = env.run(
        a.t.client.request(n.server_name, "GET", f"/_matrix/key/v2/query/{b.server_name}")
    )
    assert status == 200 and len(body["server_keys"]) == 1
    entry = body["server_keys"][0]
    verify_json(entry, b.server_name, b.signing_key.verify_key)  # origin's signature
    verify_json(entry, n.server_name, n.signing_key.verify_key)  # notary's signature
    # B stops answering key requests; A still gets B's key through the notary.
    b.serve_keys = False
    got = env.run(a.t.keyring.get_verify_key(b.server_name, b.signing_key.key_id))
    assert got == b.signing_key.verify_key
    assert a.t.keyring.key_source(b.server_name, b.signing_key.key_id) == f"notary:{n.server_name}"


def test_notary_with_wrong_configured_key_is_not_trusted(env):
    cert, key_ = env.self_signed("shared", "localhost")
    b = Node(env, "b1", 2, cert, key_)
    n = Node(env, "n1", 3, cert, key_)
    wrong = {
        "server_name": n.server_name,
        "verify_keys": {"ed25519:n1": key("n1", 99).verify_key.encode()},
    }
    a = Node(env, "a1", 1, cert, key_, trusted_notaries=[wrong])
    env.run(n.t.keyring.get_verify_key(b.server_name, b.signing_key.key_id))
    b.serve_keys = False
    assert env.run(a.t.keyring.get_verify_key_or_none(b.server_name, b.signing_key.key_id)) is None


def test_rotation_publishes_old_key_and_signs_with_the_new_one(env):
    cert, key_ = env.self_signed("shared", "localhost")
    a = Node(env, "a1", 1, cert, key_)
    b = Node(env, "b1", 2, cert, key_)
    new = key("a2", 5)
    a.t.rotate([new], [OldKey(a.signing_key.verify_key, env.clock.time_ms())])
    assert env.run(a.t.client.request_ok(b.server_name, "GET", "/x")) == {"origin": a.server_name}
    assert b.t.keyring.get_verify_key_cached(a.server_name, "ed25519:a2") == new.verify_key
    published = a.t.key_server.server_keys_response()
    assert set(published["old_verify_keys"]) == {"ed25519:a1"}


def test_parse_notaries_errors():
    good = {
        "server_name": "n.example",
        "verify_keys": {"ed25519:x": key("x", 1).verify_key.encode()},
    }
    assert parse_notaries([good])[0][0] == "n.example"
    for bad, why in [
        (["x"], "mapping"),
        ([{**good, "server_name": "bad name"}], "server_name"),
        ([{**good, "verify_keys": {}}], "verify_keys"),
        ([{**good, "verify_keys": {"ed25519:x": "!!"}}], "verify_keys"),
    ]:
        with pytest.raises(InvalidParam, match=why):
            parse_notaries(bad)
