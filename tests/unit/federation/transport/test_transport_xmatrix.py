"""X-Matrix request authentication (server-server API "Request Authentication")."""

from __future__ import annotations

import pytest
from support.deferreds import result_of

from federation.b64 import encode_base64
from federation.errors import Unauthorized
from federation.signing import sign_json
from federation.transport.xmatrix import (
    MalformedAuthorization,
    XMatrixAuth,
    format_header,
    parse_authorization,
    parse_header,
    request_json,
    sign_request,
    verify_request,
    verify_request_async,
)
from transport_support import key

ORIGIN = "origin.example"
DEST = "dest.example"
K1 = key("k1", 1)
K2 = key("k2", 2)
URI = "/_matrix/federation/v1/send/txn1?x=1&y=%20"
BODY = {"pdus": [], "edus": [{"edu_type": "m.typing", "content": {"typing": True}}]}


def keys_of(server_keys):
    def get(server, key_id):
        return server_keys.get(server, {}).get(key_id)

    return get


KNOWN = keys_of({ORIGIN: {K1.key_id: K1.verify_key, K2.key_id: K2.verify_key}})


# --- building ------------------------------------------------------------------------------
def test_signed_header_matches_spec_algorithm():
    header = sign_request("PUT", URI, ORIGIN, DEST, K1, BODY)
    # The spec's example code: sign {method, uri, origin, destination, content}.
    expected = sign_json(
        {"method": "PUT", "uri": URI, "origin": ORIGIN, "destination": DEST, "content": BODY},
        ORIGIN,
        K1,
    )["signatures"][ORIGIN][K1.key_id]
    assert header == (
        f'X-Matrix origin="{ORIGIN}",destination="{DEST}",key="ed25519:k1",sig="{expected}"'
    )


def test_request_json_omits_content_without_body():
    assert "content" not in request_json("GET", "/x", ORIGIN, DEST)
    assert request_json("POST", "/x", ORIGIN, DEST, {})["content"] == {}


def test_format_header_escapes_quotes_and_backslashes():
    h = format_header(XMatrixAuth('we"ird', "k\\1", "s", None))
    assert h == 'X-Matrix origin="we\\"ird",key="k\\\\1",sig="s"'
    assert parse_header(h.replace('we\\"ird', "o.example")).key == "k\\1"


# --- parsing: good headers -----------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [
        'X-Matrix origin="origin.example",destination="dest.example",key="ed25519:k1",sig="abc"',
        'X-Matrix origin=origin.example,destination=dest.example,key=ed25519:k1,sig="abc"',
        'x-matrix   ORIGIN="origin.example" , Destination="dest.example",\tkey="ed25519:k1",sig=abc',  # noqa: E501 - one header value
        'X-MATRIX sig="abc",key="ed25519:k1",destination="dest.example",origin="origin.example"',
        'X-Matrix origin="origin.example",destination="dest.example",key="ed25519:k1",sig="abc",'
        'future="ignored",other=tok',
        'X-Matrix origin = "origin.example",destination= "dest.example",key ="ed25519:k1",sig=abc',
        'X-Matrix origin="orig\\in.example",destination="dest.example",key="ed25519:k1",sig="a\\bc"',  # noqa: E501 - one header value
    ],
)
def test_parse_accepts_grammar_variants(header):
    auth = parse_header(header)
    assert auth == XMatrixAuth("origin.example", "ed25519:k1", "abc", "dest.example")


def test_parse_without_destination_and_bytes_input():
    auth = parse_header(b'X-Matrix origin="o.example:8448",key="ed25519:a",sig="s"')
    assert auth == XMatrixAuth("o.example:8448", "ed25519:a", "s", None)


def test_parse_keeps_base64_characters_in_quoted_sig():
    sig = "ab+/cd"
    assert parse_header(f'X-Matrix origin=o.example,key=ed25519:a,sig="{sig}"').sig == sig


