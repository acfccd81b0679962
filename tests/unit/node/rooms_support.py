"""Helpers for the rooms area's unit tests (not a test module).

``make_service`` builds a ``RoomService`` on ``support.db.InlineDB`` (every ``db.run``
completes at once), so the whole service completes synchronously and
``support.deferreds.result_of`` can drive it without a reactor.
"""

from __future__ import annotations

from support.db import InlineDB
from support.deferreds import result_of

import schema.events  # registers the tables
import schema.rooms  # noqa: F401 - registers the tables
from federation.keys import SigningKey
from node.rooms.service import RoomService

SERVER = "school.test"


class StepClock:
    """Milliseconds that advance by one on every read (distinct timestamps)."""

    def __init__(self, start: int = 1_700_000_000_000) -> None:
        self.now = start

    def time_ms(self) -> int:
        self.now += 1
        return self.now

    def call_later(self, seconds, fn, *args):  # pragma: no cover - unused
        raise AssertionError("no timers in room tests")


class NoAttestations:
    """No staff role attestations (node/accounts/attestations.py): nobody is attested."""

    def attach(self, roster, signing_key, remote=None) -> None:
        pass

    async def local(self, user_id):
        return None


class FakeAccounts:
    attestations = NoAttestations()

    def __init__(self, users=("alice", "bob", "carol", "dave")) -> None:
        self.profiles = {f"@{u}:{SERVER}": {"displayname": u.capitalize()} for u in users}
        self.listeners = []

    async def get_profile(self, user_id):
        return dict(self.profiles.get(user_id, {}))

    async def get_profile_or_none(self, user_id):
        profile = self.profiles.get(user_id)
        return None if profile is None else dict(profile)

    async def user_exists(self, user_id):
        return user_id in self.profiles

    def add_profile_listener(self, cb):
        self.listeners.append(cb)

    remote_profiles = None

    def attach_remote_profiles(self, remote):
        self.remote_profiles = remote


class RecordingNotifier:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, tuple]] = []

    def notify_room_event(self, room_id, stream_ordering, extra_user_ids=()):
        self.calls.append((room_id, stream_ordering, tuple(extra_user_ids)))

    def notify_users(self, user_ids, stream):
        pass


def uid(name: str) -> str:
    return f"@{name}:{SERVER}"


def make_service(db: InlineDB | None = None, **kw) -> RoomService:
    db = db or InlineDB()
    svc = RoomService(
        db=db,
        clock=kw.pop("clock", StepClock()),
        server_name=SERVER,
        signing_key=kw.pop("signing_key", SigningKey("t1", b"\x01" * 32)),
        accounts=kw.pop("accounts", FakeAccounts()),
        notifier=kw.pop("notifier", RecordingNotifier()),
        **kw,
    )
    svc.persister.start_sync()
    return svc


class Api:
    """Calls the rooms area's route handlers in-process (no HTTP): the real request
    object, the real router registration, a fixed requester."""

    def __init__(self, service: RoomService) -> None:
        from node.http.router import Router
        from node.rooms.api import register_all

        self.router = Router()
        register_all(self.router, service)
        self.service = service

    def call(
        self,
        method: str,
        path: str,
        user: str | None = None,
        body=None,
        query: dict | None = None,
        device: str = "DEV",
    ):
        import orjson

        from node.http.request import ApiRequest, Requester

        route, params, _ = self.router.match(method, path)
        assert route is not None, f"no route for {method} {path}"
        raw = b"" if body is None else (body if isinstance(body, bytes) else orjson.dumps(body))
        args = {k: (v if isinstance(v, list) else [v]) for k, v in (query or {}).items()}
        req = ApiRequest(method, path, args, {}, raw, "127.0.0.1")
        if user is not None:
            req.requester = Requester(user, device)
        return result_of(route.handler(req, **params))

    def status(self, *args, **kw):
        """(status, errcode-or-body) without raising."""
        from federation.errors import MatrixError

        try:
            return self.call(*args, **kw)
        except MatrixError as exc:
            return exc.http_status, exc.errcode
