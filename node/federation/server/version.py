"""``GET /_matrix/federation/v1/version`` (spec: server-server API ``version.yaml``; no
authentication): the implementation's name and version."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.transport import endpoints as E

from ..xmatrix_auth import serve

if TYPE_CHECKING:
    from node.federation.context import FederationContext

NAME = "Parta"
VERSION = "0.1.0"


def register(routes: Any, fctx: FederationContext) -> None:
    async def version(req: Any) -> tuple[int, dict]:
        return 200, {"server": {"name": NAME, "version": VERSION}}

    serve(routes, E.VERSION, version)