# --- parsing: malformed headers ------------------------------------------------------------
@pytest.mark.parametrize(
    "header, why",
    [
        ("", "scheme"),
        ("Bearer abc", "scheme"),
        ("X-Matrix", "space"),
        ("X-Matrix ", "parameter name"),
        ("X-Matrix,origin=o", "space"),
        ("X-Matrixorigin=o", "scheme"),
        ('X-Matrix origin="o.example",key="ed25519:a"', "missing sig"),
        ('X-Matrix key="ed25519:a",sig="s"', "missing origin"),
        ('X-Matrix origin="o.example",sig="s"', "missing key"),
        ('X-Matrix origin="o.example",key="ed25519:a",sig="s",', "trailing comma"),
        ('X-Matrix origin="o.example",,key="ed25519:a",sig="s"', "parameter name"),
        ('X-Matrix origin="o.example" key="ed25519:a",sig="s"', "unexpected"),
        ('X-Matrix origin="o.example",key="ed25519:a",sig="s', "unterminated"),
        ('X-Matrix origin="o.example",key="ed25519:a",sig=', "empty or invalid"),
        ('X-Matrix origin="o.example",key="ed25519:a",sig=ab/cd', "unexpected '/'"),
        ('X-Matrix origin="o.example",key="ed25519:a",sig="s\\', "dangling"),
        ('X-Matrix origin="o.example",origin="p.example",key="ed25519:a",sig="s"', "twice"),
        ('X-Matrix origin="o.example",ORIGIN="o.example",key="ed25519:a",sig="s"', "twice"),
        ('X-Matrix origin="o.example",key="ed25519:a",sig="s\x01"', "control character"),
        ('X-Matrix origin="o.example",key="ed25519:a",sig "s"', "expected '='"),
        ('X-Matrix origin="bad origin",key="ed25519:a",sig="s"', "origin"),
        ('X-Matrix origin="",key="ed25519:a",sig="s"', "origin"),
    ],
)
def test_parse_refuses_malformed(header, why):
    with pytest.raises(MalformedAuthorization) as exc:
        parse_header(header)
    assert why in exc.value.message
    assert exc.value.http_status == 401 and exc.value.errcode == "M_UNAUTHORIZED"


def test_parse_authorization_picks_x_matrix_among_headers():
    auths = parse_authorization(["Bearer tok", "X-Matrix origin=o.example,key=ed25519:a,sig=s"])
    assert [a.origin for a in auths] == ["o.example"]
    with pytest.raises(MalformedAuthorization, match="Missing X-Matrix"):
        parse_authorization(None)
    with pytest.raises(MalformedAuthorization, match="Missing X-Matrix"):
        parse_authorization(["Bearer tok"])
    with pytest.raises(MalformedAuthorization, match="different origins"):
        parse_authorization(
            [
                "X-Matrix origin=a.example,key=ed25519:a,sig=s",
                "X-Matrix origin=b.example,key=ed25519:a,sig=s",
            ]
        )


# --- verifying -----------------------------------------------------------------------------
def test_round_trip_with_and_without_body():
    put = sign_request("PUT", URI, ORIGIN, DEST, K1, BODY)
    assert verify_request("PUT", URI, BODY, put, DEST, KNOWN) == ORIGIN
    get = sign_request("GET", "/_matrix/federation/v1/version", ORIGIN, DEST, K1)
    assert (
        verify_request("GET", b"/_matrix/federation/v1/version", None, [get], DEST, KNOWN) == ORIGIN
    )


def test_body_key_order_does_not_matter():
    header = sign_request("PUT", URI, ORIGIN, DEST, K1, {"a": 1, "b": [1, 2]})
    assert verify_request("PUT", URI, {"b": [1, 2], "a": 1}, header, DEST, KNOWN) == ORIGIN


