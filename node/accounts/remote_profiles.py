"""The accounts area's extension point for other servers' profiles: ``RemoteProfileSource``.

``GET /profile/{userId}`` of a user on another server is answered by asking that server
(server-server API "Querying for information", ``GET /_matrix/federation/v1/query/profile``).
That lives in ``node.federation``, above ``node.accounts`` in the layer order, so accounts
declares here the calls it makes; the federation's membership wiring hands its
implementation over once with ``AccountsService.attach_remote_profiles``.  Until then (a
node that does not federate, unit tests) ``AccountsService.remote_profiles`` is ``None`` and
only local users have profiles.
"""

from __future__ import annotations

from typing import Protocol


class RemoteProfileSource(Protocol):
    def is_remote(self, user_id: str) -> bool:
        """Whether ``user_id`` belongs to another server (so it is asked, not us)."""
        ...

    async def get_profile(self, user_id: str) -> dict:
        """The user's public profile from their server (404/403/502 as ``MatrixError``)."""
        ...
