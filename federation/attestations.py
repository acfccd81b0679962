"""Role attestations: a school's signed statement that one of its users holds a staff role.

Parta's own format (docs/people.md "City-wide verified roles"), signed like any Matrix
object (spec appendix "Signing JSON") with the school's *server* signing key::

    {"type": "org.parta.role_attestation",
     "user_id": "@k7f2q:school42.example",
     "role": "director",                 # director | deputy | teacher (staff only)
     "server_name": "school42.example",  # the user's server, the only allowed signer
     "school": "42",                     # the roster's school_id of that server
     "displayname": "Anna Ivanova",      # optional
     "issued_ts": 1700000000000, "expiry_ts": 1700604800000,
     "signatures": {"school42.example": {"ed25519:a_1": "<b64>"}}}

Why a server key and the roster: every node already holds the city roster, which pins each
member's server keys (``federation.roster``), so a teacher's node can check "the director
of Lyceum No. 42" without asking anyone: the attestation must be signed by the user's own
server with a key the roster pins for it (a former key only for attestations issued before
it expired), and name the school ID the roster gives that server.  Pupils and parents are
never attested.

``verify_attestation`` refuses, each with its ``reason`` (for logs and the "verified":
false answer): ``malformed`` (shape), ``role`` (not a staff role), ``unknown_school`` (the
server is not in the roster or the school ID does not match), ``foreign`` (no signature by
the user's own server: signed by another school), ``signature`` (tampered or signed by a
key the roster does not pin), ``expired`` (past ``expiry_ts``, or issued in the future).

Pure: no I/O; time is passed in as ``now_ms``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from .canonical_json import CanonicalJSONError, encode_canonical_json
from .errors import MatrixError
from .identifiers import is_valid_user_id
from .keys import SigningKey
from .roster import RosterEntry
from .signing import SignatureError, sign_json, signed_bytes, verify_json

ATTESTATION_TYPE = "org.parta.role_attestation"
STAFF_ROLES = ("director", "deputy", "teacher")
MAX_LIFETIME_MS = 31 * 24 * 3600 * 1000  # no statement outlives a month
MAX_DISPLAYNAME = 255  # characters
MAX_BYTES = 4096  # canonical JSON of a whole attestation, signatures included


class AttestationError(MatrixError):
    """An attestation that is refused; ``reason`` names the case (see module docstring)."""

    errcode = "M_FORBIDDEN"
    http_status = 403

    def __init__(self, message: str, *, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


class RosterLookup(Protocol):
    """What verification needs of the city roster (``federation.roster.RosterState``)."""

    def entry(self, server_name: str) -> RosterEntry | None: ...


@dataclass(frozen=True)
class Attestation:
    """A verified attestation; ``doc`` is the signed document as checked."""

    user_id: str
    role: str
    server_name: str
    school: str
    school_name: str
    displayname: str | None
    issued_ts: int
    expiry_ts: int
    doc: Mapping[str, Any]


def sign_attestation(
    *,
    user_id: str,
    role: str,
    server_name: str,
    school: str,
    key: SigningKey,
    issued_ts: int,
    lifetime_ms: int,
    displayname: str | None = None,
) -> dict[str, Any]:
    """A new attestation for a staff member of ``server_name``, signed with ``key``."""
    if role not in STAFF_ROLES:
        raise AttestationError(f"Role {role!r} is not attested (staff only)", reason="role")
    if user_id.partition(":")[2] != server_name:
        raise AttestationError("A school attests only its own users", reason="foreign")
    if not 0 < lifetime_ms <= MAX_LIFETIME_MS:
        raise AttestationError("Attestation lifetime out of range")
    doc: dict[str, Any] = {
        "type": ATTESTATION_TYPE,
        "user_id": user_id,
        "role": role,
        "server_name": server_name,
        "school": school,
        "issued_ts": issued_ts,
        "expiry_ts": issued_ts + lifetime_ms,
    }
    if displayname:
        doc["displayname"] = displayname[:MAX_DISPLAYNAME]
    return sign_json(doc, server_name, key)


def _int(doc: Mapping[str, Any], key: str) -> int:
    v = doc.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise AttestationError(f"Attestation {key} must be an integer >= 0")
    return v


def _text(doc: Mapping[str, Any], key: str) -> str:
    v = doc.get(key)
    if not isinstance(v, str) or not v or len(v) > MAX_DISPLAYNAME:
        raise AttestationError(f"Attestation {key} must be a non-empty string")
    return v


def verify_attestation(doc: object, roster: RosterLookup, now_ms: int) -> Attestation:
    """The verified attestation, or an ``AttestationError`` saying why it is refused."""
    if not isinstance(doc, Mapping):
        raise AttestationError("Attestation must be a JSON object")
    try:
        canonical = encode_canonical_json(doc)
    except CanonicalJSONError:
        raise AttestationError("Attestation is not canonical JSON") from None
    if len(canonical) > MAX_BYTES:
        raise AttestationError("Attestation is too large")
    copy: dict[str, Any] = json.loads(canonical)  # private copy: the caller's may change
    if copy.get("type") != ATTESTATION_TYPE:
        raise AttestationError("Not a role attestation")
    user_id = _text(copy, "user_id")
    server = _text(copy, "server_name")
    school = _text(copy, "school")
    role = _text(copy, "role")
    issued, expiry = _int(copy, "issued_ts"), _int(copy, "expiry_ts")
    name = copy.get("displayname")
    if name is not None and (not isinstance(name, str) or len(name) > MAX_DISPLAYNAME):
        raise AttestationError("Attestation displayname must be a short string")
    if not is_valid_user_id(user_id) or user_id.partition(":")[2] != server:
        raise AttestationError("Attestation user is not on the attesting server", reason="foreign")
    if role not in STAFF_ROLES:
        raise AttestationError(f"Role {role!r} is never attested", reason="role")
    entry = roster.entry(server)
    if entry is None:
        raise AttestationError(f"{server} is not in the city roster", reason="unknown_school")
    if entry.school_id != school:
        raise AttestationError(
            f"{server} is school {entry.school_id!r} in the roster, not {school!r}",
            reason="unknown_school",
        )
    sigs = copy.get("signatures")
    if not isinstance(sigs, dict) or not isinstance(sigs.get(server), dict) or not sigs[server]:
        raise AttestationError(f"Attestation is not signed by {server}", reason="foreign")
    message = signed_bytes(copy)
    if not _signed_by_pinned_key(copy, server, entry, issued, message):
        raise AttestationError(
            f"Attestation does not verify with the keys the roster pins for {server}",
            reason="signature",
        )
    if expiry <= issued or expiry - issued > MAX_LIFETIME_MS:
        raise AttestationError("Attestation validity period out of range")
    if now_ms >= expiry:
        raise AttestationError("Attestation has expired", reason="expired")
    if issued > now_ms + 5 * 60 * 1000:  # a clock a few minutes ahead is tolerated
        raise AttestationError("Attestation is issued in the future", reason="expired")
    return Attestation(
        user_id=user_id,
        role=role,
        server_name=server,
        school=school,
        school_name=entry.name,
        displayname=name,
        issued_ts=issued,
        expiry_ts=expiry,
        doc=copy,
    )


def _signed_by_pinned_key(
    doc: Mapping[str, Any], server: str, entry: RosterEntry, issued_ts: int, message: bytes
) -> bool:
    """A signature by a current pinned key, or by a former one that expired after issuing."""
    for key_id in doc["signatures"][server]:
        key = entry.verify_keys.get(key_id)
        if key is None:
            old = entry.old_verify_keys.get(key_id)
            if old is None or old[1] <= issued_ts:
                continue
            key = old[0]
        try:
            verify_json(doc, server, key, message=message)
        except SignatureError:
            continue
        return True
    return False
