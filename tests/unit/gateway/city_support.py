"""Fakes for the city services unit tests (not a test module): a scripted outbound
federation client and a gateway harness with the city directory wired."""

from __future__ import annotations

from typing import Any, Callable

from support.deferreds import result_of
from twisted.internet import defer

from federation.keys import SigningKey
from federation.transport.errors import DestinationUnreachable, RemoteError
from gateway.directory.api import CityDirectory, register
from gateway.directory.gatherer import DirectoryGatherer
from gateway_app_support import GatewayHarness

SCHOOL_KEY = SigningKey("k1", b"\x21" * 32)


def room(room_id: str, name: str, members: int = 1, **extra: Any) -> dict:
    return {
        "room_id": room_id,
        "name": name,
        "num_joined_members": members,
        "world_readable": False,
        "guest_can_join": False,
        "join_rule": "public",
        **extra,
    }


class FakeFederation:
    """``request``/``request_ok`` like ``FederationHttpClient``: answers come from
    ``rooms[server]`` (a list, paged by ``limit``/``since``) and ``stats[server]``;
    servers in ``down`` are unreachable; ``hold`` makes answers wait for ``release()``."""

    def __init__(self) -> None:
        self.rooms: dict[str, list[dict]] = {}
        self.stats: dict[str, Any] = {}
        self.down: set[str] = set()
        self.calls: list[tuple[str, str, dict]] = []
        self.hold = False
        self._held: list[tuple[defer.Deferred, Callable[[], Any]]] = []

    def release(self) -> None:
        held, self._held = self._held, []
        for d, answer in held:
            try:
                d.callback(answer())
            except Exception as exc:  # noqa: BLE001 - handed on to the waiting Deferred
                d.errback(exc)

    async def _answer(self, fn: Callable[[], Any]) -> Any:
        if self.hold:
            d: defer.Deferred = defer.Deferred()
            self._held.append((d, fn))
            return await d
        return fn()

    async def request(
        self,
        destination: str,
        method: str,
        path: str,
        json_body: Any = None,
        query: Any = None,
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        self.calls.append((destination, path, dict(query or {})))

        def answer() -> tuple[int, Any]:
            if destination in self.down:
                raise DestinationUnreachable(destination, "connection refused")
            if path == "/_parta/v1/stats":
                if destination not in self.stats:
                    return 404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized"}
                return 200, self.stats[destination]
            if path == "/_matrix/federation/v1/publicRooms":
                rooms = self.rooms.get(destination, [])
                offset = int((query or {}).get("since", "o0")[1:])
                limit = int((query or {}).get("limit", 100))
                body: dict = {
                    "chunk": rooms[offset : offset + limit],
                    "total_room_count_estimate": len(rooms),
                }
                if offset + limit < len(rooms):
                    body["next_batch"] = f"o{offset + limit}"
                return 200, body
            return 404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized"}

        return await self._answer(answer)

    async def request_ok(
        self,
        destination: str,
        method: str,
        path: str,
        json_body: Any = None,
        query: Any = None,
        timeout: float | None = None,
    ) -> Any:
        status, body = await self.request(destination, method, path, json_body, query, timeout)
        if status != 200:
            raise RemoteError(destination, status, body)
        return body

    def count(self, server: str, path_part: str) -> int:
        return sum(1 for d, p, _ in self.calls if d == server and path_part in p)


class OwnRoomsDirectory(CityDirectory):
    """``CityDirectory`` with the gateway's own rooms given by the test."""

    def __init__(self, gw: Any, gatherer: Any, own: list[dict]) -> None:
        super().__init__(gw, gatherer, None)
        self.own = own

    async def own_rooms(self) -> list[dict]:
        return list(self.own)


class CityHarness(GatewayHarness):
    """``GatewayHarness`` plus enrolled schools, a fake federation and the directory."""

    def __init__(self) -> None:
        super().__init__()
        self.fed = FakeFederation()

        async def members() -> list[str]:
            doc = await self.roster.current()
            return list((doc or {}).get("servers", {}))

        self.gatherer = DirectoryGatherer(
            client=self.fed,
            clock=self.clock,
            server_name=self.gw.server_name,
            members=members,
            interval_s=300,
        )
        self.gw.gatherer = self.gatherer
        self.gw.public_rooms = self.gatherer
        self.own = [
            room(
                "!news:city",
                "City announcements",
                40,
                canonical_alias="#announcements:city.example",
            )
        ]
        self.gw.directory = OwnRoomsDirectory(self.gw, self.gatherer, self.own)
        register(self.router, self.gw, self.gw.directory)

    def add_school(
        self,
        server: str,
        school_id: str,
        name: str,
        district: str = "",
        server_class: str = "school",
    ) -> None:
        result_of(
            self.roster.add_server(
                server,
                school_id=school_id,
                name=name,
                district=district,
                server_class=server_class,
                verify_keys=[SCHOOL_KEY.verify_key],
            )
        )
