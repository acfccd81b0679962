"""Reporting content (client-server API ``report_content.yaml``):
``POST /rooms/{roomId}/report/{eventId}``, ``POST /rooms/{roomId}/report`` and
``POST /users/{userId}/report``.
https://spec.matrix.org/v1.16/client-server-api/#reporting-content

* An event may be reported only by a user joined to its room who can see it; anything else
  (unknown room or event, event of another room, not joined, not visible, rejected) is the
  same 404 ``M_NOT_FOUND``, so a report reveals nothing a ``/event`` request would not.
* A room may be reported by anyone ("servers MUST NOT restrict room reports based on
  whether or not the reporting user is joined"): 404 only for a room this server does not
  know.  A user likewise: 404 only for an unknown user of this server.
* ``reason`` is required for rooms and users (it may be blank), optional for events, at most
  ``MAX_REASON_CHARS``; the deprecated event ``score`` is kept if it is an integer in
  [-100, 0].
* Each reporter may file ``reports.REPORTS_BURST`` reports at once, then one every six
  minutes (429 ``M_LIMIT_EXCEEDED``), counted before any look-up, so probing for rooms or
  users through reports is bounded too.

What happens to a report: ``node.rooms.reports``.
"""

from __future__ import annotations

from typing import Any

from federation.errors import BadJSON, InvalidParam, MatrixError, NotFound

from ...http.request import MissingParam
from ..reports import MAX_QUOTED_CHARS, NoticeAccounts, Reports
from .common import V3

MAX_REASON_CHARS = 2000
NOT_FOUND_EVENT = "The event was not found or you are not joined to the room."


def _reason(body: dict, *, required: bool) -> str | None:
    if "reason" not in body or body["reason"] is None:
        if required:
            raise MissingParam("Missing 'reason' (it may be blank)")
        return None
    reason = body["reason"]
    if not isinstance(reason, str):
        raise BadJSON("'reason' must be a string")
    if len(reason) > MAX_REASON_CHARS or "\x00" in reason:
        raise InvalidParam(f"'reason' must be at most {MAX_REASON_CHARS} characters, no NUL")
    return reason


def _score(body: dict) -> int | None:
    score = body.get("score")
    if score is None:
        return None
    if isinstance(score, bool) or not isinstance(score, int) or not -100 <= score <= 0:
        raise BadJSON("'score' must be an integer between -100 and 0")
    return score


def _quoted(ev: Any) -> str | None:
    body = ev.content.get("body") if ev.type == "m.room.message" else None
    return body[:MAX_QUOTED_CHARS] if isinstance(body, str) else None


def register(
    router: Any, service: Any, accounts: NoticeAccounts | None = None, *, enabled: bool = True
) -> Reports:
    reports = Reports(service, accounts, enabled=enabled)

    async def report_event(req: Any, roomId: str, eventId: str) -> tuple[int, dict]:
        body = req.json()
        reason, score = _reason(body, required=False), _score(body)
        reports.check_rate(req.user_id)
        try:
            room = await service.get_room(roomId)
        except MatrixError:
            raise NotFound(NOT_FOUND_EVENT) from None
        if room.membership(req.user_id) != "join":
            raise NotFound(NOT_FOUND_EVENT)
        ev = await service.get_event(eventId)
        if ev is None or ev.room_id != roomId or ev.rejected_reason is not None:
            raise NotFound(NOT_FOUND_EVENT)
        if not await service.filter_events_for_user(req.user_id, roomId, [ev]):
            raise NotFound(NOT_FOUND_EVENT)
        await reports.file(
            {
                "kind": "event",
                "reporter": req.user_id,
                "room_id": roomId,
                "event_id": eventId,
                "target_user_id": ev.sender,
                "reason": reason,
                "score": score,
            },
            _quoted(ev),
        )
        return 200, {}

    async def report_room(req: Any, roomId: str) -> tuple[int, dict]:
        reason = _reason(req.json(), required=True)
        reports.check_rate(req.user_id)
        if not roomId.startswith("!") or not await service.room_exists(roomId):
            raise NotFound("The room was not found.")
        await reports.file(
            {"kind": "room", "reporter": req.user_id, "room_id": roomId, "reason": reason}
        )
        return 200, {}

    async def report_user(req: Any, userId: str) -> tuple[int, dict]:
        reason = _reason(req.json(), required=True)
        if not userId.startswith("@") or ":" not in userId or len(userId.encode()) > 255:
            raise InvalidParam(f"{userId!r} is not a user ID")
        reports.check_rate(req.user_id)
        server_name = userId.split(":", 1)[1]
        if server_name == service.server_name and not await service.accounts.user_exists(userId):
            raise NotFound("The user was not found.")
        await reports.file(
            {"kind": "user", "reporter": req.user_id, "target_user_id": userId, "reason": reason}
        )
        return 200, {}

    router.add("POST", V3 + "/rooms/{roomId}/report/{eventId}", report_event)
    router.add("POST", V3 + "/rooms/{roomId}/report", report_room)
    router.add("POST", V3 + "/users/{userId}/report", report_user)
    return reports
