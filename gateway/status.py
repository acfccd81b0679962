"""The gateway's live view of each school, for the dashboard's school status columns (last
federation contact, outbound queue depth, roster version acknowledged, users and rooms counts
the school publishes): implements ``gateway.sources.SchoolStatusSource`` and, through
the directory gatherer, ``PublicRoomsSource``.

Where each column comes from:

* **last federation contact**: the latest of (a) the last inbound federation request from
  that server that passed X-Matrix authentication (``ContactTracker``, fed by the
  federation listener's ``XMatrixAuthenticator.observers``; in memory), (b) the last
  transaction the gateway delivered to it (``federation_destinations.last_success_ts``,
  persisted by the outbound sender), (c) its last signed roster refresh
  (``RosterAcks``, ``gateway/roster_enforcement.py``), (d) the last successful directory
  gathering from it (``gatherer``);
* **outbound queue depth**: PDUs + EDUs queued for it in the federation outbound queue
  (``federation_outbound_pdus`` / ``_edus``), one grouped query for all schools shown;
* **roster version acknowledged**: ``RosterAcks`` (the ``since`` of the school's latest
  signed refresh);
* **users / rooms**: what the school published at ``/_parta/v1/stats``
  (``node/federation/server/stats.py``), as gathered.

A value the gateway has no source for stays None ("—" on the dashboard).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from .sources import SchoolStatus


class ContactTracker:
    """Last authenticated inbound federation request per origin (ms)."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.last: dict[str, int] = {}

    def __call__(self, origin: str) -> None:
        self.last[origin] = self.clock.time_ms()


def outbound_status(conn: Connection, names: Sequence[str]) -> dict[str, tuple[int, int | None]]:
    """server -> (queued PDUs + EDUs, last successful transaction ts) for ``names``."""
    from schema.federation_outbound import federation_destinations as dest_t
    from schema.federation_outbound import federation_outbound_edus as edus_t
    from schema.federation_outbound import federation_outbound_pdus as pdus_t

    out: dict[str, list] = {n: [0, None] for n in names}
    if not names:
        return {}
    for table in (pdus_t, edus_t):
        for dest, n in conn.execute(
            select(table.c.destination, func.count())
            .where(table.c.destination.in_(list(names)))
            .group_by(table.c.destination)
        ):
            out[dest][0] += int(n)
    for dest, ts in conn.execute(
        select(dest_t.c.destination, dest_t.c.last_success_ts).where(
            dest_t.c.destination.in_(list(names))
        )
    ):
        out[dest][1] = ts
    return {k: (v[0], v[1]) for k, v in out.items()}


def _latest(*values: int | None) -> int | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


class CityStatusSource:
    """``SchoolStatusSource`` over the sources listed in the module docstring; any of
    them may be None (e.g. no federation: no queue depth)."""

    def __init__(
        self,
        *,
        db: Any = None,
        contacts: ContactTracker | None = None,
        acks: Any = None,
        gatherer: Any = None,
        own_server: str | None = None,
    ) -> None:
        self.own_server = own_server  # the gateway itself: nothing to report
        self.db = db
        self.contacts = contacts
        self.acks = acks
        self.gatherer = gatherer

    async def status_of(self, server_names: Iterable[str]) -> dict[str, SchoolStatus]:
        names = sorted(set(server_names) - {self.own_server})
        outbound = (
            await self.db.run(outbound_status, names) if self.db is not None and names else {}
        )
        out: dict[str, SchoolStatus] = {}
        for name in names:
            ack = self.acks.acked(name) if self.acks is not None else None
            gathered = self.gatherer.get(name) if self.gatherer is not None else None
            stats = gathered.stats if gathered is not None else None
            gathered_ok = None
            if gathered is not None:
                gathered_ok = _latest(gathered.rooms_ts, gathered.stats_ts)
            queue, delivered = outbound.get(name, (None, None))
            status = SchoolStatus(
                last_contact_ts=_latest(
                    self.contacts.last.get(name) if self.contacts is not None else None,
                    delivered,
                    ack[1] if ack else None,
                    gathered_ok,
                ),
                outbound_queue_depth=queue,
                roster_version_acked=ack[0] if ack else None,
                user_count=stats.get("users") if stats else None,
                room_count=stats.get("rooms") if stats else None,
                report_count=stats.get("reports") if stats else None,
            )
            if status != SchoolStatus():
                out[name] = status
        return out
