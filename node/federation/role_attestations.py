"""Hands the accounts area what role attestations need from the federation (docs/people.md
"City-wide verified roles"): the city roster that pins every school's keys, the node's current
server signing key, and the federation profile query that fetches a remote user's
``org.parta.role`` (server-server API "Querying for information", ``GET
/_matrix/federation/v1/query/profile`` with ``field``).

Only an enrolled node (a ``RosterPolicy``) attests: without a roster nobody could verify.
Such a node's ``/user_directory/search`` also asks its city gateway's staff directory
(``GET /_parta/v1/staff``, ``gateway/directory/staff.py``): each answer is verified again
against this node's roster, cached per term for ``STAFF_TTL_MS`` (a failure too, so a
gateway that is down costs one timeout a minute, not one per keystroke), bounded in size.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING

from federation.attestations import RosterLookup
from federation.transport import endpoints as E
from federation.transport.errors import FederationRequestError
from node.accounts.attestations import ROLE_FIELD, RoleAttestations

from .roster_policy import RosterPolicy
from .server.stats import gateway_of

if TYPE_CHECKING:
    from .context import FederationContext

log = logging.getLogger("parta.federation.attestations")

TIMEOUT_SECONDS = 10.0
STAFF_TIMEOUT_SECONDS = 5.0
STAFF_TTL_MS = 60_000
STAFF_CACHE_SIZE = 1_000
MAX_STAFF_RESULTS = 50  # the gateway's own cap (gateway/directory/staff.py)
MAX_TERM = 200
MIN_TERM = 2  # a single letter matches half the city: not worth a request


class RemoteRoles:
    """``RemoteRoleSource`` over the node's outbound client (behind the roster policy)."""

    def __init__(self, fctx: FederationContext) -> None:
        self.fctx = fctx

    async def fetch(self, user_id: str) -> object | None:
        server = user_id.partition(":")[2]
        if not server or not self.fctx.policy.allow_outbound(server):
            return None
        try:
            status, body = await self.fctx.client.request(
                server,
                E.QUERY_PROFILE.method,
                E.QUERY_PROFILE.path(),
                query={"user_id": user_id, "field": ROLE_FIELD},
                timeout=TIMEOUT_SECONDS,
            )
        except FederationRequestError as exc:
            log.info("event=remote_role_failed server=%s detail=%s", server, exc.message)
            return None
        if status != 200 or not isinstance(body, dict):
            return None
        return body.get(ROLE_FIELD)


class CityStaffSearch:
    """``CityStaffSource`` (node/sync/user_directory.py) over the city gateway."""

    def __init__(self, fctx: FederationContext, attestations: RoleAttestations) -> None:
        self.fctx = fctx
        self.attestations = attestations
        self._cache: OrderedDict[tuple[str, int], tuple[int, list[dict]]] = OrderedDict()

    async def search(self, term: str, limit: int) -> list[dict]:
        term, limit = term.lower()[:MAX_TERM], max(1, min(limit, MAX_STAFF_RESULTS))
        gateway = gateway_of(self.fctx.policy)
        if len(term) < MIN_TERM or gateway is None or gateway == self.fctx.server_name:
            return []
        now = self.fctx.ctx.clock.time_ms()
        hit = self._cache.get((term, limit))
        if hit is not None and now < hit[0]:
            return hit[1]
        items = await self._ask(gateway, term, limit)
        self._cache[(term, limit)] = (now + STAFF_TTL_MS, items)
        self._cache.move_to_end((term, limit))
        while len(self._cache) > STAFF_CACHE_SIZE:
            self._cache.popitem(last=False)
        return items

    async def _ask(self, gateway: str, term: str, limit: int) -> list[dict]:
        try:
            status, body = await self.fctx.client.request(
                gateway,
                E.PARTA_STAFF.method,
                E.PARTA_STAFF.path(),
                query={"term": term, "limit": str(limit)},
                timeout=STAFF_TIMEOUT_SECONDS,
            )
        except FederationRequestError as exc:
            log.info("event=city_staff_failed gateway=%s detail=%s", gateway, exc.message)
            return []
        results = body.get("results") if status == 200 and isinstance(body, dict) else None
        items: list[dict] = []
        for doc in results[:limit] if isinstance(results, list) else ():
            uid = doc.get("user_id") if isinstance(doc, dict) else None
            if not isinstance(uid, str) or uid.partition(":")[2] == self.fctx.server_name:
                continue  # our own users come from the school directory
            shown = self.attestations.remote_view(uid, doc)
            if shown["verified"]:
                item = {"user_id": uid}
                if shown.get("displayname"):
                    item["display_name"] = shown["displayname"]
                items.append(item)
        return items


def install(fctx: FederationContext) -> None:
    accounts = fctx.accounts
    policy = fctx.policy
    if accounts is None or not isinstance(policy, RosterPolicy):
        return

    def roster() -> RosterLookup | None:
        return policy.state  # bound at start, or later by the gateway's own roster

    accounts.attestations.attach(roster, lambda: fctx.key_server.signing_key, RemoteRoles(fctx))
    if fctx.sync is not None:
        fctx.sync.directory.attach_city(CityStaffSearch(fctx, accounts.attestations))
