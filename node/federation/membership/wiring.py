"""Composition of the membership handshakes:
``wire(fctx, *, rooms, accounts, sender) -> MembershipService``.

Registers the resident-side endpoints on the federation listener (X-Matrix
authenticated, server policy applied: ``fctx.routes``) and hands the rooms area its
federation hooks (``node.rooms.hooks.RoomHooks``, once, through
``rooms.attach_federation``): ``membership``, which the client membership endpoints use
for remote joins, invites and leaves; ``out_of_band_state``, so invites to rooms we are not
in show the inviting server's room state in ``/sync``; ``backfill`` for older history of
federated rooms; ``remote_hierarchy`` for space children other servers know;
``remote_directory`` for other servers' aliases and published rooms;
``timestamp_to_event`` for the client ``timestamp_to_event`` where our history has a gap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.transport import endpoints as E
from node.rooms.hooks import (
    Backfill,
    OutOfBandState,
    RemoteDirectory,
    RemoteHierarchy,
    RemoteTimestamp,
    RoomHooks,
)

from ..xmatrix_auth import serve
from .out_of_band import stripped_state_for
from .service import MembershipService

if TYPE_CHECKING:
    from node.accounts.service import AccountsService
    from node.federation.context import FederationContext
    from node.media.service import MediaService


def register(routes: Any, ms: MembershipService) -> None:
    async def make_join(req: Any, origin: str, roomId: str, userId: str) -> tuple[int, dict]:
        return 200, await ms.on_make_join(origin, roomId, userId, req.args.get("ver") or [])

    async def send_join(req: Any, origin: str, roomId: str, eventId: str) -> tuple[int, dict]:
        return 200, await ms.on_send_join(origin, roomId, eventId, req.json())

    async def invite(req: Any, origin: str, roomId: str, eventId: str) -> tuple[int, dict]:
        return 200, await ms.on_invite(origin, roomId, eventId, req.json())

    async def make_leave(req: Any, origin: str, roomId: str, userId: str) -> tuple[int, dict]:
        return 200, await ms.on_make_leave(origin, roomId, userId)

    async def send_leave(req: Any, origin: str, roomId: str, eventId: str) -> tuple[int, dict]:
        return 200, await ms.on_send_leave(origin, roomId, eventId, req.json())

    async def make_knock(req: Any, origin: str, roomId: str, userId: str) -> tuple[int, dict]:
        return 200, await ms.on_make_knock(origin, roomId, userId, req.args.get("ver") or [])

    async def send_knock(req: Any, origin: str, roomId: str, eventId: str) -> tuple[int, dict]:
        return 200, await ms.on_send_knock(origin, roomId, eventId, req.json())

    serve(routes, E.MAKE_JOIN, make_join)
    serve(routes, E.MAKE_KNOCK, make_knock)
    serve(routes, E.SEND_KNOCK, send_knock)
    serve(routes, E.SEND_JOIN, send_join)
    serve(routes, E.INVITE, invite)
    serve(routes, E.MAKE_LEAVE, make_leave)
    serve(routes, E.SEND_LEAVE, send_leave)


def out_of_band_state(ms: MembershipService) -> OutOfBandState:
    """The stripped state of rooms known only through a remote invite or knock."""

    async def out_of_band_stripped_state(room: Any, extra: Any) -> Any:
        return await stripped_state_for(ms.db, room, extra)

    return out_of_band_stripped_state


def room_hooks(
    ms: MembershipService,
    *,
    backfill: Backfill | None = None,
    remote_hierarchy: RemoteHierarchy | None = None,
    remote_directory: RemoteDirectory | None = None,
    timestamp_to_event: RemoteTimestamp | None = None,
) -> RoomHooks:
    """Everything the rooms area hands to the federation, for ``rooms.attach_federation``."""
    return RoomHooks(
        membership=ms,
        out_of_band_state=out_of_band_state(ms),
        backfill=backfill,
        remote_hierarchy=remote_hierarchy,
        remote_directory=remote_directory,
        timestamp_to_event=timestamp_to_event,
    )


def wire(
    fctx: FederationContext, *, rooms: Any, accounts: Any = None, sender: Any = None
) -> MembershipService:
    ctx = fctx.ctx
    ingest = fctx.ingest
    if ingest is None:
        raise RuntimeError("the inbound pipeline must be wired before the handshakes")
    ms = MembershipService(
        rooms=rooms,
        accounts=accounts,
        sender=sender,
        client=fctx.client,
        keyring=fctx.keyring,
        ingest=ingest,
        state_store=fctx.state_store,
        policy=fctx.policy,
        db=ctx.db,
        clock=ctx.clock,
        server_name=ctx.server_name,
        signing_key=lambda: fctx.signing_key,
    )
    register(fctx.routes, ms)
    attach_remote(fctx, accounts=accounts or fctx.accounts, media=fctx.media)
    from node.federation.remote.backfill import Backfiller
    from node.federation.remote.hierarchy import build as build_hierarchy
    from node.federation.remote.remote_directory import RemoteDirectoryClient
    from node.federation.remote.timestamp import RemoteTimestamps

    backfiller = Backfiller(
        rooms=rooms,
        client=fctx.client,
        clock=ctx.clock,
        server_name=ctx.server_name,
        ingest=ingest,
        policy=fctx.policy,
    )
    # Spaces: the client /hierarchy asks other servers about children we do not know.
    hierarchy = build_hierarchy(fctx) if fctx.rooms is not None else None
    # Other servers' aliases and published rooms for the client directory endpoints.
    directory = RemoteDirectoryClient(
        client=fctx.client, clock=ctx.clock, server_name=ctx.server_name, policy=fctx.policy
    )
    rooms.attach_federation(
        room_hooks(
            ms,
            backfill=backfiller.backfill,
            remote_hierarchy=hierarchy,
            remote_directory=directory,
            timestamp_to_event=RemoteTimestamps(
                rooms=rooms,
                client=fctx.client,
                server_name=ctx.server_name,
                ingest=ingest,
                policy=fctx.policy,
            ),
        )
    )
    return ms


def attach_remote(
    fctx: FederationContext, *, accounts: AccountsService | None, media: MediaService | None
) -> None:
    """Remote profile look-ups and remote media downloads for the client API, handed to
    the accounts and media areas through their extension points."""
    from node.federation.remote.media import RemoteMedia
    from node.federation.remote.profile import RemoteProfiles

    ctx = fctx.ctx
    if accounts is not None:
        accounts.attach_remote_profiles(
            RemoteProfiles(
                client=fctx.client,
                clock=ctx.clock,
                server_name=ctx.server_name,
                policy=fctx.policy,
            )
        )
    if media is not None:
        max_bytes = ctx.config.media.max_upload_bytes
        media.attach_remote(
            RemoteMedia(
                client=fctx.client,
                clock=ctx.clock,
                server_name=ctx.server_name,
                policy=fctx.policy,
                max_bytes=max_bytes or 50 * 1024 * 1024,
            )
        )
