"""Which servers this node federates with, and with which keys (the city roster plugs in
here: ``roster_policy.RosterPolicy``).

Spec: server-server API "Server Access Control Lists" motivates refusing servers; Parta's
closed federation (docs/architecture.md "The closed federation": every inbound origin and
outbound destination must be in the signed roster, keys pinned from it).

``ServerPolicy`` is consulted:

* ``allow_inbound(origin)`` on EVERY inbound federation request (403 ``M_FORBIDDEN``) and
  for the sender's server of every received PDU (the PDU is refused);
* ``allow_outbound(destination)`` before every outbound request / transaction;
* ``pinned_keys(server_name)``: ``{key_id: VerifyKey}`` to use *instead of* fetching the
  server's keys, or None when not pinned.

``AllowAllPolicy`` (the default) allows everything and pins nothing.

Optional capabilities, declared here as Protocols a policy may also implement (the city
roster's ``RosterPolicy`` implements both): ``ExplainsRefusals`` words its own refusals
(``refusal_message``); ``ClassifiesServers`` knows each server's roster class, which room
audiences go by (``audience.py``).
"""

from __future__ import annotations

from typing import Mapping, Protocol, runtime_checkable

from federation.errors import Forbidden
from federation.keys import VerifyKey
from federation.roster import RosterState
from federation.transport.keyring import PinnedKey


class ServerPolicy(Protocol):
    def allow_inbound(self, origin: str) -> bool: ...

    def allow_outbound(self, destination: str) -> bool: ...

    def pinned_keys(self, server_name: str) -> "dict[str, VerifyKey] | None": ...


@runtime_checkable
class ExplainsRefusals(Protocol):
    """A policy that says in its own words why it refuses a server (the city roster:
    "server X is not in the city roster")."""

    def refusal_message(self, server_name: str) -> str: ...


@runtime_checkable
class ClassifiesServers(Protocol):
    """A policy that knows each server's class (``federation.roster.SERVER_CLASSES``):
    ``server_class`` is None for a server it does not know; ``bound`` is False while it
    has no roster yet (then there are no classes to go by)."""

    @property
    def bound(self) -> bool: ...

    def server_class(self, server_name: str) -> str | None: ...


@runtime_checkable
class EnforcesRoster(Protocol):
    """A policy enforcing a city roster: its ``state`` (None until it has one) names the
    server that signs the roster (``signer_name``)."""

    @property
    def state(self) -> RosterState | None: ...


def refusal_text(policy: object, server_name: str, default: str) -> str:
    """The policy's own wording for refusing ``server_name``, else ``default``."""
    if isinstance(policy, ExplainsRefusals):
        return policy.refusal_message(server_name)
    return default


class AllowAllPolicy:
    def allow_inbound(self, origin: str) -> bool:
        return True

    def allow_outbound(self, destination: str) -> bool:
        return True

    def pinned_keys(self, server_name: str) -> dict[str, VerifyKey] | None:
        return None


class PinnedKeysFromPolicy:
    """Adapter: the key ring's ``PinnedKeySource`` backed by a ``ServerPolicy``."""

    def __init__(self, policy: ServerPolicy) -> None:
        self._policy = policy

    def pinned_keys(self, server_name: str) -> Mapping[str, PinnedKey] | None:
        keys = self._policy.pinned_keys(server_name)
        if keys is None:
            return None
        return {
            key_id: (k if isinstance(k, PinnedKey) else PinnedKey(k)) for key_id, k in keys.items()
        }


class ServerNotAllowed(Forbidden):
    """403 ``M_FORBIDDEN``: the policy refuses to federate with this server."""


def require_inbound(policy: ServerPolicy, origin: str) -> None:
    if not policy.allow_inbound(origin):
        raise ServerNotAllowed(
            refusal_text(
                policy, origin, f"Federation with {origin} is not allowed by this server's policy"
            )
        )