def test_replayed_header_with_another_body_method_or_target_fails():
    header = sign_request("PUT", URI, ORIGIN, DEST, K1, BODY)
    for method, uri, body in [
        ("PUT", URI, {"pdus": [], "edus": []}),
        ("PUT", URI, None),
        ("POST", URI, BODY),
        ("PUT", URI.replace("txn1", "txn2"), BODY),
        ("PUT", URI + "&z=1", BODY),
    ]:
        with pytest.raises(Unauthorized, match="does not match"):
            verify_request(method, uri, body, header, DEST, KNOWN)


def test_wrong_destination_is_refused_before_any_key_lookup():
    header = sign_request("GET", "/x", ORIGIN, "other.example", K1)
    looked_up = []

    def get(server, key_id):
        looked_up.append((server, key_id))
        return K1.verify_key

    with pytest.raises(Unauthorized, match="destination 'other.example'"):
        verify_request("GET", "/x", None, header, DEST, get)
    assert looked_up == []


def test_header_without_destination_is_accepted_and_checked_against_our_name():
    # An older server: no destination parameter, but it still signed our name.
    signed = sign_json(request_json("GET", "/x", ORIGIN, DEST), ORIGIN, K1)
    header = format_header(XMatrixAuth(ORIGIN, K1.key_id, signed["signatures"][ORIGIN][K1.key_id]))
    assert verify_request("GET", "/x", None, header, DEST, KNOWN) == ORIGIN
    # Signed for another destination: the signature does not cover our name.
    signed = sign_json(request_json("GET", "/x", ORIGIN, "else.example"), ORIGIN, K1)
    header = format_header(XMatrixAuth(ORIGIN, K1.key_id, signed["signatures"][ORIGIN][K1.key_id]))
    with pytest.raises(Unauthorized, match="does not match"):
        verify_request("GET", "/x", None, header, DEST, KNOWN)


def test_unknown_key_and_wrong_key():
    header = sign_request("GET", "/x", ORIGIN, DEST, key("k3", 3))
    with pytest.raises(Unauthorized, match="Unknown or expired key ed25519:k3"):
        verify_request("GET", "/x", None, header, DEST, KNOWN)
    # Claims key k1 but was signed with k2's private key.
    forged = sign_request("GET", "/x", ORIGIN, DEST, K2).replace("ed25519:k2", "ed25519:k1")
    with pytest.raises(Unauthorized, match="Invalid X-Matrix signature"):
        verify_request("GET", "/x", None, forged, DEST, KNOWN)


def test_origin_impersonation_fails():
    # evil.example signs with its own key but claims to be origin.example.
    evil = key("k1", 9)
    header = sign_request("GET", "/x", ORIGIN, DEST, evil)
    with pytest.raises(Unauthorized, match="Invalid X-Matrix signature"):
        verify_request("GET", "/x", None, header, DEST, KNOWN)


@pytest.mark.parametrize(
    "sig, why", [("!!!", "not unpadded Base64"), (encode_base64(b"x" * 10), "10 bytes")]
)
def test_malformed_signature_values(sig, why):
    header = f'X-Matrix origin="{ORIGIN}",destination="{DEST}",key="ed25519:k1",sig="{sig}"'
    with pytest.raises(Unauthorized, match=why):
        verify_request("GET", "/x", None, header, DEST, KNOWN)


def test_missing_header_is_401():
    with pytest.raises(Unauthorized) as exc:
        verify_request("GET", "/x", None, None, DEST, KNOWN)
    assert exc.value.http_status == 401


def test_body_without_canonical_form_cannot_verify():
    header = sign_request("PUT", "/x", ORIGIN, DEST, K1, {"a": 1})
    with pytest.raises(Unauthorized, match="cannot be verified"):
        verify_request("PUT", "/x", {"a": 1.5}, header, DEST, KNOWN)


