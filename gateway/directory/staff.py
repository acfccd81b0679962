"""The city staff directory: who the schools attest as their staff (docs/people.md
"City-wide verified roles").

Each school's ``/_parta/v1/stats`` answer carries ``staff``: role attestations
(``federation.attestations``) of its directors and deputies, and of the teachers who opted
in; pupils and parents are never attested, so they can never be listed.  ``CityStaff``
keeps, per school, only the attestations that verify against the gateway's own roster (the
keys it pins for that school, the school ID it gives it) and names the user on that school's
server; everything else is dropped and counted in the log.  The list of a school is
replaced wholesale by each answer, so a teacher who opts out or a director who leaves drops
out at the next gathering; expired entries are skipped when read.

Served to the nodes on the gateway's federation listener as ``GET /_parta/v1/staff?term=&
limit=`` (X-Matrix signed, roster members only, like every federation request): the
attestations themselves, so each node verifies them again against its own roster before
showing them in ``/user_directory/search``.  The dashboard lists staff per school.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from federation.attestations import Attestation, AttestationError, RosterLookup
from federation.attestations import verify_attestation as verify
from federation.errors import InvalidParam
from federation.transport import endpoints as E

log = logging.getLogger("parta.gateway.staff")

MAX_STAFF_PER_SCHOOL = 1_000
MAX_LIMIT = 50
MAX_TERM = 200  # characters


class CityStaff:
    def __init__(self, *, roster: Callable[[], RosterLookup | None], clock: Any) -> None:
        self.roster = roster
        self.clock = clock
        self.by_server: dict[str, list[Attestation]] = {}

    async def on_stats(self, server: str, stats: dict) -> None:
        """A gathering listener: replace ``server``'s staff with what verifies."""
        raw = stats.get("staff")
        roster = self.roster()
        if not isinstance(raw, list) or roster is None:
            return
        now = self.clock.time_ms()
        kept: list[Attestation] = []
        refused = 0
        for doc in raw[:MAX_STAFF_PER_SCHOOL]:
            try:
                att = verify(doc, roster, now)
            except AttestationError:
                refused += 1
                continue
            if att.server_name == server and all(a.user_id != att.user_id for a in kept):
                kept.append(att)
        self.by_server[server] = kept
        if refused:
            log.info("event=staff_refused server=%s refused=%d", server, refused)

    def forget_others(self, servers: set[str]) -> None:
        for gone in set(self.by_server) - servers:
            del self.by_server[gone]

    def current(self, server: str) -> list[Attestation]:
        now = self.clock.time_ms()
        return [a for a in self.by_server.get(server, ()) if a.expiry_ts > now]

    def search(self, term: str, limit: int) -> tuple[list[Attestation], bool]:
        """Staff whose user ID, display name or school name contains ``term``."""
        needle = term.strip().lower()
        found: list[Attestation] = []
        for server in sorted(self.by_server):
            for att in self.current(server):
                hay = att.user_id + "\n" + (att.displayname or "") + "\n" + att.school_name
                if needle in hay.lower():
                    found.append(att)
                    if len(found) > limit:
                        return found[:limit], True
        return found, False


def register_route(routes: Any, staff: CityStaff) -> None:
    from node.federation.xmatrix_auth import serve

    async def get_staff(req: Any, origin: str) -> tuple[int, dict]:
        term = req.query("term") or ""
        if len(term) > MAX_TERM:
            raise InvalidParam(f"term may be at most {MAX_TERM} characters")
        try:
            limit = int(req.query("limit") or 10)
        except ValueError:
            raise InvalidParam("limit must be an integer") from None
        found, limited = staff.search(term, max(1, min(limit, MAX_LIMIT)))
        return 200, {"results": [dict(a.doc) for a in found], "limited": limited}

    serve(routes, E.PARTA_STAFF, get_staff)
