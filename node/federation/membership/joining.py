"""This server as the joining server: joining a room it is not in.

Spec: server-server API "Joining Rooms" (make_join against a resident, fill in and sign
the template, send_join, receive "the full set of state for the newly-joined room as
well as the freshly signed membership event"; the resident distributes the join), client-
server API ``joining.yaml`` (``via`` / deprecated ``server_name``: "The servers to attempt
to join the room through. One of the servers must be participating in the room"),
"Room aliases" (``/query/directory`` on the alias's server gives the room ID and servers).

Candidates, in order: the ``via`` servers, the servers of the alias lookup, the server
that invited the user, the server of a room ID of the form ``!opaque:server`` (room
versions before 12), and the servers of members joined in whatever state we have; never
ourselves, never a server the policy refuses.  The first that completes the handshake
wins; a 403 from every candidate is a 403 for the client.

The send_join answer (state, auth chain, the join) is verified and stored by the inbound
side (``ingest.persist_joined_room``); afterwards the room is like any room we are in.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from federation.errors import InvalidParam, MatrixError, NotFound
from federation.events.builder import build_event
from federation.room_versions import KNOWN_ROOM_VERSIONS
from federation.transport import endpoints as E

from ..roster_policy import refusal
from .common import MEMBER, SUPPORTED_VERSIONS, check_template, domain_of
from .remote_calls import RemoteRefused, call

log = logging.getLogger("parta.federation.membership")


def ordered_candidates(server_name: str, policy: Any, *groups: Iterable[str]) -> list[str]:
    out: list[str] = []
    for group in groups:
        for s in group:
            if isinstance(s, str) and s and s != server_name and s not in out:
                if policy is None or policy.allow_outbound(s):
                    out.append(s)
    return out


async def resolve_remote_alias(ms: Any, alias: str) -> tuple[str, list[str]]:
    server = domain_of(alias)
    if not server:
        raise InvalidParam(f"{alias!r} is not a room alias")
    if ms.policy is not None and not ms.policy.allow_outbound(server):
        raise refusal(ms.policy, server)
    try:
        resp = await call(ms.client, server, E.QUERY_DIRECTORY, query={"room_alias": alias})
    except RemoteRefused as exc:
        if exc.errcode == "M_NOT_FOUND":
            raise NotFound(f"Room alias {alias} not found") from None
        raise
    room_id = resp.get("room_id")
    servers = resp.get("servers")
    if not isinstance(room_id, str) or not room_id.startswith("!"):
        raise MatrixError(
            f"{server} gave no room ID for {alias}", errcode="M_UNKNOWN", http_status=502
        )
    return room_id, [s for s in servers or [] if isinstance(s, str)]


async def join_via(ms: Any, server: str, user_id: str, room_id: str, content_extra: dict) -> str:
    resp = await call(
        ms.client, server, E.MAKE_JOIN, room_id, user_id, query={"ver": SUPPORTED_VERSIONS}
    )
    rv_id = resp.get("room_version", "1") if isinstance(resp, dict) else "1"
    rv = KNOWN_ROOM_VERSIONS.get(rv_id)
    if rv is None:
        raise MatrixError(
            f"Room version {rv_id!r} is not supported by this server",
            errcode="M_UNSUPPORTED_ROOM_VERSION",
            http_status=400,
        )
    try:
        tmpl = check_template(resp, room_id, user_id, "join")
    except InvalidParam as exc:
        raise MatrixError(
            f"{server}: {exc.message}", errcode="M_UNKNOWN", http_status=502
        ) from None
    content = dict(tmpl["content"])
    content.update(content_extra)
    ev = build_event(
        rv,
        server_name=ms.server_name,
        signing_key=ms.signing_key,
        type=MEMBER,
        sender=user_id,
        content=content,
        room_id=room_id,
        prev_events=list(tmpl["prev_events"]),
        auth_events=list(tmpl["auth_events"]),
        depth=tmpl["depth"],
        origin_server_ts=ms.clock.time_ms(),
        state_key=user_id,
    )
    ms.sender.skip_event(ev.event_id)  # the resident sends it to the room
    answer = await call(ms.client, server, E.SEND_JOIN, room_id, ev.event_id, body=dict(ev.pdu))
    join_pdu = dict(ev.pdu)
    signed = answer.get("event")
    if isinstance(signed, dict):
        # The resident's copy (e.g. counter-signed for a restricted join) must be our
        # event: same content, so the same reference hash.
        from federation.events.model import Event

        try:
            if Event(signed, rv).event_id == ev.event_id:
                join_pdu = signed
        except Exception:  # noqa: BLE001 - keep our own copy
            pass
    state, chain = answer.get("state"), answer.get("auth_chain")
    if not isinstance(state, list) or not isinstance(chain, list):
        raise MatrixError(
            f"{server}: send_join answer without state/auth_chain",
            errcode="M_UNKNOWN",
            http_status=502,
        )
    await persist_joined(ms, rv, join_pdu, state, chain, server)
    log.info(
        "event=remote_join room_id=%s user_id=%s via=%s state=%d auth_chain=%d",
        room_id,
        user_id,
        server,
        len(state),
        len(chain),
    )
    return room_id


async def persist_joined(
    ms: Any, rv: Any, join_pdu: dict, state: list, chain: list, origin: str
) -> None:
    """Hand the send_join answer to the inbound side (``Ingest.persist_joined_room``: the
    state and auth chain as outliers, then the join with that state before it; a room we
    knew only through an out-of-band invite/knock gets its state replaced)."""
    await ms.ingest.persist_joined_room(rv, join_pdu, state, chain, origin)


async def join_remote(
    ms: Any, user_id: str, room_id: str, candidates: list[str], content_extra: dict
) -> str:
    if not candidates:
        raise NotFound("No known servers to join this room through (use 'via')")
    errors: list[MatrixError] = []
    for server in candidates:
        try:
            return await join_via(ms, server, user_id, room_id, content_extra)
        except MatrixError as exc:
            log.info(
                "event=remote_join_attempt_failed room_id=%s via=%s error=%s %s",
                room_id,
                server,
                exc.errcode,
                exc.message,
            )
            errors.append(exc)
    for code in (
        "M_FORBIDDEN",
        "M_INCOMPATIBLE_ROOM_VERSION",
        "M_UNSUPPORTED_ROOM_VERSION",
        "M_NOT_FOUND",
    ):
        for err in errors:
            if err.errcode == code:
                raise err
    raise errors[-1]
