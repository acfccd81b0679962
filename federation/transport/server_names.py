"""Server names: ``hostname [ ":" port ]`` (spec appendix "Server Name").

Grammar (appendices.md)::

    server_name = hostname [ ":" port ]
    port        = 1*5DIGIT
    hostname    = IPv4address / "[" IPv6address "]" / dns-name
    IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT
    IPv6address = 2*45IPv6char          ; 0-9, A-F, a-f, ":", "."
    dns-name    = 1*255dns-char         ; DIGIT / ALPHA / "-" / "."

plus the prose: IPv4 literals are four decimal numbers 0-255; IPv6 literals follow RFC 3513
section 2.2; DNS names "should consist of a series of labels separated by ``.``, where each
label consists of the alphanumeric characters or hyphens".

Choices made here, each with its own message:

* a port must be 1-65535 (the grammar allows ``0`` and ``99999``; neither can be connected to);
* a name that looks like a dotted quad but has a part over 255 (``1.2.3.256``) is refused
  rather than read as a DNS name;
* a DNS name may not have empty labels (``a..b``, a leading or trailing dot) nor a label longer
  than 63 characters (RFC 1123), since it could not be resolved.

Server names are case-sensitive identifiers (the appendix); they are kept exactly as written.
Errors are ``InvalidServerName`` (``M_INVALID_PARAM``).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

from ..errors import InvalidParam

DEFAULT_FEDERATION_PORT = 8448

_DNS_CHARS = re.compile(r"[A-Za-z0-9.\-]+\Z")
_IPV6_CHARS = re.compile(r"[0-9A-Fa-f:.]+\Z")
_DOTTED_QUAD = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+\Z")
_IPV4 = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\Z")
_DIGITS = re.compile(r"[0-9]{1,5}\Z")

HostKind = Literal["dns", "ipv4", "ipv6"]


class InvalidServerName(InvalidParam):
    """A string that is not a server name (``M_INVALID_PARAM``)."""


@dataclass(frozen=True)
class ServerName:
    """A parsed server name.

    ``host`` is the hostname without IPv6 brackets (``::1``, ``10.0.0.1``, ``school.example``);
    ``port`` is None when the name has no explicit port.  ``str()`` gives the name back.
    """

    host: str
    port: int | None
    kind: HostKind

    @property
    def is_ip_literal(self) -> bool:
        return self.kind != "dns"

    @property
    def host_literal(self) -> str:
        """The hostname as written in a URL or ``Host`` header (IPv6 in brackets)."""
        return f"[{self.host}]" if self.kind == "ipv6" else self.host

    @property
    def port_or_default(self) -> int:
        return DEFAULT_FEDERATION_PORT if self.port is None else self.port

    def __str__(self) -> str:
        return self.host_literal if self.port is None else f"{self.host_literal}:{self.port}"


def _parse_port(text: str, name: str) -> int:
    if not _DIGITS.match(text):
        raise InvalidServerName(
            f"Invalid server name {name!r}: the port must be 1 to 5 digits, got {text!r}"
        )
    port = int(text)
    if not 1 <= port <= 65535:
        raise InvalidServerName(f"Invalid server name {name!r}: port {port} is outside 1-65535")
    return port


def _check_dns_name(host: str, name: str) -> None:
    if len(host) > 255:
        raise InvalidServerName(
            f"Invalid server name {name[:40]!r}...: the hostname is longer than 255 characters"
        )
    if not _DNS_CHARS.match(host):
        bad = next(c for c in host if not (c.isascii() and (c.isalnum() or c in ".-")))
        raise InvalidServerName(
            f"Invalid server name {name!r}: character {bad!r} is not allowed in a hostname "
            "(only letters, digits, '-' and '.')"
        )
    labels = host.split(".")
    if any(not label for label in labels):
        raise InvalidServerName(
            f"Invalid server name {name!r}: empty label (leading, trailing or double dot)"
        )
    long = next((label for label in labels if len(label) > 63), None)
    if long is not None:
        raise InvalidServerName(
            f"Invalid server name {name!r}: label {long[:20]!r}... is longer than 63 characters"
        )


def parse_server_name(name: object) -> ServerName:
    """Parse and validate ``name``; raise ``InvalidServerName`` with the reason."""
    if not isinstance(name, str):
        raise InvalidServerName(f"A server name must be a string, not {type(name).__name__}")
    if not name:
        raise InvalidServerName("A server name must not be empty")
    if name.startswith("["):
        end = name.find("]")
        if end < 0:
            raise InvalidServerName(
                f"Invalid server name {name!r}: missing ']' after the IPv6 literal"
            )
        literal, rest = name[1:end], name[end + 1 :]
        if rest and not rest.startswith(":"):
            raise InvalidServerName(
                f"Invalid server name {name!r}: unexpected {rest!r} after the IPv6 literal"
            )
        port = _parse_port(rest[1:], name) if rest else None
        if not (2 <= len(literal) <= 45) or not _IPV6_CHARS.match(literal):
            raise InvalidServerName(
                f"Invalid server name {name!r}: {literal!r} is not an IPv6 address"
            )
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            raise InvalidServerName(
                f"Invalid server name {name!r}: {literal!r} is not an IPv6 address"
            ) from None
        return ServerName(literal, port, "ipv6")
    if "]" in name:
        raise InvalidServerName(f"Invalid server name {name!r}: unbalanced ']'")
    host, sep, port_text = name.rpartition(":")
    if not sep:
        host, port = name, None
    else:
        if ":" in host:
            raise InvalidServerName(
                f"Invalid server name {name!r}: IPv6 literals must be in brackets "
                "([::1]:8448) and a hostname has at most one ':'"
            )
        if not host:
            raise InvalidServerName(f"Invalid server name {name!r}: empty hostname")
        port = _parse_port(port_text, name)
    if _DOTTED_QUAD.match(host):
        if not _IPV4.match(host) or any(int(p) > 255 for p in host.split(".")):
            raise InvalidServerName(
                f"Invalid server name {name!r}: {host!r} is not a valid "
                "IPv4 address (four numbers 0-255)"
            )
        return ServerName(host, port, "ipv4")
    _check_dns_name(host, name)
    return ServerName(host, port, "dns")


def is_valid_server_name(name: object) -> bool:
    try:
        parse_server_name(name)
    except InvalidServerName:
        return False
    return True


def is_ip_literal(host: str) -> bool:
    """True for an IPv4 or (unbracketed) IPv6 address string."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
