"""The checks performed on receipt of a PDU, as steps the ingest pipeline calls in order.

Spec: server-server API "Checks performed on receipt of a PDU":

1. Is a valid event, otherwise it is dropped.
2. Passes signature checks, otherwise it is dropped.
3. Passes hash checks, otherwise it is redacted before being processed further.
4. Passes authorisation rules based on the event's auth events, otherwise it is rejected.
5. Passes authorisation rules based on the state before the event, otherwise it is
   rejected.
6. Passes authorisation rules based on the current state of the room, otherwise it is
   "soft failed".

Steps 1-3 are ``federation.events.checks.check_received_event`` (with the key ring's keys
valid at the event's ``origin_server_ts``), 4-6 the core's auth rules
(``federation.auth.rules``) against three different state maps.  Signatures required:
the sender's server's (and, for restricted joins, the authorising server's); a PDU relayed
by another origin is fine as long as those signatures hold.
"""

from __future__ import annotations

from typing import Any, Mapping

from federation.auth.errors import AuthError
from federation.auth.rules import (
    check_state_dependent_auth_rules,
    check_state_independent_auth_rules,
)
from federation.auth.selection import auth_types_for_event
from federation.errors import BadJSON
from federation.events.checks import (
    SignatureKeyUnknown,
    VerifyJob,
    has_valid_signature_from,
    prepare_received_event,
    run_verify_jobs,
)
from federation.events.model import Event
from federation.room_versions import RoomVersion
from federation.signing import SignatureError

CREATE_KEY = ("m.room.create", "")


class Dropped(Exception):
    """Steps 1-2 failed: the PDU is not stored at all."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def check_format_signatures_hashes(
    pdu: Any, room_version: RoomVersion, keyring: Any
) -> Event:
    """Steps 1-3: the event (its redacted form after a content hash mismatch)."""
    ev, jobs = await prepare_format_signatures_hashes(pdu, room_version, keyring)
    failure = run_verify_jobs(jobs)
    if failure is not None:
        raise Dropped(f"Signature check failed: {failure}")
    return ev


async def prepare_format_signatures_hashes(
    pdu: Any, room_version: RoomVersion, keyring: Any
) -> tuple[Event, list[VerifyJob]]:
    """Steps 1-3 without the ed25519 verifications (fetching unknown keys first): the
    event and the verifications it needs (``run_verify_jobs``, or a ``verifier``); a
    failing one means "Signature check failed" and the event is dropped."""
    if not isinstance(pdu, dict):
        raise Dropped("PDU is not a JSON object")
    for attempt in (1, 2):
        try:
            return prepare_received_event(pdu, room_version, keyring.event_key_lookup(pdu))
        except BadJSON as exc:  # 1.
            raise Dropped(f"Invalid event: {exc.message}") from None
        except SignatureKeyUnknown as exc:
            if attempt == 2:
                raise Dropped(f"Signature check failed: {exc}") from None
        except SignatureError as exc:  # 2.
            raise Dropped(f"Signature check failed: {exc}") from None
        # The keys are not in the key ring (or not valid long enough): fetch, retry.
        try:
            await keyring.ensure_event_keys([pdu])
        except Exception:  # noqa: BLE001 - a failed fetch shows as a signature failure
            pass
    raise AssertionError("unreachable")  # pragma: no cover


def signature_checker(keyring: Any) -> Any:
    """``is_signed_by(event, server)`` for auth rule 4.3.5.2 / 5.2.1 (restricted joins)."""

    def is_signed_by(event: Event, server: str) -> bool:
        return has_valid_signature_from(
            event.pdu, event.room_version, server, keyring.event_key_lookup(event.pdu)
        )

    return is_signed_by


_KEYS_CACHE: dict[tuple, tuple[tuple[str, str], ...]] = {}
_KEYS_CACHE_LIMIT = 4096


def state_keys_for_auth(event: Event) -> tuple[tuple[str, str], ...]:
    """The state the auth rules may consult for ``event``: its auth events selection,
    plus the create event (always) and a restricted join's authorising member.  For other
    types than membership the answer depends only on the room version, type, sender and
    state key, and is remembered (every message of a busy sender asks the same)."""
    if event.type == "m.room.member":
        return _state_keys_for_auth(event)
    key = (event.room_version.identifier, event.type, event.sender, event.state_key)
    keys = _KEYS_CACHE.get(key)
    if keys is None:
        if len(_KEYS_CACHE) >= _KEYS_CACHE_LIMIT:
            _KEYS_CACHE.clear()
        keys = _KEYS_CACHE[key] = _state_keys_for_auth(event)
    return keys


def _state_keys_for_auth(event: Event) -> tuple[tuple[str, str], ...]:
    keys = list(
        auth_types_for_event(
            event.room_version, event.type, event.sender, event.state_key, event.content
        )
    )
    if CREATE_KEY not in keys:
        keys.append(CREATE_KEY)
    via = (
        event.content.get("join_authorised_via_users_server")
        if event.type == "m.room.member"
        else None
    )
    if isinstance(via, str) and ("m.room.member", via) not in keys:
        keys.append(("m.room.member", via))
    return tuple(keys)


def auth_events_state(
    event: Event, auth_events: Mapping[str, Event], create: Event | None
) -> dict[tuple[str, str], Event]:
    """The state map the event's own ``auth_events`` describe (plus the v12 create)."""
    state: dict[tuple[str, str], Event] = {}
    for eid in event.auth_event_ids:
        ev = auth_events.get(eid)
        if ev is not None and ev.is_state:
            state[ev.key] = ev
    if create is not None:
        state.setdefault(CREATE_KEY, create)
    return state


def check_against_auth_events(
    event: Event, auth_events: Mapping[str, Event], create: Event | None, is_signed_by: Any
) -> str | None:
    """Step 4: None if allowed, else the rejection reason."""
    pool = dict(auth_events)
    if create is not None:
        pool.setdefault(create.event_id, create)
    try:
        check_state_independent_auth_rules(event, pool)
        if event.type != "m.room.create":
            check_state_dependent_auth_rules(
                event, auth_events_state(event, pool, create), is_signed_by=is_signed_by
            )
    except AuthError as exc:
        return f"auth events: {exc.message}"
    return None


def check_against_state(
    event: Event, state: Mapping[tuple[str, str], Event], is_signed_by: Any
) -> str | None:
    """Steps 5 and 6: None if the state-dependent rules allow ``event`` in ``state``."""
    try:
        check_state_dependent_auth_rules(event, state, is_signed_by=is_signed_by)
    except AuthError as exc:
        return exc.message
    return None
