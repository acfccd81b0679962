"""``GET /voip/turnServer`` (client-server API "Voice over IP", ``voip.yaml``):
https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3voipturnserver

Credentials for the school's TURN server in the "TURN REST API" scheme that coturn checks
with ``use-auth-secret``: the username is ``<expiry unix seconds>:<user ID>`` and the
password the standard Base64 of HMAC-SHA1(shared secret, username), so the TURN server
needs no user database and a credential stops working by itself after
``voip.turn_user_lifetime_s``.

Without ``voip.turn_uris`` or ``voip.turn_shared_secret`` the node offers no TURN server
and answers 200 ``{}``, as widely deployed servers do: clients (matrix-js-sdk, Element)
then call peer to peer over STUN only, while an error would be retried and logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from ._common import CLIENT_V3


def turn_credentials(secret: str, user_id: str, now_ms: int, lifetime_s: int) -> dict:
    """The username/password pair for ``user_id``, valid for ``lifetime_s`` from now."""
    username = f"{now_ms // 1000 + lifetime_s}:{user_id}"
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return {"username": username, "password": base64.b64encode(digest).decode("ascii")}


def register(router: Any, accounts: Any) -> None:
    voip = accounts.config.voip

    async def get_turn_server(req: Any) -> tuple[int, dict]:
        if not voip.turn_uris or not voip.turn_shared_secret:
            return 200, {}
        lifetime = voip.turn_user_lifetime_s
        body = turn_credentials(
            voip.turn_shared_secret, req.user_id, accounts.clock.time_ms(), lifetime
        )
        body["uris"] = list(voip.turn_uris)
        body["ttl"] = lifetime
        return 200, body

    router.add("GET", CLIENT_V3 + "/voip/turnServer", get_turn_server, rate_limited=True)
