"""``FederationContext``: what the federation parts share (built by ``wiring.wire``).

The node's ``NodeContext`` (``ctx``) plus the key ring and our key server, the outbound
client (``client``: a ``FederationHttpClient`` behind the server policy), the federation
listener's ``router`` (``routes`` registers X-Matrix-authenticated handlers on it), the
``policy``, the ``state_store`` (shared with node/rooms) and the inbound ``ingest``
pipeline, plus the node's services.  The outbound sender and the membership handshakes
receive it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FederationContext:
    ctx: Any  # NodeContext
    config: Any  # FederationConfig
    keyring: Any  # federation.transport.keyring.KeyRing
    key_server: Any  # federation.transport.key_server.KeyServer
    notary: Any  # federation.transport.key_server.NotaryService
    client: Any  # PolicyClient(FederationHttpClient)
    router: Any  # node.http.router.Router of the federation listener
    routes: Any  # node.federation.xmatrix_auth.FederationRoutes
    policy: Any  # node.federation.policy.ServerPolicy
    state_store: Any  # node.rooms.state_store.StateStore
    rooms: Any = None
    accounts: Any = None
    sync: Any = None
    media: Any = None
    notifier: Any = None
    ingest: Any = None  # node.federation.ingest.Ingest
    extras: dict = field(default_factory=dict)

    @property
    def server_name(self) -> str:
        return self.ctx.server_name

    @property
    def signing_key(self) -> Any:
        return self.key_server.signing_key
