"""Database functions for published keys (``schema/e2ee.py``): device keys, one-time and
fallback keys, cross-signing keys and signatures.  Each runs inside ``Database.run``'s
transaction (``fn(conn, ...)``).

Device keys are only answered for devices that still exist (joined with ``devices``):
logging a device out deletes its row in the accounts area, and its keys then stop being
served at once, without the accounts area having to know about E2EE.
"""

from __future__ import annotations

from typing import Any, Iterable

import orjson
from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from federation.errors import BadJSON, InvalidParam
from schema.accounts import devices
from schema.e2ee import (
    e2ee_cross_signing_keys as cs_keys,
)
from schema.e2ee import (
    e2ee_device_keys as dev_keys,
)
from schema.e2ee import (
    e2ee_fallback_keys as fb_keys,
)
from schema.e2ee import (
    e2ee_one_time_keys as otk,
)
from schema.e2ee import (
    e2ee_signatures as sigs,
)

_CHUNK = 500


# --- device keys ---------------------------------------------------------------------------
def get_device_key_json(conn: Connection, user_id: str, device_id: str) -> str | None:
    return conn.execute(
        select(dev_keys.c.key_json).where(
            dev_keys.c.user_id == user_id, dev_keys.c.device_id == device_id
        )
    ).scalar()


def set_device_keys(conn: Connection, user_id: str, device_id: str, key_json: str) -> bool:
    """Store a device's keys; True when they changed (a device-list change)."""
    old = get_device_key_json(conn, user_id, device_id)
    if old == key_json:
        return False
    if old is not None:
        conn.execute(
            delete(dev_keys).where(dev_keys.c.user_id == user_id, dev_keys.c.device_id == device_id)
        )
    conn.execute(insert(dev_keys).values(user_id=user_id, device_id=device_id, key_json=key_json))
    return True


def device_keys_for(
    conn: Connection, wanted: dict[str, list[str]]
) -> dict[str, dict[str, tuple[dict, str | None]]]:
    """user -> device -> (device keys, display name) for existing devices with keys; an
    empty device list means every device of the user."""
    out: dict[str, dict[str, tuple[dict, str | None]]] = {}
    join = dev_keys.join(
        devices,
        and_(devices.c.user_id == dev_keys.c.user_id, devices.c.device_id == dev_keys.c.device_id),
    )
    base = select(
        dev_keys.c.user_id, dev_keys.c.device_id, dev_keys.c.key_json, devices.c.display_name
    ).select_from(join)
    all_users = sorted(u for u, d in wanted.items() if not d)
    some = {u: d for u, d in wanted.items() if d}
    rows: list[Any] = []
    for i in range(0, len(all_users), _CHUNK):
        rows.extend(conn.execute(base.where(dev_keys.c.user_id.in_(all_users[i : i + _CHUNK]))))
    for user_id, device_ids in some.items():
        ids = sorted(set(device_ids))
        for i in range(0, len(ids), _CHUNK):
            rows.extend(
                conn.execute(
                    base.where(
                        dev_keys.c.user_id == user_id,
                        dev_keys.c.device_id.in_(ids[i : i + _CHUNK]),
                    )
                )
            )
    for r in rows:
        out.setdefault(r.user_id, {})[r.device_id] = (orjson.loads(r.key_json), r.display_name)
    return out


# --- one-time and fallback keys ------------------------------------------------------------
def otk_counts(conn: Connection, user_id: str, device_id: str) -> dict[str, int]:
    rows = conn.execute(
        select(otk.c.algorithm, func.count())
        .where(otk.c.user_id == user_id, otk.c.device_id == device_id)
        .group_by(otk.c.algorithm)
    )
    return {alg: int(n) for alg, n in rows}


def unused_fallback_types(conn: Connection, user_id: str, device_id: str) -> list[str]:
    rows = conn.execute(
        select(fb_keys.c.algorithm).where(
            fb_keys.c.user_id == user_id,
            fb_keys.c.device_id == device_id,
            fb_keys.c.used.is_(False),
        )
    )
    return sorted(r[0] for r in rows)


def add_one_time_keys(
    conn: Connection,
    user_id: str,
    device_id: str,
    keys: list[tuple[str, str, str]],
    max_stored: int,
) -> None:
    """Store new one-time keys; a key ID already stored must come with the same key
    (clients re-send after a lost response), otherwise 400.  At most ``max_stored`` keys
    per device are kept (over that, 400: a device never needs more)."""
    if not keys:
        return
    existing = {
        (r.algorithm, r.key_id): r.key_json
        for r in conn.execute(
            select(otk.c.algorithm, otk.c.key_id, otk.c.key_json).where(
                otk.c.user_id == user_id,
                otk.c.device_id == device_id,
                otk.c.key_id.in_(sorted({k[1] for k in keys})),
            )
        )
    }
    new = []
    for algorithm, key_id, key_json in keys:
        old = existing.get((algorithm, key_id))
        if old is None:
            new.append((algorithm, key_id, key_json))
            existing[(algorithm, key_id)] = key_json
        elif old != key_json:
            raise BadJSON(f"One-time key {algorithm}:{key_id} already exists with another value")
    if not new:
        return
    stored = conn.execute(
        select(func.count()).where(otk.c.user_id == user_id, otk.c.device_id == device_id)
    ).scalar_one()
    if stored + len(new) > max_stored:
        raise InvalidParam(f"A device may hold at most {max_stored} one-time keys")
    conn.execute(
        insert(otk),
        [
            {
                "user_id": user_id,
                "device_id": device_id,
                "algorithm": a,
                "key_id": k,
                "key_json": j,
            }
            for a, k, j in new
        ],
    )


