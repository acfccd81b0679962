"""Server ACL decisions (client-server API "Server Access Control Lists (ACLs) for rooms",
``m.room.server_acl`` schema rules 1-5; appendix "Glob-style matching")."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from federation.acl import (
    MEMO_LIMIT,
    ServerAcl,
    acl_allows,
    glob_matches,
    is_ip_literal,
    server_host,
)


def allows(content, server):
    return acl_allows(content, server)


# --- rule 1: no ACL event ----------------------------------------------------------------


def test_no_acl_event_allows_everyone():
    assert allows(None, "evil.com")
    assert allows(None, "1.2.3.4")
    assert allows(None, "[::1]:8448")


# --- rule 5: the allow list defaults to nothing ------------------------------------------


@pytest.mark.parametrize(
    "content",
    [{}, {"deny": []}, {"allow": []}, {"allow": "*"}, {"allow": None}, {"allow": [1, None]}],
)
def test_missing_empty_or_malformed_allow_denies_everyone(content):
    assert not allows(content, "good.org")
    assert not allows(content, "a")


def test_not_an_object_content_is_an_empty_acl():
    assert not ServerAcl.from_content(None).allows("good.org")
    assert not ServerAcl.from_content(["*"]).allows("good.org")


def test_allow_star_allows_everyone_not_denied():
    content = {"allow": ["*"], "deny": ["evil.com"]}
    assert allows(content, "good.org")
    assert allows(content, "a")
    assert not allows(content, "evil.com")


def test_allow_list_of_exact_names():
    content = {"allow": ["school1.example", "school2.example"]}
    assert allows(content, "school1.example")
    assert allows(content, "school2.example")
    assert not allows(content, "school3.example")
    assert not allows(content, "sub.school1.example")
    assert not allows(content, "school1.example.evil")


# --- rule 3 before rule 4: deny wins -----------------------------------------------------


def test_deny_wins_over_allow():
    content = {"allow": ["evil.com", "*.com"], "deny": ["evil.com"]}
    assert not allows(content, "evil.com")
    assert allows(content, "good.com")


def test_deny_glob_over_exact_allow():
    content = {"allow": ["chat.evil.com"], "deny": ["*.evil.com"]}
    assert not allows(content, "chat.evil.com")


def test_malformed_deny_is_empty():
    assert allows({"allow": ["*"], "deny": "evil.com"}, "evil.com")
    assert not allows({"allow": ["*"], "deny": [3, "evil.com"]}, "evil.com")


# --- ports are not considered ------------------------------------------------------------


@pytest.mark.parametrize(
    "server", ["evil.com", "evil.com:8448", "evil.com:1234", "evil.com:", "EVIL.com:443"]
)
def test_port_is_ignored_for_deny(server):
    assert not allows({"allow": ["*"], "deny": ["evil.com"]}, server)


@pytest.mark.parametrize("server", ["good.org:8448", "good.org:1"])
def test_port_is_ignored_for_allow(server):
    assert allows({"allow": ["good.org"]}, server)


def test_a_pattern_with_a_port_never_matches():
    # "Port numbers are not supported": the name is compared without its port.
    content = {"allow": ["*"], "deny": ["evil.com:8448"]}
    assert allows(content, "evil.com:8448")


@pytest.mark.parametrize(
    "name,host",
    [
        ("matrix.org", "matrix.org"),
        ("matrix.org:8888", "matrix.org"),
        ("1.2.3.4", "1.2.3.4"),
        ("1.2.3.4:1234", "1.2.3.4"),
        ("[1234:5678::abcd]", "[1234:5678::abcd]"),
        ("[1234:5678::abcd]:5678", "[1234:5678::abcd]"),
        ("::1", "::1"),
        ("[::1", "[::1"),
    ],
)
def test_server_host(name, host):
    assert server_host(name) == host


def test_ipv6_literal_patterns_keep_their_brackets():
    content = {"allow": ["*"], "deny": ["[1234:5678::abcd]"]}
    assert not allows(content, "[1234:5678::abcd]:8448")
    assert allows(content, "[1234:5678::abce]")


# --- rule 2: IP literals -----------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "1.2.3.4",
        "127.0.0.1",
        "999.1.1.1",
        "01.002.3.4",
        "[1234:5678::abcd]",
        "[::1]",
        "[::ffff:1.2.3.4]",
        "::1",
        "2001:db8::1",
    ],
)
def test_ip_literals(host):
    assert is_ip_literal(host)


@pytest.mark.parametrize(
    "host",
    [
        "matrix.org",
        "1.2.3",
        "1.2.3.4.5",
        "1.2.3.com",
        "1234.1.1.1",
        "localhost",
        "a:b",
        "0x7f.0.0.1",
        "",
    ],
)
def test_not_ip_literals(host):
    assert not is_ip_literal(host)


@pytest.mark.parametrize(
    "server", ["1.2.3.4", "1.2.3.4:8448", "[::1]", "[::1]:8448", "[1234:5678::abcd]:5678"]
)
def test_ip_literals_denied_when_not_allowed(server):
    content = {"allow": ["*"], "allow_ip_literals": False}
    assert not allows(content, server)
    assert allows(content, "good.org")


@pytest.mark.parametrize("value", [True, None, "false", 0, [], {}])
def test_ip_literals_allowed_by_default_or_when_not_a_boolean(value):
    content = {"allow": ["*"]}
    if value is not None:
        content["allow_ip_literals"] = value
    assert allows(content, "1.2.3.4")
    assert allows(content, "[::1]:8448")


def test_allowed_ip_literals_still_go_through_the_lists():
    content = {"allow": ["10.*"], "deny": ["10.0.0.66"], "allow_ip_literals": True}
    assert allows(content, "10.0.0.1:8448")
    assert not allows(content, "10.0.0.66")
    assert not allows(content, "192.168.1.1")


def test_ip_literal_rule_comes_before_allow():
    content = {"allow": ["1.2.3.4"], "allow_ip_literals": False}
    assert not allows(content, "1.2.3.4")


# --- globs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern,text,expected",
    [
        ("*", "", True),
        ("*", "anything.at.all", True),
        ("", "", True),
        ("", "a", False),
        ("?", "a", True),
        ("?", "", False),
        ("?", "ab", False),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("a?c", "abbc", False),
        ("*.evil.com", "chat.evil.com", True),
        ("*.evil.com", "a.b.evil.com", True),
        ("*.evil.com", "evil.com", False),
        ("*evil.com", "evil.com", True),
        ("*evil.com", "notevil.com", True),
        ("evil.*", "evil.com", True),
        ("evil.*", "evil.", True),
        ("evil.*", "evil", False),
        ("*a*b*c*", "xaybzc", True),
        ("*a*b*c*", "cba", False),
        ("a*b", "ab", True),
        ("a*b", "aXXb", True),
        ("a*b", "aXXbX", False),
        ("a*b*", "abab", True),
        ("*ab", "aab", True),
        ("*ab", "abb", False),
        ("??.com", "ab.com", True),
        ("??.com", "a.com", False),
        ("*?", "", False),
        ("*?", "x", True),
        ("?*?", "xy", True),
        ("?*?", "x", False),
        ("a**b", "ab", True),
        ("[::1]", "[::1]", True),
        # no other glob syntax: brackets, backslashes and regex characters are literal
        ("[ab]", "a", False),
        ("[ab]", "[ab]", True),
        ("a.c", "abc", False),
        ("a\\*", "a\\xyz", True),
        ("a+", "aa", False),
        ("(x)", "(x)", True),
    ],
)
def test_glob_matches(pattern, text, expected):
    assert glob_matches(pattern, text) is expected


def _reference(pattern: str, text: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None


@given(st.text(alphabet="ab*?", max_size=8), st.text(alphabet="ab", max_size=10))
def test_glob_matches_agrees_with_a_regex_translation(pattern, text):
    assert glob_matches(pattern, text) is _reference(pattern, text)


def test_pathological_pattern_is_quick():
    # a backtracking matcher would take ages on this; the two-pointer walk does not
    pattern = "*a" * 30 + "*b"
    assert glob_matches(pattern, "a" * 250) is False


def test_globs_in_acl_lists():
    content = {"allow": ["*.school.example", "c?ty.example"], "deny": ["bad*.school.example"]}
    assert allows(content, "one.school.example:8448")
    assert allows(content, "city.example")
    assert allows(content, "coty.example")
    assert not allows(content, "ciity.example")
    assert not allows(content, "badapple.school.example")
    assert not allows(content, "school.example")


# --- case -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern,server",
    [
        ("evil.com", "EVIL.COM"),
        ("EVIL.COM", "evil.com"),
        ("*.Evil.Com", "chat.EVIL.com"),
        ("E?IL.com", "eVil.COM:8448"),
    ],
)
def test_globs_are_case_insensitive(pattern, server):
    assert not allows({"allow": ["*"], "deny": [pattern]}, server)
    assert allows({"allow": [pattern]}, server)


def test_non_ascii_letters_are_not_folded():
    # server names are ASCII; other characters match only themselves (one per '?')
    assert allows({"allow": ["é?.org"]}, "éx.org")
    assert not allows({"allow": ["É?.org"]}, "éx.org")


# --- compiled form ------------------------------------------------------------------------


def test_compiled_acl_memoises_and_agrees_with_decide():
    acl = ServerAcl.from_content(
        {"allow": ["*"], "deny": ["*.evil.com"], "allow_ip_literals": False}
    )
    names = ["a.evil.com", "a.evil.com:1", "good.org", "1.2.3.4", "[::1]"]
    first = [acl.allows(n) for n in names]
    assert first == [False, False, True, False, False]
    assert [acl.allows(n) for n in names] == first
    assert [acl.decide(n) for n in names] == first


def test_memo_is_bounded():
    acl = ServerAcl.from_content({"allow": ["s*"]})
    for i in range(MEMO_LIMIT + 10):
        assert acl.allows(f"s{i}.example")
    assert len(acl._memo) <= MEMO_LIMIT
    assert not acl.allows("x.example")


def test_spec_example():
    # data/event-schemas/examples/m.room.server_acl.yaml
    content = {"allow_ip_literals": False, "allow": ["*"], "deny": ["*.evil.com", "evil.com"]}
    assert not allows(content, "evil.com")
    assert not allows(content, "evil.com:8448")
    assert not allows(content, "chat.evil.com")
    assert allows(content, "notevil.com")
    assert allows(content, "matrix.org:8448")
    assert not allows(content, "1.2.3.4")
