"""Resolving server names (server-server API "Resolving server names")."""

from __future__ import annotations

import pytest
from support.clocks import FakeClock
from support.deferreds import pending, result_of
from twisted.internet import defer

from federation.transport.errors import DestinationUnreachable
from federation.transport.resolution import (
    ERROR_TTL_MS,
    HttpsResponse,
    Resolution,
    ServerResolver,
    cache_ttl_ms,
    parse_well_known,
)
from federation.transport.server_names import InvalidServerName

H = 3600 * 1000


class FakeGetter:
    """Serves scripted responses per URL; records every GET."""

    def __init__(self, routes=None):
        self.routes = dict(routes or {})
        self.calls = []

    async def get(self, url, *, timeout, max_bytes):
        self.calls.append(url)
        result = self.routes.get(url, HttpsResponse(404, {}, b"{}"))
        if isinstance(result, defer.Deferred):
            result = await result
        if isinstance(result, Exception):
            raise result
        return result


def wk(body, status=200, **headers):
    return HttpsResponse(
        status,
        {k.replace("_", "-"): [v] for k, v in headers.items()},
        body if isinstance(body, bytes) else body.encode(),
    )


def url(host):
    return f"https://{host}/.well-known/matrix/server"


def resolve(name, routes=None, overrides=None, clock=None):
    getter = FakeGetter(routes)
    r = ServerResolver(clock or FakeClock(), getter, overrides)
    return result_of(r.resolve(name)), getter


# --- steps without .well-known -------------------------------------------------------------
@pytest.mark.parametrize(
    "name, expected",
    [
        ("1.2.3.4", Resolution("1.2.3.4", "1.2.3.4", 8448, "1.2.3.4", "1.2.3.4", "ip-literal")),
        (
            "1.2.3.4:99",
            Resolution("1.2.3.4:99", "1.2.3.4", 99, "1.2.3.4:99", "1.2.3.4", "ip-literal"),
        ),
        ("[::1]", Resolution("[::1]", "::1", 8448, "[::1]", "::1", "ip-literal")),
        ("[::1]:8449", Resolution("[::1]:8449", "::1", 8449, "[::1]:8449", "::1", "ip-literal")),
        (
            "localhost:8449",
            Resolution(
                "localhost:8449", "localhost", 8449, "localhost:8449", "localhost", "explicit-port"
            ),
        ),
        (
            "school.example:443",
            Resolution(
                "school.example:443",
                "school.example",
                443,
                "school.example:443",
                "school.example",
                "explicit-port",
            ),
        ),
    ],
)
def test_ip_literals_and_explicit_ports_need_no_well_known(name, expected):
    res, getter = resolve(name)
    assert res == expected
    assert getter.calls == []


def test_override_map_is_consulted_first():
    overrides = {
        "school.example": "127.0.0.1:8449",
        "localhost:9000": "[::1]:9001",
        "1.2.3.4": "10.0.0.1",
    }
    res, getter = resolve("school.example", overrides=overrides)
    assert res == Resolution(
        "school.example", "127.0.0.1", 8449, "school.example", "school.example", "override"
    )
    assert getter.calls == []
    res, _ = resolve("localhost:9000", overrides=overrides)
    assert (res.host, res.port, res.host_header, res.tls_name) == (
        "::1",
        9001,
        "localhost:9000",
        "localhost",
    )
    res, _ = resolve("1.2.3.4", overrides=overrides)
    assert (res.host, res.port, res.tls_name) == ("10.0.0.1", 8448, "1.2.3.4")


def test_bad_override_and_bad_name():
    with pytest.raises(InvalidServerName, match="override target"):
        ServerResolver(FakeClock(), None, {"a.example": "not a host"})
    with pytest.raises(InvalidServerName):
        result_of(ServerResolver(FakeClock()).resolve("bad name"))


def test_set_override_at_run_time():
    r = ServerResolver(FakeClock(), FakeGetter())
    r.set_override("a.example", "127.0.0.1:1")
    assert result_of(r.resolve("a.example")).step == "override"
    r.set_override("a.example", None)
    assert result_of(r.resolve("a.example")).step == "default"


# --- .well-known delegation ----------------------------------------------------------------
@pytest.mark.parametrize(
    "target, expected",
    [
        # 3.1 IP literal: Host is the IP (with port if given), cert for the IP.
        ("10.1.2.3", ("10.1.2.3", 8448, "10.1.2.3", "10.1.2.3")),
        ("10.1.2.3:9000", ("10.1.2.3", 9000, "10.1.2.3:9000", "10.1.2.3")),
        ("[2001:db8::1]:9000", ("2001:db8::1", 9000, "[2001:db8::1]:9000", "2001:db8::1")),
        # 3.2 hostname and port: Host delegated:port, cert for the delegated hostname.
        (
            "matrix.school.example:9000",
            ("matrix.school.example", 9000, "matrix.school.example:9000", "matrix.school.example"),
        ),
        # 3.5 hostname without port (no SRV here): 8448, Host the delegated hostname.
        (
            "matrix.school.example",
            ("matrix.school.example", 8448, "matrix.school.example", "matrix.school.example"),
        ),
    ],
)
def test_well_known_delegation(target, expected):
    res, getter = resolve(
        "school.example", {url("school.example"): wk(f'{{"m.server": "{target}"}}')}
    )
    assert (res.host, res.port, res.host_header, res.tls_name) == expected
    assert res.server_name == "school.example" and res.step == "well-known"
    assert getter.calls == [url("school.example")]


