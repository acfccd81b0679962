"""Cross-signing (client-server API "Cross-signing":
https://spec.matrix.org/v1.16/client-server-api/#cross-signing): ``POST
/keys/device_signing/upload`` and ``POST /keys/signatures/upload``.

Rules:

1. Keys: each a ``CrossSigningKey`` of the requesting user with its usage
   (``checks.cross_signing_key``).  The self-signing and user-signing keys must be signed
   by the master key (the one uploaded with them, else the stored one); without any master
   key 400 ``M_MISSING_PARAM``.
2. User-interactive authentication is needed unless the user has no master key yet, or
   every key in the request equals the stored one (``needs_auth``; the API handler runs
   the UIA flow).
3. Signatures: the signed object must equal the stored key apart from ``signatures``;
   our own devices are signed by our self-signing key, our master key by one of our
   devices, another user's master key by our user-signing key (a user of another server:
   their master key as their server answers ``/keys/query``).  Each signature that does
   not verify is a failure ``M_INVALID_SIGNATURE``; an unknown key ``M_NOT_FOUND``; a
   signature of something we may not sign ``M_FORBIDDEN`` -- the rest are stored.
4. Changes are device-list changes (the owner's co-members refresh their key lists); our
   users' new master / self-signing keys go out as ``m.signing_key_update``.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from federation.errors import BadJSON, InvalidParam, MatrixError

from . import checks, key_store
from .device_lists import DeviceLists

MAX_SIGNED_OBJECTS = 100
MAX_REMOTE_USERS = 10
FIELDS = (
    ("master_key", "master"),
    ("self_signing_key", "self_signing"),
    ("user_signing_key", "user_signing"),
)


def _server(user_id: str) -> str:
    return user_id.split(":", 1)[1] if ":" in user_id else ""


def _without_signatures(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}


def _failure(errcode: str, error: str) -> dict:
    return {"errcode": errcode, "error": error}


class CrossSigning:
    def __init__(self, *, db: Any, device_lists: DeviceLists) -> None:
        self.db = db
        self.device_lists = device_lists
        # Another server's user's master key (set by the service: a keys query).
        self.remote_master: Callable[[str, str], Awaitable[dict | None]] | None = None

    async def stored(self, user_id: str) -> dict[str, dict]:
        return (await self.db.run(key_store.cross_signing_keys, [user_id])).get(user_id, {})

    async def needs_auth(self, user_id: str, body: dict) -> bool:
        """Rule 2."""
        stored = await self.stored(user_id)
        if "master" not in stored:
            return False
        for field, key_type in FIELDS:
            if field in body and body[field] != stored.get(key_type):
                return True
        return False

    async def upload(self, user_id: str, body: dict) -> dict:
        """Rule 1: check and store the keys (after rule 2's authentication)."""
        given: dict[str, tuple[dict, Any]] = {}
        for field, key_type in FIELDS:
            if body.get(field) is not None:
                given[key_type] = checks.cross_signing_key(body[field], user_id, key_type)
        if not given:
            return {}
        stored = await self.stored(user_id)
        if "master" in given:
            master_obj, master_key = given["master"]
        elif "master" in stored:
            master_obj, master_key = checks.cross_signing_key(stored["master"], user_id, "master")
        else:
            raise MatrixError("Must provide a master key", errcode="M_MISSING_PARAM")
        for key_type in ("self_signing", "user_signing"):
            if key_type in given and not checks.signature_valid(
                given[key_type][0], user_id, master_key
            ):
                raise checks.InvalidSignature(f"The {key_type} key is not signed by the master key")
        changed = {t: obj for t, (obj, _k) in given.items() if obj != stored.get(t)}
        if not changed:
            return {}

        def txn(conn: Any) -> None:
            pubs = [(user_id, checks.public_key_id(obj)) for obj in changed.values()]
            if key_store.existing_devices(conn, pubs):
                # "Servers MUST not allow devices to have the same IDs as cross-signing keys"
                raise InvalidParam("A cross-signing key has the ID of one of your devices")
            for key_type, obj in changed.items():
                key_store.set_cross_signing_key(conn, user_id, key_type, checks.encode(obj))

        await self.db.run(txn)
        edu: dict[str, Any] = {"user_id": user_id}
        if "master" in changed:
            edu["master_key"] = master_obj
        if "self_signing" in changed:
            edu["self_signing_key"] = changed["self_signing"]
        await self.device_lists.keys_changed(
            user_id, ("m.signing_key_update", edu) if len(edu) > 1 else None
        )
        return {}

    async def upload_signatures(self, user_id: str, body: dict) -> dict:
        """Rule 3: ``{"failures": {user: {key_id: error}}}``."""
        if sum(len(v) for v in body.values() if isinstance(v, dict)) > MAX_SIGNED_OBJECTS:
            raise checks.TooLarge(f"At most {MAX_SIGNED_OBJECTS} signed objects at once")
        failures: dict[str, dict[str, dict]] = {}
        mine = await self.stored(user_id)
        targets = [u for u, v in body.items() if isinstance(v, dict)]
        others = await self.db.run(key_store.cross_signing_keys, targets)
        if self.remote_master is not None:
            for target in targets[:MAX_REMOTE_USERS]:
                if target not in others and _server(target) not in ("", _server(user_id)):
                    master = await self.remote_master(user_id, target)
                    if master is not None:
                        others[target] = {"master": master}
        stored_rows: list[tuple[str, str, str, str]] = []  # target user, key id, signer, sig
        changed_users: set[str] = set()
        for target_user, objects in body.items():
            if not isinstance(objects, dict):
                raise BadJSON("Each user must map key IDs to signed objects")
            for key_id, obj in objects.items():
                try:
                    rows = await self._check_one(
                        user_id, mine, others.get(target_user, {}), target_user, key_id, obj
                    )
                except MatrixError as exc:
                    failures.setdefault(target_user, {})[key_id] = _failure(
                        exc.errcode, exc.message
                    )
                    continue
                stored_rows.extend(rows)
                if rows:
                    changed_users.add(target_user)

        def txn(conn: Any) -> None:
            for target_user, target_key, signer_key, sig in stored_rows:
                key_store.add_signature(conn, user_id, target_user, target_key, signer_key, sig)

        if stored_rows:
            await self.db.run(txn)
        for target_user in sorted(changed_users):
            await self.device_lists.keys_changed(target_user)
        return {"failures": failures}

    async def _check_one(
        self,
        user_id: str,
        mine: dict[str, dict],
        theirs: dict[str, dict],
        target_user: str,
        key_id: str,
        obj: Any,
    ) -> list[tuple[str, str, str, str]]:
        if not isinstance(obj, dict) or not isinstance(obj.get("signatures"), dict):
            raise BadJSON("A signed object with 'signatures' is required")
        sigs = obj["signatures"].get(user_id)
        if not isinstance(sigs, dict) or not sigs:
            raise checks.InvalidSignature("No signature by the uploading user")
        if target_user == user_id:
            master = mine.get("master")
            if master is not None and key_id == checks.public_key_id(master):
                stored_obj = master
                # Our master key, signed by one of our devices.
                signers = await self._device_signers(user_id, sigs)
            else:
                found = await self.db.run(key_store.device_keys_for, {user_id: [key_id]})
                entry = found.get(user_id, {}).get(key_id)
                if entry is None:
                    raise MatrixError("Unknown key", errcode="M_NOT_FOUND", http_status=404)
                stored_obj = entry[0]
                ssk = mine.get("self_signing")
                if ssk is None:
                    raise MatrixError("No self-signing key", errcode="M_NOT_FOUND")
                signers = [checks.ed25519_key(ssk, f"ed25519:{checks.public_key_id(ssk)}")]
        else:
            master = theirs.get("master")
            if master is None or key_id != checks.public_key_id(master):
                raise MatrixError("Unknown key", errcode="M_NOT_FOUND", http_status=404)
            stored_obj = master
            usk = mine.get("user_signing")
            if usk is None:
                raise MatrixError("No user-signing key", errcode="M_FORBIDDEN")
            signers = [checks.ed25519_key(usk, f"ed25519:{checks.public_key_id(usk)}")]
        if _without_signatures(obj) != _without_signatures(stored_obj):
            raise checks.InvalidSignature("The signed object does not match the stored key")
        rows = []
        for signer in signers:
            if signer is None or signer.key_id not in sigs:
                continue
            if not checks.signature_valid(obj, user_id, signer):
                raise checks.InvalidSignature("Invalid signature")
            rows.append((target_user, key_id, signer.key_id, sigs[signer.key_id]))
        if not rows:
            raise checks.InvalidSignature("No signature by a key allowed to sign this key")
        return rows

    async def _device_signers(self, user_id: str, sigs: dict) -> list[Any]:
        device_ids = [k.split(":", 1)[1] for k in sigs if k.startswith("ed25519:")][:10]
        if not device_ids:
            return []
        found = await self.db.run(key_store.device_keys_for, {user_id: device_ids})
        return [
            checks.ed25519_key(obj, f"ed25519:{d}")
            for d, (obj, _n) in found.get(user_id, {}).items()
        ]
