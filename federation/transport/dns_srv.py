"""DNS SRV look-ups for server-name resolution (``resolution.SrvLookup``), with
``twisted.names``.

Spec: server-server API "Resolving server names", steps 3.3/3.4 and 4/5
(https://spec.matrix.org/v1.16/server-server-api/#resolving-server-names):
``_matrix-fed._tcp.<hostname>`` then the deprecated ``_matrix._tcp.<hostname>``.

By default the queries go to the system's DNS servers (``/etc/resolv.conf``); the config
key ``federation.dns_server`` (``"<ip>:<port>"``) sends them to one server instead, which
is how the tests point the node at a DNS server on loopback.  Only the SRV query uses it:
the target's addresses come from the node's usual resolver and pass the address filter
like any other name (``checked_connect``).

A query is retried after 1 s and given up after 4 s in all (``TIMEOUT_S``): SRV records
are rare, and a school without working DNS must not wait a minute per destination (the
resolver caches a failure for ``resolution.SRV_FAILURE_TTL_MS``).  The twisted resolver is
built on first use, so a node that never needs SRV never reads ``resolv.conf``.
"""

from __future__ import annotations

from typing import Any

from twisted.names import dns
from twisted.names import error as dns_error

from ..errors import InvalidParam
from .resolution import SrvAnswer, SrvLookupFailed, SrvRecord
from .server_names import InvalidServerName, parse_server_name

TIMEOUT_S = (1, 3)
RESOLV_CONF = "/etc/resolv.conf"


def parse_dns_server(value: str) -> tuple[str, int]:
    """``federation.dns_server``: an IP address with a port (``127.0.0.1:5353``,
    ``[::1]:53``); ``InvalidParam`` otherwise."""
    try:
        name = parse_server_name(value)
    except InvalidServerName as exc:
        raise InvalidParam(f"federation.dns_server: {exc.message}") from None
    if not name.is_ip_literal or name.port is None:
        raise InvalidParam(
            f"federation.dns_server: {value!r} must be an IP address with a port "
            "(e.g. 127.0.0.1:53)"
        )
    return name.host, name.port


class TwistedSrvLookup:
    def __init__(self, reactor: Any, dns_server: str | None = None) -> None:
        self._reactor = reactor
        self._servers = [parse_dns_server(dns_server)] if dns_server else None
        self._resolver: Any = None

    def _get_resolver(self) -> Any:
        if self._resolver is None:
            from twisted.names.client import Resolver

            if self._servers is not None:
                self._resolver = Resolver(
                    servers=self._servers, timeout=TIMEOUT_S, reactor=self._reactor
                )
            else:
                self._resolver = Resolver(
                    resolv=RESOLV_CONF, timeout=TIMEOUT_S, reactor=self._reactor
                )
        return self._resolver

    async def lookup(self, name: str) -> SrvAnswer:
        try:
            answers, _authority, _additional = await self._get_resolver().lookupService(name)
        except (dns_error.DNSNameError, dns_error.DomainError):
            return SrvAnswer(())  # NXDOMAIN: no such record
        except Exception as exc:  # noqa: BLE001 - timeouts, server failures, no resolv.conf
            raise SrvLookupFailed(f"{name}: {type(exc).__name__}: {exc}") from None
        records: list[SrvRecord] = []
        ttls: list[int] = []
        for rr in answers:
            if rr.type != dns.SRV:
                continue  # e.g. the CNAME records of a chain
            payload = rr.payload
            target = str(payload.target).rstrip(".") or "."
            records.append(SrvRecord(payload.priority, payload.weight, payload.port, target))
            ttls.append(rr.ttl)
        return SrvAnswer(tuple(records), min(ttls) if ttls else None)
