"""Checks on receipt of a PDU, steps 1-3: format, signatures, content hash.

Spec: server-server API "Checks performed on receipt of a PDU" (1. valid event format,
otherwise dropped; 2. passes signature checks, otherwise dropped; 3. passes hash checks,
otherwise *redacted* before being processed further) and "Validating hashes and signatures
on received events"; appendix "Checking for a Signature"; rooms v5 fragment "Signing key
validity period"; rooms v10-v12 "Authorisation rules" rule 4.2.1 / 5.2.1
(``join_authorised_via_users_server``).  Steps 4-6 (authorisation) live in
``federation/auth``.

Which servers must have signed (room versions 3 and later):

* the sender's server ("the originating server"), except for a third-party invite
  (``m.room.member`` invite with ``content.third_party_invite``), which "the server which
  actually sends the event may be a different server" sends; there the sender's
  signatures are checked when present but not required;
* for a join with ``content.join_authorised_via_users_server``, that user's server.  The
  spec words this as auth rule 4.2.1 (v10/v11; 5.2.1 in v12: reject).  Checking it here as
  well drops such an event earlier; ``has_valid_signature_from`` serves the auth rule.

Only signatures made with keys the key ring knows are verified; unknown keys are skipped.
If *no* signature from a required server can be verified, the check fails
(``SignatureKeyUnknown`` when the server did sign, but with keys we do not know: fetch its
keys and retry).  The key lookup is responsible for key validity: return None for a key
whose ``valid_until_ts`` (capped at 7 days ahead) is before the event's
``origin_server_ts``, e.g. with a per-event closure over ``pdu["origin_server_ts"]``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Callable, NamedTuple

from ..b64 import encode_base64
from ..errors import BadJSON
from ..keys import VerifyKey
from ..room_versions import RoomVersion
from ..signing import (
    SignatureError,
    SignatureInvalid,
    SignatureMalformed,
    SignatureMissing,
    verify_raw,
)
from .format import check_pdu_format_and_encode
from .hashes import (
    _content_hash_view,
    _loads,
    _signing_view,
    claimed_content_hash,
    decode_unpadded_base64,
    encode_validated,
    redacted_signing_bytes,
)
from .model import Event
from .redaction import redacted_view

GetVerifyKey = Callable[[str, str], "VerifyKey | None"]
_sha256 = hashlib.sha256


class SignatureKeyUnknown(SignatureMissing):
    """A required server signed, but none of its keys used is known (fetch them, retry)."""


class VerifyJob(NamedTuple):
    """One ed25519 verification step 2 needs: ``signature`` by ``public`` over ``message``
    (the redacted signing bytes), made by ``server`` with ``key_id`` (``why`` it is
    required, for the error)."""

    public: bytes
    signature: bytes
    message: bytes
    server: str
    key_id: str
    why: str


def _invalid(server: str, key_id: str, why: str) -> SignatureInvalid:
    return SignatureInvalid(
        f"Signature {server}/{key_id} ({why}) does not match the event: "
        "its content was altered or it was signed with another key"
    )


def _domain(user_id: Any) -> str | None:
    if isinstance(user_id, str) and ":" in user_id:
        return user_id.split(":", 1)[1]
    return None


def _is_third_party_invite(pdu: Mapping[str, Any]) -> bool:
    content = pdu.get("content")
    return (
        pdu.get("type") == "m.room.member"
        and isinstance(content, Mapping)
        and content.get("membership") == "invite"
        and "third_party_invite" in content
    )


def required_signers(pdu: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(server_name, why)`` for each server whose signature is required on ``pdu``."""
    servers: list[tuple[str, str]] = []
    sender_server = _domain(pdu.get("sender"))
    if pdu.get("type") != "m.room.member":
        if sender_server is not None:
            servers.append((sender_server, "the sender's server"))
        return servers
    if sender_server is not None and not _is_third_party_invite(pdu):
        servers.append((sender_server, "the sender's server"))
    content = pdu.get("content")
    if (
        isinstance(content, Mapping)
        and content.get("membership") == "join"
        and "join_authorised_via_users_server" in content
    ):
        # A value that is not a user ID names no server; auth rule 4.3.5.2 rejects it.
        via = _domain(content["join_authorised_via_users_server"])
        if via is not None and via != sender_server:
            servers.append((via, "the server of join_authorised_via_users_server"))
    return servers


def _verify_server(
    pdu: Mapping[str, Any],
    server: str,
    why: str,
    message: bytes,
    get_verify_key: GetVerifyKey,
    required: bool,
    jobs: list[VerifyJob] | None = None,
) -> None:
    """Verify every known-key signature of ``server`` on ``message``; see module docs.
    With ``jobs``, the ed25519 verifications themselves are appended there instead of run
    (everything else - presence, key lookup, Base64, length - is checked here)."""
    sigs = pdu.get("signatures")
    if type(sigs) is not dict and not isinstance(sigs, Mapping):
        raise SignatureMalformed("The event's 'signatures' is not an object")
    by_key = sigs.get(server)
    if by_key is None:
        if required:
            raise SignatureMissing(f"The event is not signed by {server} ({why})")
        return
    if type(by_key) is not dict and not isinstance(by_key, Mapping):
        raise SignatureMalformed(f"signatures.{server} is not an object")
    verified = 0
    unknown: list[str] = []
    for key_id, b64 in by_key.items():
        # Checking for a Signature, 2: drop key IDs whose algorithm we do not understand.
        if not isinstance(key_id, str) or not key_id.startswith("ed25519:"):
            continue
        # 3: look up the verification key; unknown (or expired) keys are skipped.
        key = get_verify_key(server, key_id)
        if key is None:
            unknown.append(key_id)
            continue
        # 4: decode the signature.
        raw = decode_unpadded_base64(b64)
        if raw is None:
            raise SignatureMalformed(f"Signature {server}/{key_id} is not valid unpadded Base64")
        if len(raw) != 64:
            raise SignatureMalformed(
                f"Signature {server}/{key_id} is {len(raw)} bytes, expected 64"
            )
        # 5-7: verify over the canonical JSON of the redacted event.
        if jobs is not None:
            jobs.append(VerifyJob(key.public_bytes, raw, message, server, key_id, why))
        elif not verify_raw(key.public_bytes, raw, message):
            raise _invalid(server, key_id, why)
        verified += 1
    if verified == 0 and required:
        if unknown:
            raise SignatureKeyUnknown(
                f"The event is signed by {server} ({why}) only with unknown keys: "
                + ", ".join(sorted(unknown))
            )
        raise SignatureMissing(f"The event has no ed25519 signature from {server} ({why})")


