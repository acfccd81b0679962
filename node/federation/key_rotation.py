"""``parta node keys rotate`` on a node enrolled with a city gateway: the new key reaches the
school's roster entry through an authenticated request to the gateway.

Roster members only accept the keys the city roster pins for a server, so an enrolled node
tells the gateway first: it makes the new key in memory, POSTs
``{gateway_url}/_parta/v1/keys/update`` (``federation.enrolment.build_key_update_request``:
signed by the current keys, which the roster pins, and by the new key), and only when the
gateway answers 200 writes the new signing key and retires the old one
(``signing_keys.save_rotation``).  A refusal or an unreachable gateway changes nothing.

Transport: the enrolment client's rules (``node.enrolment_client``): HTTPS verified against
``federation.tls_ca_file`` (default: the system trust store), plain http only to loopback.

``offline=True`` rotates locally anyway (the caller warns: roster members refuse the new key
until the roster is updated).  A node that has not enrolled rotates locally as before.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

from federation.enrolment import build_key_update_request
from federation.roster import RosterError, RosterState, verify_roster
from node.enrolment_client import (
    EnrolmentClientError,
    _post_json,
    check_gateway_url,
    load_pinned,
    load_roster,
)
from node.federation.roster_policy import persist_roster, roster_path
from node.federation.signing_keys import plan_rotation, save_rotation

KEYS_UPDATE_PATH = "/_parta/v1/keys/update"


class KeyRotationError(Exception):
    """The rotation did not happen (one line for the operator)."""


@dataclass(frozen=True)
class RotationResult:
    new_key: Any  # SigningKey
    old: list  # list[OldKey]
    enrolled: bool
    gateway_updated: bool
    roster_version: int | None  # the gateway's new roster version (when told)
    notes: tuple[str, ...] = ()  # extra warnings for the operator


def needs_gateway(config: Any, offline: bool) -> bool:
    """Whether a rotation talks to the gateway (an enrolled node, not ``offline``)."""
    if offline:
        return False
    try:
        return load_pinned(config.data_dir) is not None
    except EnrolmentClientError as exc:
        raise KeyRotationError(str(exc)) from None


def run_without_reactor(coro: Any) -> Any:
    """Run a ``rotate_keys`` coroutine that never waits (no gateway to tell)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("rotate_keys waited on I/O without a reactor")


async def rotate_keys(
    reactor: Any,
    config: Any,
    now_ms: int,
    *,
    offline: bool = False,
    ca_file: str | None = None,
    warn: Callable[[str], None] = print,
) -> RotationResult:
    """Rotate the node's signing key; on an enrolled node (unless ``offline``) only after
    the gateway accepted the new key.  ``KeyRotationError`` when nothing was changed."""
    data_dir = config.data_dir
    try:
        pinned = load_pinned(data_dir)
    except EnrolmentClientError as exc:
        raise KeyRotationError(str(exc)) from None
    current, new_keys, new_old = plan_rotation(config, now_ms)
    if pinned is None or offline:
        save_rotation(config, new_keys, new_old)
        return RotationResult(
            new_keys[0],
            new_old,
            enrolled=pinned is not None,
            gateway_updated=False,
            roster_version=None,
        )

    roster_key, signer, meta = pinned
    gateway_url = meta.get("gateway_url")
    if not isinstance(gateway_url, str) or not gateway_url:
        raise KeyRotationError(
            f"{os.path.join(data_dir, 'roster_key.json')} names no "
            f"gateway_url: enrol again, or rotate with --offline"
        )
    if ca_file is None:
        ca_file = config.federation.tls_ca_file
    try:
        base = check_gateway_url(gateway_url, warn)
        body = build_key_update_request(config.server_name, current, new_keys, now_ms)
        status, answer = await _post_json(reactor, base + KEYS_UPDATE_PATH, body, ca_file)
    except EnrolmentClientError as exc:
        raise KeyRotationError(f"key not rotated: {exc}") from None
    if status != 200:
        if isinstance(answer, dict) and isinstance(answer.get("error"), str):
            raise KeyRotationError(
                f"key not rotated: the gateway refused the key update "
                f"({status} {answer.get('errcode')}): {answer['error']}"
            )
        raise KeyRotationError(f"key not rotated: the gateway answered {status}")

    # Accepted: the gateway now pins the new key, so the node must sign with it.
    save_rotation(config, new_keys, new_old)
    notes: list[str] = []
    version = _store_new_roster(
        data_dir, roster_key, signer, config.server_name, new_keys[0], answer, now_ms, notes
    )
    return RotationResult(
        new_keys[0],
        new_old,
        enrolled=True,
        gateway_updated=True,
        roster_version=version,
        notes=tuple(notes),
    )


def _store_new_roster(
    data_dir: str,
    roster_key: Any,
    signer: str,
    server_name: str,
    new_key: Any,
    answer: Any,
    now_ms: int,
    notes: list[str],
) -> int | None:
    """Check the roster the gateway answered with (signed by the pinned roster key, pinning
    the new key) and keep it as the last good roster when it is the next version."""
    doc: Any = answer.get("roster") if isinstance(answer, dict) else None  # verify_roster checks
    try:
        roster = verify_roster(doc, roster_key, signer)
    except RosterError as exc:
        notes.append(
            f"warning: the gateway's answer holds no valid roster ({exc.message}); "
            f"the node will fetch it from the gateway"
        )
        return None
    entry = roster.servers.get(server_name)
    if (
        entry is None
        or new_key.key_id not in entry.verify_keys
        or entry.verify_keys[new_key.key_id].public_bytes != new_key.verify_key.public_bytes
    ):
        notes.append(
            f"warning: roster version {roster.version} from the gateway does not "
            f"pin the new key {new_key.key_id}"
        )
        return roster.version
    try:
        stored = load_roster(data_dir)
        state = RosterState(roster_key, signer)
        if stored is not None:
            state.restore(stored)
        state.accept(doc, now_ms)
        persist_roster(roster_path(data_dir), doc)
    except (EnrolmentClientError, RosterError):
        pass  # not the next version of what we hold: the roster refresher catches up
    return roster.version
