"""Third-party networks (client-server API "Third-party Networks",
``third_party_lookup.yaml``): the six ``/thirdparty/...`` look-ups.

https://spec.matrix.org/v1.16/client-server-api/#third-party-networks

The answers come from bridges (application services) that register protocols.  Until one
does, the ``ProtocolRegistry`` is empty and the node answers as a server without bridges:
``{}`` for the protocol list, 404 ``M_NOT_FOUND`` for any named protocol and its look-ups,
and ``[]`` for the reverse look-ups by room alias or user ID (nothing is bridged).  A
bridge integration fills the registry by implementing ``ProtocolRegistry`` and passing it
to ``register``; the handlers check the input and bound the query (at most
``MAX_FIELDS`` fields of at most ``MAX_FIELD_CHARS`` characters) before asking it.
"""

from __future__ import annotations

from typing import Any, Protocol

from federation.errors import InvalidParam, NotFound

from ...http.request import MissingParam
from ._common import CLIENT_V3, check_text

MAX_FIELDS = 20
MAX_FIELD_CHARS = 1024


class ProtocolRegistry(Protocol):
    """What the bridges of this server answer (spec objects, as JSON)."""

    def protocols(self) -> dict[str, dict]: ...

    async def locations(self, protocol: str, fields: dict[str, str]) -> list[dict]: ...

    async def users(self, protocol: str, fields: dict[str, str]) -> list[dict]: ...

    async def locations_for_alias(self, alias: str) -> list[dict]: ...

    async def users_for_user_id(self, user_id: str) -> list[dict]: ...


class NoBridges:
    """The registry of a node without bridges: no protocol, nothing bridged."""

    def protocols(self) -> dict[str, dict]:
        return {}

    async def locations(self, protocol: str, fields: dict[str, str]) -> list[dict]:
        return []

    async def users(self, protocol: str, fields: dict[str, str]) -> list[dict]:
        return []

    async def locations_for_alias(self, alias: str) -> list[dict]:
        return []

    async def users_for_user_id(self, user_id: str) -> list[dict]:
        return []


def _fields(req: Any) -> dict[str, str]:
    """The query's search fields (every parameter but the access token), bounded."""
    out = {k: v[-1] for k, v in req.args.items() if k != "access_token" and v}
    if len(out) > MAX_FIELDS:
        raise InvalidParam(f"At most {MAX_FIELDS} search fields")
    for key, value in out.items():
        check_text(key, "field", max_chars=MAX_FIELD_CHARS)
        check_text(value, key, max_chars=MAX_FIELD_CHARS)
    return out


def _required(req: Any, name: str) -> str:
    value = req.query(name)
    if not value:
        raise MissingParam(f"Missing '{name}' parameter")
    return check_text(value, name, max_chars=MAX_FIELD_CHARS)


def register(router: Any, accounts: Any, registry: ProtocolRegistry | None = None) -> None:
    bridges: ProtocolRegistry = registry if registry is not None else NoBridges()

    def _known(protocol: str) -> dict:
        description = bridges.protocols().get(protocol)
        if description is None:
            raise NotFound(f"Unknown protocol {protocol!r}")
        return description

    async def get_protocols(req: Any) -> tuple[int, dict]:
        return 200, bridges.protocols()

    async def get_protocol(req: Any, protocol: str) -> tuple[int, dict]:
        return 200, _known(protocol)

    async def get_locations(req: Any, protocol: str) -> tuple[int, list]:
        _known(protocol)
        return 200, await bridges.locations(protocol, _fields(req))

    async def get_users(req: Any, protocol: str) -> tuple[int, list]:
        _known(protocol)
        return 200, await bridges.users(protocol, _fields(req))

    async def get_location_by_alias(req: Any) -> tuple[int, list]:
        return 200, await bridges.locations_for_alias(_required(req, "alias"))

    async def get_user_by_id(req: Any) -> tuple[int, list]:
        return 200, await bridges.users_for_user_id(_required(req, "userid"))

    base = CLIENT_V3 + "/thirdparty"
    router.add("GET", base + "/protocols", get_protocols)
    router.add("GET", base + "/protocol/{protocol}", get_protocol)
    router.add("GET", base + "/location/{protocol}", get_locations)
    router.add("GET", base + "/user/{protocol}", get_users)
    router.add("GET", base + "/location", get_location_by_alias)
    router.add("GET", base + "/user", get_user_by_id)
