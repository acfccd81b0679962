"""``POST /user/{userId}/filter`` and ``GET /user/{userId}/filter/{filterId}`` (client-server
API "Filtering", ``filter.yaml``)."""

from __future__ import annotations

from typing import Any

V3 = "/_matrix/client/v3"


def register(router: Any, service: Any) -> None:
    async def create(req: Any, userId: str) -> tuple[int, dict]:
        service.require_self(req, userId, "create filters")
        filter_id = await service.filters.create(userId, req.json())
        return 200, {"filter_id": filter_id}

    async def get(req: Any, userId: str, filterId: str) -> tuple[int, dict]:
        service.require_self(req, userId, "read filters")
        return 200, await service.filters.get_definition(userId, filterId)

    router.add("POST", V3 + "/user/{userId}/filter", create)
    router.add("GET", V3 + "/user/{userId}/filter/{filterId}", get)
