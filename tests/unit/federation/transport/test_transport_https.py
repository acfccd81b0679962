"""FederationHttpClient over real HTTPS on 127.0.0.1: certificate verification, the CA file,
the insecure switch, X-Matrix end to end, pooling, errors (server-server API "TLS",
"Request Authentication", "Retrieving server keys")."""

from __future__ import annotations

import logging

import pytest

from federation.transport.client import WellKnownGetter, build_target, encode_path
from federation.transport.errors import (
    DestinationUnreachable,
    InvalidResponse,
    RemoteError,
    RequestTimedOut,
    TLSFailure,
)
from federation.transport.keyring import KeyRing, StaticPinnedKeys
from federation.transport.tls import ClientTLSPolicy
from https_support import Env, MiniNode
from transport_support import key

ORIGIN = "origin.test"
OK = key("o1", 1)


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.close()


def pinned_node(env, cert, key_, fmt="localhost:{port}", origin=ORIGIN, origin_key=OK):
    """A MiniNode that knows the origin's key by pinning (no key fetch)."""
    node = MiniNode(env, key("srv", 9))
    port = node.start(cert, key_, fmt)
    node.keyring = KeyRing(
        env.clock, [], pinned=StaticPinnedKeys({origin: [origin_key.verify_key]})
    )
    return node, port


# --- TLS verification ----------------------------------------------------------------------
def test_verification_is_on_by_default_and_refuses_an_untrusted_certificate(env):
    node, _ = pinned_node(env, *env.self_signed("srv", "localhost"))
    client = env.client(ORIGIN, OK)  # system trust store only
    with pytest.raises(TLSFailure) as exc:
        env.run(client.request(node.server_name, "GET", "/echo"))
    assert exc.value.destination == node.server_name
    assert "certificate verify failed" in str(exc.value)
    assert node.seen == []  # nothing was sent


def test_self_signed_certificate_trusted_through_the_ca_file(env):
    cert, key_ = env.self_signed("srv", "localhost")
    node, port = pinned_node(env, cert, key_)
    client = env.client(ORIGIN, OK, ca_file=cert)
    status, body = env.run(
        client.request(node.server_name, "PUT", "/echo/txn1", json_body={"pdus": [], "n": 1})
    )
    assert status == 200
    assert body == {
        "origin": ORIGIN,
        "method": "PUT",
        "uri": "/echo/txn1",
        "content": {"pdus": [], "n": 1},
        "host": f"localhost:{port}",
    }


def test_ip_literal_server_name_checks_the_ip_address_in_the_certificate(env):
    cert, key_ = env.self_signed("srv", "localhost")  # SANs include IP 127.0.0.1
    node, port = pinned_node(env, cert, key_, fmt="127.0.0.1:{port}")
    client = env.client(ORIGIN, OK, ca_file=cert)
    status, body = env.run(client.request(node.server_name, "GET", "/echo"))
    assert status == 200 and body["host"] == f"127.0.0.1:{port}"


def test_city_ca_with_override_map_and_hostname_check(env):
    ca_cert, _ = env.city_ca()
    node, port = pinned_node(env, *env.issued("a", "school-a.test"), fmt="school-a.test")
    client = env.client(
        ORIGIN, OK, ca_file=ca_cert, overrides={"school-a.test": f"127.0.0.1:{port}"}
    )
    status, body = env.run(client.request("school-a.test", "GET", "/echo"))
    assert status == 200 and body["origin"] == ORIGIN and body["host"] == "school-a.test"


def test_certificate_for_another_name_is_refused_even_from_a_trusted_ca(env):
    ca_cert, _ = env.city_ca()
    node, port = pinned_node(env, *env.issued("b", "school-b.test"), fmt="school-a.test")
    client = env.client(
        ORIGIN, OK, ca_file=ca_cert, overrides={"school-a.test": f"127.0.0.1:{port}"}
    )
    with pytest.raises(TLSFailure):
        env.run(client.request("school-a.test", "GET", "/echo"))
    assert node.seen == []