def set_fallback_keys(
    conn: Connection, user_id: str, device_id: str, keys: list[tuple[str, str, str]]
) -> None:
    """The device's fallback key per algorithm (a new one replaces the old, unused again;
    the same one re-sent keeps its ``used`` flag)."""
    for algorithm, key_id, key_json in keys:
        where = (
            fb_keys.c.user_id == user_id,
            fb_keys.c.device_id == device_id,
            fb_keys.c.algorithm == algorithm,
        )
        old = conn.execute(select(fb_keys.c.key_id, fb_keys.c.key_json).where(*where)).first()
        if old is not None and (old.key_id, old.key_json) == (key_id, key_json):
            continue
        conn.execute(delete(fb_keys).where(*where))
        conn.execute(
            insert(fb_keys).values(
                user_id=user_id,
                device_id=device_id,
                algorithm=algorithm,
                key_id=key_id,
                key_json=key_json,
                used=False,
            )
        )


def claim_one(
    conn: Connection, user_id: str, device_id: str, algorithm: str
) -> tuple[str, dict | str] | None:
    """Claim a key of ``algorithm`` for the device: the oldest one-time key (deleted in
    this transaction; the DELETE's row count makes a concurrent claim of the same key
    lose and try the next one), else the fallback key (marked used, kept)."""
    for _ in range(5):
        row = conn.execute(
            select(otk.c.key_id, otk.c.key_json)
            .where(
                otk.c.user_id == user_id,
                otk.c.device_id == device_id,
                otk.c.algorithm == algorithm,
            )
            .order_by(otk.c.key_id)
            .limit(1)
        ).first()
        if row is None:
            break
        gone = conn.execute(
            delete(otk).where(
                otk.c.user_id == user_id,
                otk.c.device_id == device_id,
                otk.c.algorithm == algorithm,
                otk.c.key_id == row.key_id,
            )
        ).rowcount
        if gone == 1:
            return f"{algorithm}:{row.key_id}", orjson.loads(row.key_json)
    where = (
        fb_keys.c.user_id == user_id,
        fb_keys.c.device_id == device_id,
        fb_keys.c.algorithm == algorithm,
    )
    fb = conn.execute(select(fb_keys.c.key_id, fb_keys.c.key_json, fb_keys.c.used).where(*where))
    found = fb.first()
    if found is None:
        return None
    if not found.used:
        conn.execute(update(fb_keys).where(*where).values(used=True))
    return f"{algorithm}:{found.key_id}", orjson.loads(found.key_json)


def existing_devices(conn: Connection, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    wanted = sorted(set(pairs))
    found: set[tuple[str, str]] = set()
    by_user: dict[str, list[str]] = {}
    for u, d in wanted:
        by_user.setdefault(u, []).append(d)
    for user_id, ids in by_user.items():
        for i in range(0, len(ids), _CHUNK):
            found.update(
                (user_id, r[0])
                for r in conn.execute(
                    select(devices.c.device_id).where(
                        devices.c.user_id == user_id, devices.c.device_id.in_(ids[i : i + _CHUNK])
                    )
                )
            )
    return found


# --- cross-signing keys and signatures -----------------------------------------------------
def cross_signing_keys(conn: Connection, user_ids: Iterable[str]) -> dict[str, dict[str, dict]]:
    """user -> key type -> key object."""
    wanted = sorted(set(user_ids))
    out: dict[str, dict[str, dict]] = {}
    for i in range(0, len(wanted), _CHUNK):
        for r in conn.execute(
            select(cs_keys.c.user_id, cs_keys.c.key_type, cs_keys.c.key_json).where(
                cs_keys.c.user_id.in_(wanted[i : i + _CHUNK])
            )
        ):
            out.setdefault(r.user_id, {})[r.key_type] = orjson.loads(r.key_json)
    return out


def set_cross_signing_key(conn: Connection, user_id: str, key_type: str, key_json: str) -> None:
    conn.execute(
        delete(cs_keys).where(cs_keys.c.user_id == user_id, cs_keys.c.key_type == key_type)
    )
    conn.execute(insert(cs_keys).values(user_id=user_id, key_type=key_type, key_json=key_json))


def add_signature(
    conn: Connection,
    signer_user_id: str,
    target_user_id: str,
    target_key_id: str,
    signer_key_id: str,
    signature: str,
) -> None:
    where = (
        sigs.c.signer_user_id == signer_user_id,
        sigs.c.target_user_id == target_user_id,
        sigs.c.target_key_id == target_key_id,
        sigs.c.signer_key_id == signer_key_id,
    )
    conn.execute(delete(sigs).where(*where))
    conn.execute(
        insert(sigs).values(
            signer_user_id=signer_user_id,
            target_user_id=target_user_id,
            target_key_id=target_key_id,
            signer_key_id=signer_key_id,
            signature=signature,
        )
    )


def signatures_for(
    conn: Connection, target_user_ids: Iterable[str], viewer: str | None
) -> dict[tuple[str, str], dict[str, dict[str, str]]]:
    """(target user, target key ID) -> signer user -> signer key ID -> signature, for the
    signatures a viewer may see: the target's own, and the viewer's (a user-signing key's
    signature of someone else's master key is private to the signer; "Cross-signing")."""
    wanted = sorted(set(target_user_ids))
    out: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    for i in range(0, len(wanted), _CHUNK):
        chunk = wanted[i : i + _CHUNK]
        for r in conn.execute(select(sigs).where(sigs.c.target_user_id.in_(chunk))):
            if r.signer_user_id != r.target_user_id and r.signer_user_id != viewer:
                continue
            out.setdefault((r.target_user_id, r.target_key_id), {}).setdefault(
                r.signer_user_id, {}
            )[r.signer_key_id] = r.signature
    return out
