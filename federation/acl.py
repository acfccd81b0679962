"""Server Access Control Lists: the decision whether a server may take part in a room.

Spec: client-server API "Server Access Control Lists (ACLs) for rooms" and the
``m.room.server_acl`` event schema; appendix "Glob-style matching" and "Server Name";
server-server API "Server Access Control Lists (ACLs)" says where the node applies it
(``node/federation/acl_check.py``).

The event's content::

    {"allow": [glob, ...],          # default [] -- nothing is allowed
     "deny": [glob, ...],           # default []
     "allow_ip_literals": bool}     # default true (also when not a boolean)

The globs are case-insensitive, ``*`` matching zero or more characters and ``?`` exactly
one, and are evaluated against the server name *without its port* ("``evil.com``,
``evil.com:8448``, and ``evil.com:1234`` would all match rules that apply to
``evil.com``").  The rules, in the schema's order:

1. no ``m.room.server_acl`` event in the room state: allow (``acl_allows(None, ..)``);
2. the server name is an IPv4 or IPv6 literal and ``allow_ip_literals`` is ``false``: deny;
3. the server name matches an entry of ``deny``: deny;
4. it matches an entry of ``allow``: allow;
5. otherwise: deny.

``ServerAcl.from_content(content)`` compiles a content once; ``allows(server_name)`` is then
memoised per server name, so checking every PDU of a transaction costs a dict lookup.
Matching is ``federation/globs.py`` (no regular expressions: a pattern such as
``*a*a*a*a*b`` cannot make it backtrack), shared with the event filters.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Iterable, Mapping

from .globs import Glob, glob_matches  # noqa: F401 - glob_matches is part of this API

# Appendix "Server Name": IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT
_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_ASCII_UPPER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}

MEMO_LIMIT = 4096  # memoised decisions per compiled ACL (cleared when full)


def fold(text: str) -> str:
    """Case folding for the "case-insensitive" globs.  Server names are ASCII (appendix
    "Server Name"), so only A-Z are folded: every character keeps its length, and ``?``
    still matches exactly one character."""
    return text.translate(_ASCII_UPPER)


def server_host(server_name: str) -> str:
    """The server name without its port ("the suspect server's port number must not be
    considered"): ``evil.com:8448`` -> ``evil.com``, ``[1234::abcd]:5678`` ->
    ``[1234::abcd]``, ``1.2.3.4:80`` -> ``1.2.3.4``.  A bare IPv6 address (not a valid
    server name, but seen on the wire) has no port to remove and is returned whole."""
    if server_name.startswith("["):
        end = server_name.find("]")
        return server_name if end < 0 else server_name[: end + 1]
    if server_name.count(":") == 1:
        return server_name.partition(":")[0]
    return server_name


def is_ip_literal(host: str) -> bool:
    """Rule 2's "IP address (v4 or v6) literal", for a host without port: a dotted quad of
    1-3 digit groups (the appendix's grammar) or a bracketed IPv6 address; a bare IPv6
    address counts too."""
    if host.startswith("["):
        return True  # hostname = "[" IPv6address "]": nothing else is bracketed
    if _IPV4.fullmatch(host) is not None:
        return True
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return True
    return False


class _Globs:
    """A compiled ``allow`` or ``deny`` list: exact names in a set, ``*`` as a flag, the
    other patterns (runs of ``*`` collapsed) in a tuple."""

    __slots__ = ("everything", "exact", "wild")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.everything = False
        exact: set[str] = set()
        wild: list[str] = []
        for raw in patterns:
            pattern = re.sub(r"\*{2,}", "*", fold(raw))
            if pattern == "*":
                self.everything = True
            elif "*" in pattern or "?" in pattern:
                wild.append(pattern)
            else:
                exact.add(pattern)
        self.exact = frozenset(exact)
        self.wild = tuple(Glob(p) for p in dict.fromkeys(wild))

    def match(self, host: str) -> bool:
        if self.everything or host in self.exact:
            return True
        return any(g.matches(host) for g in self.wild)


def _string_list(value: Any) -> list[str]:
    """``allow`` / ``deny``: a list of strings; anything else counts as the default empty
    list, and entries that are not strings are skipped (they cannot match a name)."""
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, str)]


class ServerAcl:
    """One ``m.room.server_acl`` content, compiled.  ``allows(server_name)``: rules 2-5."""

    __slots__ = ("allow_ip_literals", "_allow", "_deny", "_memo")

    def __init__(
        self, allow: Iterable[str], deny: Iterable[str], allow_ip_literals: bool = True
    ) -> None:
        self.allow_ip_literals = allow_ip_literals
        self._allow = _Globs(allow)
        self._deny = _Globs(deny)
        self._memo: dict[str, bool] = {}

    @classmethod
    def from_content(cls, content: Any) -> "ServerAcl":
        """The event's content as the schema defines it; malformed fields take their
        defaults (``allow_ip_literals``: "Defaults to ``true`` if missing or otherwise not a
        boolean"; ``allow`` "defaults to an empty list when not provided")."""
        if not isinstance(content, Mapping):
            content = {}
        ip_literals = content.get("allow_ip_literals", True)
        return cls(
            _string_list(content.get("allow")),
            _string_list(content.get("deny")),
            ip_literals if isinstance(ip_literals, bool) else True,
        )

    def allows(self, server_name: str) -> bool:
        """Whether ``server_name`` (with or without a port) may take part in the room."""
        hit = self._memo.get(server_name)
        if hit is None:
            hit = self.decide(server_name)
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
            self._memo[server_name] = hit
        return hit

    def decide(self, server_name: str) -> bool:
        """Rules 2-5, without the memo."""
        host = fold(server_host(server_name))
        if not self.allow_ip_literals and is_ip_literal(host):  # 2.
            return False
        if self._deny.match(host):  # 3.
            return False
        return self._allow.match(host)  # 4. / 5.


def acl_allows(content: Mapping[str, Any] | None, server_name: str) -> bool:
    """The whole decision for one server: ``content`` is the room's current
    ``m.room.server_acl`` content, None when the room has none (rule 1: allow)."""
    if content is None:
        return True
    return ServerAcl.from_content(content).allows(server_name)
