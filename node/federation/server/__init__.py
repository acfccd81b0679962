"""The federation listener's endpoints, one module per spec endpoint (server-server API):

``keys`` (key/v2 server + query), ``version``, ``send`` (transactions), ``event``,
``state``, ``state_ids``, ``backfill``, ``missing_events`` (get_missing_events),
``event_auth``, ``query`` (profile, directory), ``public_rooms``, ``hierarchy`` (spaces),
``media`` (federation media download), ``stats`` (Parta: counts for the city gateway).
``register_all(routes, fctx)`` adds them to a ``FederationRoutes``.
``user_devices``, ``user_keys``: user/devices, user/keys/query and user/keys/claim.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node.federation.context import FederationContext

MODULES = (
    "keys",
    "version",
    "send",
    "event",
    "state",
    "state_ids",
    "backfill",
    "missing_events",
    "event_auth",
    "query",
    "public_rooms",
    "media",
    "stats",
    "hierarchy",  # hierarchy: server-server API "Spaces"
    # Device Management / End-to-End Encryption: a user's devices and keys.
    "user_devices",
    "user_keys",
    "openid",  # OpenID: who an OpenID token belongs to (third parties, unsigned)
    "timestamp",  # timestamp_to_event: the event nearest to a point in time
)


def register_all(routes: Any, fctx: FederationContext) -> None:
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}").register(routes, fctx)