def test_every_header_must_verify():
    good = sign_request("GET", "/x", ORIGIN, DEST, K1)
    bad = sign_request("GET", "/y", ORIGIN, DEST, K2)
    assert (
        verify_request(
            "GET", "/x", None, [good, sign_request("GET", "/x", ORIGIN, DEST, K2)], DEST, KNOWN
        )
        == ORIGIN
    )
    with pytest.raises(Unauthorized):
        verify_request("GET", "/x", None, [good, bad], DEST, KNOWN)


def test_async_variant_uses_awaitable_lookup_and_maps_errors():
    from federation.errors import NotFound

    header = sign_request("GET", "/x", ORIGIN, DEST, K1)

    async def get(server, key_id):
        return K1.verify_key

    assert result_of(verify_request_async("GET", "/x", None, header, DEST, get)) == ORIGIN

    async def failing(server, key_id):
        raise NotFound("no such key")

    with pytest.raises(Unauthorized, match="Cannot get key ed25519:k1 of origin.example"):
        result_of(verify_request_async("GET", "/x", None, header, DEST, failing))

    calls = []

    async def counting(server, key_id):
        calls.append(server)
        return K1.verify_key

    with pytest.raises(Unauthorized, match="destination"):
        result_of(
            verify_request_async(
                "GET",
                "/x",
                None,
                sign_request("GET", "/x", ORIGIN, "z.example", K1),
                DEST,
                counting,
            )
        )
    assert calls == []


# --- the body as received (raw_body) --------------------------------------------------------
BIG = {
    "origin": ORIGIN,
    "pdus": [{"type": "m.room.message", "content": {"body": f"é{i}", "n": i}} for i in range(50)],
    "edus": [],
}


def test_sign_request_body_equals_sign_request_for_canonical_bytes():
    from federation.canonical_json import encode_canonical_json
    from federation.transport.xmatrix import sign_request_body

    assert sign_request_body(
        "PUT", URI, ORIGIN, DEST, K1, encode_canonical_json(BIG)
    ) == sign_request("PUT", URI, ORIGIN, DEST, K1, BIG)


def _verify_raw(body_json, raw, header):
    async def get(server, key_id):
        return KNOWN(server, key_id)

    return result_of(verify_request_async("PUT", URI, body_json, header, DEST, get, raw_body=raw))


def test_raw_body_in_canonical_json_verifies():
    from federation.canonical_json import encode_canonical_json

    header = sign_request("PUT", URI, ORIGIN, DEST, K1, BIG)
    assert _verify_raw(BIG, encode_canonical_json(BIG), header) == ORIGIN
    assert _verify_raw(BIG, b"  " + encode_canonical_json(BIG) + b"\n", header) == ORIGIN


def test_raw_body_in_another_encoding_still_verifies_by_the_canonical_form():
    import json

    header = sign_request("PUT", URI, ORIGIN, DEST, K1, BIG)
    pretty = json.dumps(BIG, indent=2, ensure_ascii=True).encode()  # not canonical
    assert _verify_raw(BIG, pretty, header) == ORIGIN


def test_raw_body_does_not_let_a_changed_request_through():
    from federation.canonical_json import encode_canonical_json

    header = sign_request("PUT", URI, ORIGIN, DEST, K1, BIG)
    changed = dict(BIG, pdus=BIG["pdus"][:49])
    # The parsed body and the bytes both changed: neither form verifies.
    with pytest.raises(Unauthorized, match="does not match"):
        _verify_raw(changed, encode_canonical_json(changed), header)
    # Bytes that verify but a different parsed body cannot happen (the body is parsed
    # from them); a signature for another target or destination fails on both paths.
    other = sign_request("PUT", URI + "&z=1", ORIGIN, DEST, K1, BIG)
    with pytest.raises(Unauthorized, match="does not match"):
        _verify_raw(BIG, encode_canonical_json(BIG), other)
    wrong_key = sign_request("PUT", URI, ORIGIN, DEST, K2, BIG).replace("ed25519:k2", "ed25519:k1")
    with pytest.raises(Unauthorized, match="does not match"):
        _verify_raw(BIG, encode_canonical_json(BIG), wrong_key)
