"""Server name grammar (appendix "Server Name")."""

from __future__ import annotations

import pytest

from federation.errors import InvalidParam
from federation.transport.server_names import (
    InvalidServerName,
    ServerName,
    is_valid_server_name,
    parse_server_name,
)


@pytest.mark.parametrize(
    "name, host, port, kind",
    [
        ("matrix.org", "matrix.org", None, "dns"),
        ("matrix.org:8888", "matrix.org", 8888, "dns"),
        ("1.2.3.4", "1.2.3.4", None, "ipv4"),
        ("1.2.3.4:1234", "1.2.3.4", 1234, "ipv4"),
        ("[1234:5678::abcd]", "1234:5678::abcd", None, "ipv6"),
        ("[1234:5678::abcd]:5678", "1234:5678::abcd", 5678, "ipv6"),
        ("localhost:8448", "localhost", 8448, "dns"),
        ("school-a.city.example", "school-a.city.example", None, "dns"),
        ("[::1]:65535", "::1", 65535, "ipv6"),
        ("[::ffff:1.2.3.4]", "::ffff:1.2.3.4", None, "ipv6"),
        ("MATRIX.org", "MATRIX.org", None, "dns"),  # kept as written (case-sensitive)
        ("a", "a", None, "dns"),
        ("255.255.255.255:1", "255.255.255.255", 1, "ipv4"),
    ],
)
def test_spec_examples_and_more_parse(name, host, port, kind):
    parsed = parse_server_name(name)
    assert parsed == ServerName(host, port, kind)
    assert str(parsed) == name
    assert is_valid_server_name(name)


@pytest.mark.parametrize(
    "name, reason",
    [
        ("", "empty"),
        ("matrix.org:", "port"),
        ("matrix.org:0", "outside 1-65535"),
        ("matrix.org:65536", "outside 1-65535"),
        ("matrix.org:123456", "1 to 5 digits"),
        ("matrix.org:80a", "1 to 5 digits"),
        ("matrix.org:+80", "1 to 5 digits"),
        (":8448", "empty hostname"),
        ("matrix_org", "character '_'"),
        ("mätrix.org", "character 'ä'"),
        ("matrix.org/path", "character '/'"),
        ("user@matrix.org", "character '@'"),
        ("matrix..org", "empty label"),
        (".matrix.org", "empty label"),
        ("matrix.org.", "empty label"),
        ("a" * 64 + ".org", "longer than 63"),
        ("a." * 128 + "a", "longer than 255"),
        ("1.2.3.256", "not a valid IPv4"),
        ("1.2.3.0004", "not a valid IPv4"),
        ("::1", "IPv6 literals must be in brackets"),
        ("[::1", "missing ']'"),
        ("::1]", "unbalanced"),
        ("[::1]x", "unexpected"),
        ("[::1]:", "port"),
        ("[::g]", "not an IPv6"),
        ("[1.2.3.4]", "not an IPv6"),
        ("[fe80::1%eth0]", "not an IPv6"),
        ("[]", "not an IPv6"),
        ("host:80:90", "at most one ':'"),
        (" matrix.org", "character ' '"),
    ],
)
def test_invalid_names_have_clear_reasons(name, reason):
    with pytest.raises(InvalidServerName) as exc:
        parse_server_name(name)
    assert reason in exc.value.message
    assert exc.value.errcode == "M_INVALID_PARAM"
    assert isinstance(exc.value, InvalidParam)
    assert not is_valid_server_name(name)


@pytest.mark.parametrize("value", [None, 42, b"matrix.org", ["matrix.org"]])
def test_non_strings_are_refused(value):
    with pytest.raises(InvalidServerName, match="must be a string"):
        parse_server_name(value)


def test_properties():
    v6 = parse_server_name("[::1]")
    assert v6.is_ip_literal and v6.host_literal == "[::1]" and v6.port_or_default == 8448
    dns = parse_server_name("school.example:8449")
    assert not dns.is_ip_literal and dns.host_literal == "school.example"
    assert dns.port_or_default == 8449