@pytest.mark.parametrize(
    "response",
    [
        wk("", status=404),
        wk('{"m.server": "x.example"}', status=500),
        wk("not json"),
        wk("[]"),
        wk("{}"),
        wk('{"m.server": 5}'),
        wk('{"m.server": "bad name!"}'),
        wk(b"\xff\xfe"),
        DestinationUnreachable("school.example", "refused"),
    ],
)
def test_invalid_well_known_falls_back_to_port_8448(response):
    res, _ = resolve("school.example", {url("school.example"): response})
    assert res == Resolution(
        "school.example", "school.example", 8448, "school.example", "school.example", "default"
    )


def test_well_known_content_type_is_not_required():
    res, _ = resolve(
        "school.example",
        {url("school.example"): wk('{"m.server": "m.example:1"}', content_type="text/plain")},
    )
    assert res.host == "m.example"


# --- caching -------------------------------------------------------------------------------
def test_success_cached_24h_by_default_and_refetched_after():
    clock = FakeClock(0)
    getter = FakeGetter({url("s.example"): wk('{"m.server": "m.example:1"}')})
    r = ServerResolver(clock, getter)
    result_of(r.resolve("s.example"))
    clock.advance(24 * H - 1)
    result_of(r.resolve("s.example"))
    assert len(getter.calls) == 1
    clock.advance(1)
    result_of(r.resolve("s.example"))
    assert len(getter.calls) == 2


@pytest.mark.parametrize(
    "cache_control, ttl",
    [
        (None, 24 * H),
        ("max-age=600", 600_000),
        ("public, max-age=7200", 2 * H),
        ("max-age=999999999", 48 * H),
        ("no-store", 60_000),
        ("no-cache, max-age=0", 60_000),
        ("MAX-AGE=120", 120_000),
        ("garbage", 24 * H),
    ],
)
def test_cache_control_ttl(cache_control, ttl):
    assert cache_ttl_ms(cache_control) == ttl


def test_cache_control_header_sets_lifetime():
    clock = FakeClock(0)
    getter = FakeGetter(
        {url("s.example"): wk('{"m.server": "m.example:1"}', cache_control="max-age=300")}
    )
    r = ServerResolver(clock, getter)
    result_of(r.resolve("s.example"))
    clock.advance(299_999)
    result_of(r.resolve("s.example"))
    assert len(getter.calls) == 1
    clock.advance(1)
    result_of(r.resolve("s.example"))
    assert len(getter.calls) == 2


def test_errors_cached_for_an_hour():
    clock = FakeClock(0)
    getter = FakeGetter()
    r = ServerResolver(clock, getter)
    assert result_of(r.resolve("s.example")).step == "default"
    getter.routes[url("s.example")] = wk('{"m.server": "m.example:1"}')
    clock.advance(ERROR_TTL_MS - 1)
    assert result_of(r.resolve("s.example")).step == "default"
    assert len(getter.calls) == 1
    clock.advance(1)
    assert result_of(r.resolve("s.example")).host == "m.example"
    r.forget("s.example")
    result_of(r.resolve("s.example"))
    assert len(getter.calls) == 3


def test_cache_is_per_hostname_not_per_server_name():
    clock = FakeClock(0)
    getter = FakeGetter({url("s.example"): wk('{"m.server": "m.example:1"}')})
    r = ServerResolver(clock, getter)
    result_of(r.resolve("s.example"))
    assert result_of(r.resolve("s.example:8448")).step == "explicit-port"
    assert getter.calls == [url("s.example")]


def test_concurrent_resolutions_share_one_fetch():
    gate = defer.Deferred()
    getter = FakeGetter({url("s.example"): gate})
    r = ServerResolver(FakeClock(), getter)
    ds = [pending(r.resolve("s.example")) for _ in range(3)]
    assert not any(d.called for d in ds) and len(getter.calls) == 1
    gate.callback(wk('{"m.server": "m.example:1"}'))
    assert [result_of(d).host for d in ds] == ["m.example"] * 3


# --- redirects -----------------------------------------------------------------------------
def test_redirects_are_followed():
    routes = {
        url("s.example"): wk("", status=301, location="https://www.s.example/wk"),
        "https://www.s.example/wk": wk("", status=302, location="/wk2"),
        "https://www.s.example/wk2": wk('{"m.server": "m.example:2"}'),
    }
    res, getter = resolve("s.example", routes)
    assert (res.host, res.port) == ("m.example", 2)
    assert len(getter.calls) == 3


@pytest.mark.parametrize(
    "routes",
    [
        {
            url("s.example"): wk("", status=302, location="https://b.example/x"),
            "https://b.example/x": wk("", status=302, location=url("s.example")),
        },  # loop
        {url("s.example"): wk("", status=302, location="http://s.example/x")},  # not https
        {url("s.example"): wk("", status=302)},  # no Location
        {
            **{
                f"https://s.example/{i}": wk("", status=307, location=f"/{i + 1}") for i in range(9)
            },
            url("s.example"): wk("", status=307, location="/0"),
        },  # too many
    ],
)
def test_bad_redirects_fall_back(routes):
    res, getter = resolve("s.example", routes)
    assert res.step == "default"
    assert len(getter.calls) <= 6


def test_no_getter_means_no_delegation():
    assert result_of(ServerResolver(FakeClock()).resolve("s.example")).step == "default"


def test_parse_well_known_errors():
    assert str(parse_well_known(b'{"m.server": "a.example:1", "x": 1}')) == "a.example:1"
    for body, why in [
        (b"{", "not JSON"),
        (b"1", "not a JSON object"),
        (b"{}", "m.server"),
        (b'{"m.server": "a b"}', "invalid m.server"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_well_known(body)
