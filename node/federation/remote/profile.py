"""Profiles of users on other servers for the client API (``GET /profile/{userId}``).

Spec: server-server API "Querying for information" > ``GET /_matrix/federation/v1/query/
profile`` ("Homeservers MUST only query profiles for users that belong to the target
server"; 404 when the user or field does not exist; 403 when the server will not say;
"Requesting servers MAY wish to cache the response").  Answers are cached briefly
(``TTL_MS``, bounded in size); errors other than 404/403 become 502 for the client.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from federation.errors import Forbidden, MatrixError, NotFound
from federation.transport import endpoints as E
from federation.transport.errors import FederationRequestError

log = logging.getLogger("parta.federation.profile")

TTL_MS = 60_000
CACHE_SIZE = 5_000


class RemoteProfiles:
    def __init__(
        self,
        *,
        client: Any,
        clock: Any,
        server_name: str,
        policy: Any = None,
        timeout: float = 10.0,
    ) -> None:
        self.client = client
        self.clock = clock
        self.server_name = server_name
        self.policy = policy
        self.timeout = timeout
        self._cache: OrderedDict[str, tuple[int, dict]] = OrderedDict()

    def is_remote(self, user_id: str) -> bool:
        server = user_id.partition(":")[2] if isinstance(user_id, str) else ""
        return bool(server) and server != self.server_name

    async def get_profile(self, user_id: str) -> dict:
        """The public profile of a remote user (404/403/502 as ``MatrixError``)."""
        now = self.clock.time_ms()
        hit = self._cache.get(user_id)
        if hit is not None and hit[0] > now:
            return dict(hit[1])
        server = user_id.partition(":")[2]
        if self.policy is not None and not self.policy.allow_outbound(server):
            raise NotFound("Profile not found")
        try:
            status, body = await self.client.request(
                server,
                E.QUERY_PROFILE.method,
                E.QUERY_PROFILE.path(),
                query={"user_id": user_id},
                timeout=self.timeout,
            )
        except FederationRequestError as exc:
            # One text for refused, closed, silent or TLS-failing servers; detail in the log.
            log.warning(
                "event=remote_profile_failed server=%s detail=%s: %s",
                server,
                type(exc).__name__,
                exc.message,
            )
            raise MatrixError(
                f"Could not reach {server}", errcode="M_UNKNOWN", http_status=502
            ) from None
        if status == 404:
            raise NotFound("Profile not found")
        if status == 403:
            raise Forbidden(f"{server} does not share this profile")
        if status != 200 or not isinstance(body, dict):
            raise MatrixError(
                f"{server} answered HTTP {status}", errcode="M_UNKNOWN", http_status=502
            )
        profile = {
            k: v
            for k, v in body.items()
            if k in ("displayname", "avatar_url") and isinstance(v, str)
        }
        self._cache[user_id] = (now + TTL_MS, profile)
        self._cache.move_to_end(user_id)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return dict(profile)