def _verify(
    pdu: Mapping[str, Any],
    message: bytes,
    get_verify_key: GetVerifyKey,
    jobs: list[VerifyJob] | None = None,
) -> None:
    required = required_signers(pdu)
    for server, why in required:
        _verify_server(pdu, server, why, message, get_verify_key, required=True, jobs=jobs)
    if pdu.get("type") == "m.room.member" and _is_third_party_invite(pdu):
        sender_server = _domain(pdu.get("sender"))
        if sender_server is not None and all(s != sender_server for s, _ in required):
            _verify_server(
                pdu,
                sender_server,
                "the sender's server",
                message,
                get_verify_key,
                required=False,
                jobs=jobs,
            )


def verify_event_signatures(
    pdu: Mapping[str, Any], room_version: RoomVersion, get_verify_key: GetVerifyKey
) -> None:
    """Raise a ``SignatureError`` unless the required servers validly signed ``pdu``.

    The signatures cover the redacted event, so this succeeds on a full event and on a
    redacted copy alike.
    """
    _verify(pdu, redacted_signing_bytes(pdu, room_version), get_verify_key)


def has_valid_signature_from(
    pdu: Mapping[str, Any], room_version: RoomVersion, server: str, get_verify_key: GetVerifyKey
) -> bool:
    """True if ``server`` signed ``pdu`` with a known key and every such signature verifies.

    For auth rule "If the event is not validly signed by the homeserver of the user ID
    denoted by [join_authorised_via_users_server], reject."
    """
    try:
        _verify_server(
            pdu,
            server,
            "requested",
            redacted_signing_bytes(pdu, room_version),
            get_verify_key,
            required=True,
        )
    except (SignatureError, BadJSON):  # BadJSON: no canonical form to check against
        return False
    return True


def check_received_event(
    pdu: Mapping[str, Any], room_version: RoomVersion, get_verify_key: GetVerifyKey
) -> Event:
    """Steps 1-3 of the checks on receipt of a PDU; return the event to process further.

    1. format (``BadJSON``), 2. signatures (``SignatureError``), 3. content hash: on a
    mismatch the returned event holds the *redacted* PDU and
    ``event.content_hash_mismatch`` is True.  The returned event's PDU is an
    independent copy: ``pdu`` is never mutated nor aliased.
    """
    event, jobs = prepare_received_event(pdu, room_version, get_verify_key)
    failure = run_verify_jobs(jobs)
    if failure is not None:
        raise failure
    return event


def run_verify_jobs(jobs: Sequence[VerifyJob]) -> SignatureInvalid | None:
    """Run the ed25519 verifications ``prepare_received_event`` collected: None when all
    hold, else the error for the first that does not.  Pure CPU work that releases the GIL
    (libsodium through cffi), so callers may run batches of it on worker threads."""
    for job in jobs:
        if not verify_raw(job.public, job.signature, job.message):
            return _invalid(job.server, job.key_id, job.why)
    return None


def prepare_received_event(
    pdu: Mapping[str, Any], room_version: RoomVersion, get_verify_key: GetVerifyKey
) -> tuple[Event, list[VerifyJob]]:
    """``check_received_event`` without the ed25519 verifications themselves: the event
    (checked for format and content hash) and the verifications that must all hold for
    step 2 to pass (``run_verify_jobs``).  Every other signature failure (missing, malformed,
    only unknown keys) is raised here as in ``check_received_event``; the event must not be
    used before its jobs succeeded."""
    # 1. Valid event: structure, identifier grammar, strict canonical JSON, 64 KiB.
    encoded = check_pdu_format_and_encode(pdu, room_version)
    copy = _loads(encoded)  # deep copy for free from the bytes we already have

    # 2. Signatures over the redacted event; the same bytes give the event ID.
    signed = encode_validated(_signing_view(copy, room_version))
    jobs: list[VerifyJob] = []
    _verify(copy, signed, get_verify_key, jobs)
    event_id = "$" + encode_base64(_sha256(signed).digest(), urlsafe=True)

    # 3. Content hash; on mismatch "use the redacted copy it calculated".
    actual = _sha256(encode_validated(_content_hash_view(copy))).digest()
    if claimed_content_hash(copy) != actual:
        event = Event(redacted_view(copy, room_version), room_version, event_id=event_id)
        event.content_hash_mismatch = True
        return event, jobs
    return Event(copy, room_version, event_id=event_id), jobs
