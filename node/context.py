"""Infrastructure every area's wiring receives (config, reactor, clock, DB, router, keys).

This is the composition root's hand-off, not a service locator: areas take what they need here
and receive the *services* of other areas as explicit arguments of their ``wire`` function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from federation.keys import SigningKey

from .clock import ReactorClock
from .config import Config
from .http.router import Router
from .storage.database import Database


@dataclass(frozen=True)
class NodeContext:
    config: Config
    reactor: Any
    clock: ReactorClock
    db: Database
    router: Router  # the client-server API listener's routes
    signing_key: SigningKey

    @property
    def server_name(self) -> str:
        return self.config.server_name
