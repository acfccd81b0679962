"""Which IP addresses outbound federation may connect to (pure, no I/O).

A homeserver connects to whatever a server name, its ``.well-known`` delegation or its DNS
records point at (spec: server-server API "Resolving server names"), and any user can make
it try a name (a media download, a profile, a join ``via``).  Without a check, a client could
use the node to reach services on the node's own machine or its private network, or tell
open from closed ports there by the answers.  So every address is judged right before a
connection is made to it:

* an address in the blacklist is refused unless it is also in the whitelist;
* an IPv6 address that carries an IPv4 address (IPv4-mapped ``::ffff:0:0/96``, NAT64
  ``64:ff9b::/96``, 6to4 ``2002::/16``) is also judged by that IPv4 address, so
  ``::ffff:127.0.0.1`` is loopback, and a whitelisted IPv4 range covers its mapped form;
* the unspecified addresses ``0.0.0.0`` and ``::`` are always refused (connecting to them
  reaches this host);
* an address that cannot be parsed is refused (fail closed).

The names follow Synapse's ``ip_range_blacklist`` / ``ip_range_whitelist``, which admins
know.  ``DEFAULT_IP_RANGE_BLACKLIST`` lists loopback, private (RFC 1918), shared (CGNAT),
link-local, unique-local, documentation/benchmark, multicast and reserved ranges.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, Union

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

DEFAULT_IP_RANGE_BLACKLIST: tuple[str, ...] = (
    "0.0.0.0/8",  # "this network"
    "10.0.0.0/8",  # RFC 1918 private
    "100.64.0.0/10",  # RFC 6598 shared address space (CGNAT)
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local (cloud metadata services live here)
    "172.16.0.0/12",  # RFC 1918 private
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24",  # TEST-NET-1 (documentation)
    "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
    "192.168.0.0/16",  # RFC 1918 private
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # TEST-NET-2
    "203.0.113.0/24",  # TEST-NET-3
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, and the broadcast address
    "::1/128",  # loopback
    "fe80::/10",  # link-local
    "fec0::/10",  # site-local (deprecated)
    "fc00::/7",  # unique local
    "2001:db8::/32",  # documentation
    "100::/64",  # discard-only
    "ff00::/8",  # multicast
)

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class InvalidIpRange(ValueError):
    """A configured range that is not an IP address or CIDR network."""


def parse_ranges(values: Iterable[object], setting: str) -> tuple[IPNetwork, ...]:
    """CIDR strings (``10.0.0.0/8``, ``fd00::/8``; a bare address is one host) as networks.

    Host bits are masked (``10.1.2.3/8`` is ``10.0.0.0/8``, which is what the prefix says).
    ``InvalidIpRange`` names the setting and entry."""
    out = []
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise InvalidIpRange(
                f"{setting}[{i}]: must be a string such as '10.0.0.0/8', got {type(value).__name__}"
            )
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise InvalidIpRange(
                f"{setting}[{i}]: {value!r} is not an IP address or range "
                "(CIDR such as '10.0.0.0/8' or 'fd00::/8')"
            ) from None
    return tuple(out)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if address.version != 6:
        return None
    assert isinstance(address, ipaddress.IPv6Address)
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


class AddressFilter:
    """``refusal(address)``: why outbound federation must not connect there, or None."""

    def __init__(
        self,
        blacklist: Iterable[object] = DEFAULT_IP_RANGE_BLACKLIST,
        whitelist: Iterable[object] = (),
        *,
        setting: str = "federation.ip_range",
    ) -> None:
        self.blacklist = parse_ranges(blacklist, setting + "_blacklist")
        self.whitelist = parse_ranges(whitelist, setting + "_whitelist")

    def _listed(self, address: IPAddress, networks: tuple[IPNetwork, ...]) -> IPNetwork | None:
        return next((n for n in networks if n.version == address.version and address in n), None)

    def refusal(self, address: str) -> str | None:
        """None if ``address`` (an IPv4 or IPv6 address string) may be connected to, else
        the reason (for the node's log only)."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return "not an IP address"
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            ip = ipaddress.IPv6Address(address.split("%", 1)[0])
        inner = _embedded_ipv4(ip)
        if ip.is_unspecified or (inner is not None and inner.is_unspecified):
            return "unspecified address (this host)"
        if self._listed(ip, self.whitelist) is not None or (
            inner is not None and self._listed(inner, self.whitelist) is not None
        ):
            return None
        for candidate in (ip, inner):
            if candidate is None:
                continue
            network = self._listed(candidate, self.blacklist)
            if network is not None:
                return f"{candidate} is in the blacklisted range {network}"
        return None

    def allows(self, address: str) -> bool:
        return self.refusal(address) is None
