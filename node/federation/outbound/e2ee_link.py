"""The federation side of ``node.e2ee.hooks.RemoteKeys``: other servers' keys and the
E2EE EDUs we send (server-server API "End-to-End Encryption", "Send-to-device
messaging", "Device Management").

- ``query_keys`` / ``claim_keys``: ``POST /user/keys/query`` / ``/user/keys/claim`` on the
  user's server through the policy-checked client, bounded by the client's timeout; any
  failure (refused by the roster policy, unreachable, an error status) raises, and the
  e2ee area lists the server in ``failures``.
- ``send_edu``: ``m.direct_to_device``, ``m.device_list_update``, ``m.signing_key_update``
  through the outbound transaction queue, like typing and receipts; never coalesced
  (each device-list update and to-device message matters).
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from twisted.internet import defer

from federation.transport import endpoints as E

log = logging.getLogger("parta.federation.outbound")


class RemoteKeysLink:
    def __init__(self, *, client: Any, sender: Any, policy: Any = None) -> None:
        self.client = client
        self.sender = sender
        self.policy = policy

    def _check(self, destination: str) -> None:
        if self.policy is not None and not self.policy.allow_outbound(destination):
            raise PermissionError(f"{destination} is not allowed by the server policy")

    async def query_keys(
        self, destination: str, device_keys: dict[str, list[str]], timeout_s: float
    ) -> dict:
        self._check(destination)
        return await self.client.request_ok(
            destination,
            E.USER_KEYS_QUERY.method,
            E.USER_KEYS_QUERY.path(),
            {"device_keys": device_keys},
            timeout=max(timeout_s, 1.0),
        )

    async def claim_keys(
        self, destination: str, one_time_keys: dict[str, dict[str, str]], timeout_s: float
    ) -> dict:
        self._check(destination)
        return await self.client.request_ok(
            destination,
            E.USER_KEYS_CLAIM.method,
            E.USER_KEYS_CLAIM.path(),
            {"one_time_keys": one_time_keys},
            timeout=max(timeout_s, 1.0),
        )

    def send_edu(self, destinations: Iterable[str], edu_type: str, content: dict) -> None:
        if self.sender is None:
            return
        d = defer.ensureDeferred(self.sender.send_edu(list(destinations), edu_type, content))
        d.addErrback(
            lambda f: log.error("event=e2ee_edu_queue_failed type=%s error=%s", edu_type, f.value)
        )


def attach(fctx: Any, sender: Any) -> None:
    """Hand the e2ee area (if wired) its remote look-ups and EDU sending."""
    if fctx.e2ee is not None:
        fctx.e2ee.attach_federation(
            RemoteKeysLink(client=fctx.client, sender=sender, policy=fctx.policy)
        )
