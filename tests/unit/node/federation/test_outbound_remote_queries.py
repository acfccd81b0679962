"""Client-API look-ups on other servers: remote profiles (query/profile) and remote media
(federation media download, multipart/mixed, legacy fallback)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from support.deferreds import result_of

from federation.errors import MatrixError
from federation.transport.errors import DestinationUnreachable
from fedout_support import FakeClient, Policy, make_clock
from node.federation.remote.media import RemoteMedia, parse_multipart
from node.federation.remote.profile import RemoteProfiles


def err(coro):
    try:
        result_of(coro)
    except MatrixError as exc:
        return exc.http_status, exc.errcode
    raise AssertionError("no error")


# --- profiles ---------------------------------------------------------------------------


def test_remote_profile_is_queried_on_the_users_server_and_cached():
    reactor, clock = make_clock()
    client = FakeClient()
    answers = {
        "@bob:b.test": (
            200,
            {"displayname": "Bob", "avatar_url": "mxc://b.test/x", "m.tz": "Europe/Berlin"},
        ),
        "@ghost:b.test": (404, {"errcode": "M_NOT_FOUND", "error": "no"}),
    }

    async def respond(dest, method, path, body, query):
        return answers[query["user_id"]]

    client.responder = respond
    p = RemoteProfiles(client=client, clock=clock, server_name="a.test")
    assert p.is_remote("@bob:b.test") and not p.is_remote("@al:a.test")
    assert result_of(p.get_profile("@bob:b.test")) == {
        "displayname": "Bob",
        "avatar_url": "mxc://b.test/x",
    }
    assert client.requests[0][:3] == ("b.test", "GET", "/_matrix/federation/v1/query/profile")
    result_of(p.get_profile("@bob:b.test"))
    assert len(client.requests) == 1  # cached
    reactor.advance(61)
    result_of(p.get_profile("@bob:b.test"))
    assert len(client.requests) == 2  # expired
    assert err(p.get_profile("@ghost:b.test")) == (404, "M_NOT_FOUND")
    client.down.add("b.test")
    assert err(p.get_profile("@other:b.test")) == (502, "M_UNKNOWN")


def test_remote_profile_of_a_refused_server_is_not_asked():
    _, clock = make_clock()
    client = FakeClient()
    p = RemoteProfiles(
        client=client, clock=clock, server_name="a.test", policy=Policy(refused={"evil.test"})
    )
    assert err(p.get_profile("@x:evil.test")) == (404, "M_NOT_FOUND")
    assert client.requests == []


# --- media ------------------------------------------------------------------------------


@dataclass
class Raw:
    status: int
    headers: dict
    body: bytes

    def header(self, name):
        v = self.headers.get(name.lower())
        return v[-1] if v else None


class MediaClient:
    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    async def get_raw(self, destination, path, query=None, timeout=None, max_bytes=None):
        self.calls.append((destination, path, query))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def multipart(data: bytes, ctype="image/png", disposition='inline; filename="cat.png"'):
    body = (
        b"--XyZ\r\nContent-Type: application/json\r\n\r\n{}\r\n--XyZ\r\n"
        + f"Content-Type: {ctype}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        + data
        + b"\r\n--XyZ--\r\n"
    )
    return Raw(200, {"content-type": ["multipart/mixed; boundary=XyZ"]}, body)


def test_parse_multipart_two_parts_binary_safe():
    data = b"\x89PNG\r\n\r\n--Xy\x00\xff"
    parts = parse_multipart(multipart(data).body, "multipart/mixed; boundary=XyZ")
    assert len(parts) == 2
    assert parts[0] == ({"content-type": "application/json"}, b"{}")
    assert parts[1][0]["content-type"] == "image/png" and parts[1][1] == data


def test_remote_media_download_multipart_and_cache():
    _, clock = make_clock()
    data = b"\x89PNG fake image bytes"
    client = MediaClient([multipart(data)])
    m = RemoteMedia(client=client, clock=clock, server_name="a.test")
    info, got = result_of(m.download("b.test", "abc123"))
    assert got == data and info.content_type == "image/png" and info.upload_name == "cat.png"
    assert info.size == len(data)
    assert client.calls == [("b.test", "/_matrix/federation/v1/media/download/abc123", None)]
    assert result_of(m.download("b.test", "abc123"))[1] == data  # from the cache
    assert len(client.calls) == 1


def test_remote_media_falls_back_to_legacy_endpoint_without_remote():
    _, clock = make_clock()
    client = MediaClient(
        [
            Raw(404, {}, b'{"errcode":"M_UNRECOGNIZED","error":"unknown endpoint"}'),
            Raw(200, {"content-type": ["text/plain"]}, b"hello"),
        ]
    )
    m = RemoteMedia(client=client, clock=clock, server_name="a.test")
    info, got = result_of(m.download("old.test", "m1"))
    assert got == b"hello" and info.content_type == "text/plain"
    assert client.calls[1] == (
        "old.test",
        "/_matrix/media/v3/download/old.test/m1",
        {"allow_remote": "false"},
    )


@pytest.mark.parametrize(
    "answer, expected",
    [
        (Raw(404, {}, b'{"errcode":"M_NOT_FOUND","error":"no"}'), (404, "M_NOT_FOUND")),
        (Raw(500, {}, b"{}"), (502, "M_UNKNOWN")),
        (DestinationUnreachable("b.test", "refused"), (502, "M_UNKNOWN")),
        (
            Raw(
                200,
                {"content-type": ["multipart/mixed; boundary=XyZ"]},
                b"--XyZ\r\nContent-Type: application/json\r\n\r\n{}\r\n--XyZ\r\n"
                b"Location: https://cdn.example/x\r\n\r\n\r\n--XyZ--\r\n",
            ),
            (502, "M_UNKNOWN"),
        ),
    ],
)
def test_remote_media_errors(answer, expected):
    _, clock = make_clock()
    m = RemoteMedia(client=MediaClient([answer]), clock=clock, server_name="a.test")
    assert err(m.download("b.test", "m1")) == expected


def _full_error(coro):
    try:
        result_of(coro)
    except MatrixError as exc:
        return exc.http_status, exc.errcode, exc.message
    raise AssertionError("no error")


def test_remote_media_failures_all_look_the_same_to_the_client():
    """A refused address, a closed port, a silent port, a TLS service, an HTTP error page:
    one answer, so a prober learns nothing about the place it named."""
    from federation.transport.errors import AddressRefused, RequestTimedOut, TLSFailure

    _, clock = make_clock()
    failures = {
        "127.0.0.1:22": AddressRefused("127.0.0.1:22", "127.0.0.1 is in a refused IP range"),
        "192.0.2.1:8448": DestinationUnreachable("192.0.2.1:8448", "ConnectionRefusedError"),
        "192.0.2.2:8448": RequestTimedOut("192.0.2.2:8448", "no complete response in 60 s"),
        "192.0.2.3:443": TLSFailure("192.0.2.3:443", "TLS failed: certificate verify failed"),
        "192.0.2.4:8448": Raw(401, {}, b'{"errcode":"M_UNAUTHORIZED"}'),
        "192.0.2.5:8448": Raw(200, {"content-type": ["text/html"]}, b"<html>"),
    }
    answers = {
        server: _full_error(
            RemoteMedia(client=MediaClient([answer]), clock=clock, server_name="a.test").download(
                server, "m1"
            )
        )
        for server, answer in failures.items()
    }
    assert set(answers.values()) == {
        (502, "M_UNKNOWN", "Could not fetch the media from the remote server")
    }


def test_remote_profile_and_join_failures_do_not_say_why():
    """Profiles and membership handshakes answer 'Could not reach <server>' whatever the
    connection failure was (the server name is what the user typed)."""
    from federation.transport.errors import AddressRefused, RequestTimedOut, TLSFailure
    from node.federation.membership.remote_calls import unreachable

    _, clock = make_clock()
    for exc in (
        AddressRefused("127.0.0.1:22", "127.0.0.1 is in a refused IP range"),
        DestinationUnreachable("127.0.0.1:22", "ConnectionRefusedError"),
        RequestTimedOut("127.0.0.1:22", "no complete response within 10 s"),
        TLSFailure("127.0.0.1:22", "TLS failed: wrong version number"),
    ):
        client = FakeClient()

        async def respond(dest, method, path, body, query, exc=exc):
            raise exc

        client.responder = respond
        profiles = RemoteProfiles(client=client, clock=clock, server_name="a.test")
        assert _full_error(profiles.get_profile("@u:127.0.0.1:22")) == (
            502,
            "M_UNKNOWN",
            "Could not reach 127.0.0.1:22",
        )
        join = unreachable("127.0.0.1:22", exc)
        assert (join.http_status, join.errcode, join.message) == (
            502,
            "M_UNKNOWN",
            "Could not reach 127.0.0.1:22",
        )
