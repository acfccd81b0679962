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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from federation.keys import SigningKey
    from federation.transport.key_server import KeyServer, NotaryService
    from federation.transport.keyring import KeyRing
    from node.accounts.service import AccountsService
    from node.config import FederationConfig
    from node.context import NodeContext
    from node.e2ee.service import E2eeService
    from node.http.router import Router
    from node.media.service import MediaService
    from node.rooms.service import RoomService
    from node.rooms.state_store import StateStore
    from node.sync.notifier import SyncNotifier
    from node.sync.service import SyncService

    from .ingest import Ingest
    from .policy import ServerPolicy
    from .policy_client import PolicyClient
    from .xmatrix_auth import FederationRoutes


@dataclass
class FederationContext:
    ctx: NodeContext
    config: FederationConfig
    keyring: KeyRing
    key_server: KeyServer
    notary: NotaryService
    client: PolicyClient  # the outbound FederationHttpClient behind the server policy
    router: Router  # of the federation listener
    routes: FederationRoutes
    policy: ServerPolicy
    state_store: StateStore  # shared with node/rooms
    rooms: RoomService
    # The other services, set by ``wiring.wire`` right after the context is built.
    accounts: AccountsService | None = None
    sync: SyncService | None = None
    media: MediaService | None = None
    notifier: SyncNotifier | None = None
    ingest: Ingest | None = None
    e2ee: E2eeService | None = None  # our users' keys (node/e2ee)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def server_name(self) -> str:
        return self.ctx.server_name

    @property
    def signing_key(self) -> SigningKey:
        return self.key_server.signing_key