def test_insecure_switch_accepts_any_certificate_and_warns_once(env, caplog):
    node, _ = pinned_node(env, *env.self_signed("srv", "localhost"))
    with caplog.at_level(logging.WARNING, logger="federation.transport.tls"):
        client = env.client(ORIGIN, OK, insecure=True)
        for _ in range(3):
            status, _body = env.run(client.request(node.server_name, "GET", "/echo"))
            assert status == 200
    warnings = [r for r in caplog.records if "INSECURE" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


# --- X-Matrix end to end -------------------------------------------------------------------
def test_query_and_encoded_path_are_signed_as_sent(env):
    cert, key_ = env.self_signed("srv", "localhost")
    node, _ = pinned_node(env, cert, key_)
    client = env.client(ORIGIN, OK, ca_file=cert)
    path = encode_path("/echo/{}/{}", "$ev/id:x", "ü ")
    status, body = env.run(
        client.request(
            node.server_name, "GET", path, query={"v": ["a b", "c&d"], "limit": 10, "flag": True}
        )
    )
    assert status == 200
    assert body["uri"] == ("/echo/%24ev%2Fid%3Ax/%C3%BC%20?v=a%20b&v=c%26d&limit=10&flag=true")


def test_unknown_signing_key_gets_401_m_unauthorized(env):
    cert, key_ = env.self_signed("srv", "localhost")
    node, _ = pinned_node(env, cert, key_)
    impostor = env.client(ORIGIN, key("o1", 66), ca_file=cert)  # same key ID, other key
    status, body = env.run(impostor.request(node.server_name, "GET", "/echo"))
    assert status == 401 and body["errcode"] == "M_UNAUTHORIZED"
    with pytest.raises(RemoteError) as exc:
        env.run(impostor.request_ok(node.server_name, "GET", "/echo"))
    assert exc.value.status == 401 and exc.value.errcode == "M_UNAUTHORIZED"
    assert node.seen == []


def test_request_signed_for_another_destination_gets_401(env):
    cert, key_ = env.self_signed("srv", "localhost")
    node, port = pinned_node(env, cert, key_)
    # The client believes the server is called "elsewhere.test" (override to its port).
    client = env.client(
        ORIGIN, OK, insecure=True, overrides={"elsewhere.test": f"127.0.0.1:{port}"}
    )
    status, body = env.run(client.request("elsewhere.test", "GET", "/echo"))
    assert status == 401 and "destination" in body["error"]


def test_both_sides_fetch_keys_over_https(env):
    """Node A verifies B's request by fetching B's key from B's key endpoint (and back)."""
    cert, key_ = env.self_signed("shared", "localhost")
    a = MiniNode(env, key("a", 1))
    b = MiniNode(env, key("b", 2))
    a.start(cert, key_)
    b.start(cert, key_)
    client_a = env.client(a.server_name, a.signing_key, ca_file=cert)
    client_b = env.client(b.server_name, b.signing_key, ca_file=cert)
    a.fetch_keys_with(client_a)
    b.fetch_keys_with(client_b)
    status, body = env.run(client_b.request(a.server_name, "POST", "/echo", json_body={}))
    assert status == 200 and body["origin"] == b.server_name
    status, body = env.run(client_a.request(b.server_name, "GET", "/echo"))
    assert status == 200 and body["origin"] == a.server_name
    # A now holds B's key, validated and cached with its validity.
    assert a.keyring.get_verify_key_cached(b.server_name, "ed25519:b") == b.signing_key.verify_key
    assert [r.server_name for r in a.keyring.stored_responses(b.server_name)] == [b.server_name]


# --- pooling and bodies --------------------------------------------------------------------
def test_connections_are_pooled(env):
    cert, key_ = env.self_signed("srv", "localhost")
    node, _ = pinned_node(env, cert, key_)
    client = env.client(ORIGIN, OK, ca_file=cert)
    for i in range(4):
        assert env.run(client.request(node.server_name, "GET", f"/echo/{i}"))[0] == 200
    assert len(node.seen) == 4 and len(node.channels) == 1


def test_get_raw_returns_bytes_and_headers(env):
    cert, key_ = env.self_signed("srv", "localhost")
    node, _ = pinned_node(env, cert, key_)
    client = env.client(ORIGIN, OK, ca_file=cert)
    raw = env.run(client.get_raw(node.server_name, "/media"))
    assert raw.status == 200 and raw.header("content-type") == "image/png"
    assert raw.body == b"\x89PNG\r\n" + bytes(range(256)) * 40
    with pytest.raises(InvalidResponse, match="larger than 100 bytes"):
        env.run(client.get_raw(node.server_name, "/media", max_bytes=100))


# --- failures ------------------------------------------------------------------------------
def test_non_json_and_non_object_responses(env):
    cert, key_ = env.self_signed("srv", "localhost")
    node, _ = pinned_node(env, cert, key_)
    client = env.client(ORIGIN, OK, ca_file=cert)
    with pytest.raises(InvalidResponse) as exc:
        env.run(client.request(node.server_name, "GET", "/notjson"))
    assert exc.value.destination == node.server_name and exc.value.status == 200
    assert "not JSON" in str(exc.value) and node.server_name in str(exc.value)
    with pytest.raises(InvalidResponse, match="not a JSON object"):
        env.run(client.request(node.server_name, "GET", "/array"))
    status, body = env.run(client.request(node.server_name, "GET", "/error"))
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


def test_timeout_is_a_clear_error(env):
    cert, key_ = env.self_signed("srv", "localhost")
    node, _ = pinned_node(env, cert, key_)
    client = env.client(ORIGIN, OK, ca_file=cert)
    with pytest.raises(RequestTimedOut) as exc:
        env.run(client.request(node.server_name, "GET", "/slow", timeout=0.3))
    assert exc.value.destination == node.server_name and "0.3 s" in str(exc.value)
    # The pool still works afterwards.
    assert env.run(client.request(node.server_name, "GET", "/echo"))[0] == 200


def test_connection_refused_is_unreachable(env):
    cert, key_ = env.self_signed("srv", "localhost")
    node, port = pinned_node(env, cert, key_)
    env.run(env._ports.pop().stopListening())
    client = env.client(ORIGIN, OK, ca_file=cert)
    with pytest.raises(DestinationUnreachable) as exc:
        env.run(client.request(f"127.0.0.1:{port}", "GET", "/echo"))
    assert not isinstance(exc.value, TLSFailure)
    assert "ConnectionRefused" in str(exc.value)


def test_bad_destination_and_bad_path(env):
    client = env.client(ORIGIN, OK)
    from federation.transport.server_names import InvalidServerName

    with pytest.raises(InvalidServerName):
        env.run(client.request("bad name", "GET", "/x"))
    with pytest.raises(ValueError, match="invalid request path"):
        build_target("no-slash", None)
    with pytest.raises(ValueError, match="invalid request path"):
        build_target("/a b", None)
    assert build_target("/p?a=1", {"b": 2}) == "/p?a=1&b=2"


# --- .well-known getter --------------------------------------------------------------------
def test_well_known_getter_fetches_over_verified_https_without_following_redirects(env):
    from twisted.web import resource

    class WK(resource.Resource):
        isLeaf = True

        def render_GET(self, request):
            if request.path == b"/.well-known/matrix/server":
                request.setHeader(b"Cache-Control", b"max-age=60")
                return b'{"m.server": "m.example:1"}'
            request.setResponseCode(302)
            request.setHeader(b"Location", b"/.well-known/matrix/server")
            return b""

    cert, key_ = env.self_signed("wk", "localhost")
    port = env.listen(WK(), cert, key_)
    getter = WellKnownGetter(env.reactor, ClientTLSPolicy(cert))
    resp = env.run(
        getter.get(
            f"https://localhost:{port}/.well-known/matrix/server", timeout=10, max_bytes=1000
        )
    )
    assert resp.status == 200 and resp.body == b'{"m.server": "m.example:1"}'
    assert resp.header("cache-control") == "max-age=60"
    redirect = env.run(
        getter.get(f"https://localhost:{port}/elsewhere", timeout=10, max_bytes=1000)
    )
    assert redirect.status == 302
    untrusting = WellKnownGetter(env.reactor, ClientTLSPolicy())
    with pytest.raises(TLSFailure):
        env.run(
            untrusting.get(
                f"https://localhost:{port}/.well-known/matrix/server", timeout=10, max_bytes=1000
            )
        )
