"""The outbound federation client behind the server policy: every request to a
destination the policy refuses fails before any connection is made (``policy.py``:
"every outbound send checks allow_outbound")."""

from __future__ import annotations

from typing import Any, Mapping

from federation.transport.errors import FederationRequestError


class DestinationNotAllowed(FederationRequestError):
    pass


class PolicyClient:
    """Wraps a ``FederationHttpClient`` (same methods) with ``policy.allow_outbound``."""

    def __init__(self, client: Any, policy: Any) -> None:
        self.inner = client
        self.policy = policy

    def __getattr__(self, name: str) -> Any:  # server_name, resolver, tls, pool...
        return getattr(self.inner, name)

    def _check(self, destination: str) -> None:
        if not self.policy.allow_outbound(destination):
            raise DestinationNotAllowed(
                destination, "federation with this server is not allowed by this server's policy"
            )

    async def request(
        self,
        destination: str,
        method: str,
        path: str,
        json_body: Any = None,
        query: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        self._check(destination)
        return await self.inner.request(destination, method, path, json_body, query, timeout)

    async def request_ok(
        self,
        destination: str,
        method: str,
        path: str,
        json_body: Any = None,
        query: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        self._check(destination)
        return await self.inner.request_ok(destination, method, path, json_body, query, timeout)

    async def get_raw(
        self,
        destination: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        max_bytes: int | None = None,
    ) -> Any:
        self._check(destination)
        return await self.inner.get_raw(destination, path, query, timeout, max_bytes)

    async def close(self) -> None:
        await self.inner.close()
