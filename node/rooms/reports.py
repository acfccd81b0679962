"""Reported content reaches the school's moderators (client-server API "Reporting content",
https://spec.matrix.org/v1.16/client-server-api/#reporting-content).

"Servers are free to handle the reported content however they desire. This may be a
dedicated room to alert server administrators": every accepted report is stored
(``content_reports``), counted (``parta_reports_total{kind}``) and posted as an
``m.notice`` into a private "Reports" room that the node's notices account
(``NOTICES_LOCALPART``, an account without a password: nobody logs in as it) creates on the
first report.  The school's directors are invited to it, then and on every later report
(a director appointed since is invited with the next one).  The room's ID is kept in
``client_misc_rooms`` so a restart posts into the same room.

A report is accepted before its notice is posted: a failure to post (e.g. the localpart
is taken by a real account, which is never used) is logged and does not fail the report;
the stored row stays the record.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from sqlalchemy import insert, select
from twisted.internet import defer

from schema.client_misc import client_misc_rooms, content_reports

from .. import metrics
from ..ratelimit import RateLimiter

log = logging.getLogger("parta.reports")

NOTICES_LOCALPART = "parta-notices"
NOTICES_DISPLAY_NAME = "School server notices"
ROOM_PURPOSE = "reports"
MAX_DIRECTORS = 200  # invited to the reports room at most
MAX_QUOTED_CHARS = 500  # of a reported message's body, in the notice

# Reports one user may file: 10 at once, then one every 6 minutes.
REPORTS_BURST = 10
REPORTS_PER_SECOND = 1 / 360


class NoticeAccounts(Protocol):
    """The accounts service as the reports need it (rooms may not import accounts)."""

    server_name: str

    async def create_user(
        self, localpart: str, password: str | None, role: str, display_name: str | None = None
    ) -> str: ...

    async def user_exists(self, user_id: str) -> bool: ...


class _Seconds:
    def __init__(self, clock: Any) -> None:
        self.clock = clock

    def seconds(self) -> float:
        return self.clock.time_ms() / 1000


def _insert_report(conn: Any, row: dict) -> int:
    return int(conn.execute(insert(content_reports).values(**row)).inserted_primary_key[0])


def _room_for(conn: Any, purpose: str) -> str | None:
    return conn.execute(
        select(client_misc_rooms.c.room_id).where(client_misc_rooms.c.purpose == purpose)
    ).scalar()


def _save_room(conn: Any, purpose: str, room_id: str) -> None:
    conn.execute(insert(client_misc_rooms).values(purpose=purpose, room_id=room_id))


def _directors(conn: Any) -> list[str]:
    from schema.accounts import users

    rows = conn.execute(
        select(users.c.user_id)
        .where(users.c.role == "director", users.c.deactivated.is_(False))
        .order_by(users.c.user_id)
        .limit(MAX_DIRECTORS)
    )
    return [r[0] for r in rows]


def _has_password(conn: Any, user_id: str) -> bool:
    from schema.accounts import users

    row = conn.execute(select(users.c.password_hash).where(users.c.user_id == user_id)).first()
    return row is not None and row[0] is not None


def notice_text(report: dict, quoted: str | None) -> str:
    """The notice moderators read (plain text; every value came from the reporter or the
    reported event, so it is quoted, never interpreted)."""
    kind = report["kind"]
    lines = [f"Report #{report['id']}: {report['reporter']} reported "]
    if kind == "event":
        lines[0] += f"event {report['event_id']} in room {report['room_id']}"
    elif kind == "room":
        lines[0] += f"room {report['room_id']}"
    else:
        lines[0] += f"user {report['target_user_id']}"
    if quoted:
        lines.append(f"Reported message: {quoted!r}")
    if report.get("score") is not None:
        lines.append(f"Score: {report['score']}")
    lines.append(f"Reason: {report['reason']!r}" if report.get("reason") else "No reason given.")
    return "\n".join(lines)


class Reports:
    """Stores reports, rate-limits reporters and posts the notices."""

    def __init__(self, rooms: Any, accounts: NoticeAccounts | None, *, enabled: bool = True):
        self.rooms = rooms
        self.accounts = accounts
        self.limiter = RateLimiter(
            _Seconds(rooms.clock),
            per_second=REPORTS_PER_SECOND,
            burst_count=REPORTS_BURST,
            enabled=enabled,
        )
        self._room_lock = defer.DeferredLock()

    def check_rate(self, reporter: str) -> None:
        self.limiter.check(reporter)

    async def file(self, report: dict, quoted: str | None = None) -> int:
        """Store ``report`` (kind, reporter, room_id, event_id, target_user_id, reason,
        score) and tell the moderators; returns the report's number."""
        row = {**report, "received_ts": self.rooms.clock.time_ms()}
        report_id = await self.rooms.db.run(_insert_report, row)
        metrics.REPORTS.labels(kind=report["kind"]).inc()
        log.info(
            "event=content_reported id=%s kind=%s reporter=%s",
            report_id,
            report["kind"],
            report["reporter"],
        )
        try:
            await self._notify({**row, "id": report_id}, quoted)
        except Exception:  # noqa: BLE001 - the stored report is the record; log and go on
            log.exception("event=report_notice_failed id=%s", report_id)
        return report_id

    async def _notify(self, report: dict, quoted: str | None) -> None:
        if self.accounts is None:
            return
        room_id, sender = await self._reports_room()
        if room_id is None or sender is None:
            return
        await self._invite_directors(room_id, sender)
        text = notice_text(report, quoted)
        await self.rooms.send_event(
            sender, room_id, "m.room.message", {"msgtype": "m.notice", "body": text}
        )

    async def _reports_room(self) -> tuple[str | None, str | None]:
        """The reports room and its owner, made on first use (once: under a lock)."""
        assert self.accounts is not None
        sender = f"@{NOTICES_LOCALPART}:{self.accounts.server_name}"
        await self._room_lock.acquire()
        try:
            room_id = await self.rooms.db.run(_room_for, ROOM_PURPOSE)
            if room_id is not None:
                return room_id, sender
            if not await self.accounts.user_exists(sender):
                await self.accounts.create_user(
                    NOTICES_LOCALPART, None, "office", display_name=NOTICES_DISPLAY_NAME
                )
            elif await self.rooms.db.run(_has_password, sender):
                log.error(
                    "event=report_room_refused reason=notices_localpart_taken user_id=%s", sender
                )
                return None, None
            directors = await self.rooms.db.run(_directors)
            room_id = await self.rooms.create_room(
                sender,
                {
                    "preset": "private_chat",
                    "name": "Reports",
                    "topic": "Content reported by users of this server, for the moderators.",
                    "invite": directors,
                },
            )
            await self.rooms.db.run(_save_room, ROOM_PURPOSE, room_id)
            log.info("event=report_room_created room_id=%s", room_id)
            return room_id, sender
        finally:
            self._room_lock.release()

    async def _invite_directors(self, room_id: str, sender: str) -> None:
        room = await self.rooms.get_room(room_id)
        for director in await self.rooms.db.run(_directors):
            if room.membership(director) not in ("join", "invite", "ban"):
                await self.rooms.update_membership(sender, room_id, director, "invite")
