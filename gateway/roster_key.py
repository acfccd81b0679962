"""The roster signing key files, kept apart from the server key.

``roster.key`` holds the secret key in the Synapse key-file format (``ed25519 roster_1
<seed>``), mode 0600, so it can be moved offline.  ``roster.pub`` holds only the public half
(JSON ``{"key_id", "key"}``): with the secret key away, the gateway still serves and verifies
every roster version, and refuses to publish with a clear message.
"""

from __future__ import annotations

import json
import os

from federation.errors import MatrixError
from federation.keys import SigningKey, VerifyKey, load_signing_key_file, save_signing_key_file
from federation.roster import generate_roster_key, is_roster_key_id


class RosterKeyError(Exception):
    """The roster key files are missing or unusable (one line for the operator)."""


def public_path(key_path: str) -> str:
    base, ext = os.path.splitext(key_path)
    return (base if ext == ".key" else key_path) + ".pub"


def create_roster_key(key_path: str) -> SigningKey:
    """Generate ``ed25519:roster_1`` into ``key_path`` (0600) and its ``.pub``; refuses to
    overwrite an existing key (it would break every node's pinned key)."""
    if os.path.exists(key_path):
        raise RosterKeyError(
            f"{key_path} already exists; not overwriting the roster key (nodes pin it)"
        )
    key = generate_roster_key(1)
    save_signing_key_file(key_path, [key])
    write_public(key_path, key.verify_key)
    return key


def write_public(key_path: str, verify_key: VerifyKey) -> None:
    with open(public_path(key_path), "w", encoding="utf-8") as fh:
        json.dump({"key_id": verify_key.key_id, "key": verify_key.encode()}, fh)
        fh.write("\n")


def load_roster_key(key_path: str) -> tuple[SigningKey | None, VerifyKey]:
    """(secret key or None if it is kept offline, public key).  ``RosterKeyError`` if
    neither file can be used."""
    if os.path.exists(key_path):
        try:
            keys = load_signing_key_file(key_path)
        except (OSError, MatrixError) as exc:
            raise RosterKeyError(
                f"cannot read roster key {key_path}: {getattr(exc, 'message', exc)}"
            ) from None
        key = keys[0]
        if not is_roster_key_id(key.key_id):
            raise RosterKeyError(
                f"{key_path}: key {key.key_id} is not a roster key (its "
                f"version must start with 'roster_')"
            )
        return key, key.verify_key
    pub = public_path(key_path)
    try:
        with open(pub, encoding="utf-8") as fh:
            data = json.load(fh)
        vk = VerifyKey.decode(data["key_id"], data["key"])
    except FileNotFoundError:
        raise RosterKeyError(
            f"roster key not found: {key_path} (nor its public half {pub}); "
            f"run 'parta gateway init'"
        ) from None
    except (OSError, ValueError, KeyError, TypeError, MatrixError) as exc:
        raise RosterKeyError(
            f"cannot read roster public key {pub}: {getattr(exc, 'message', exc)}"
        ) from None
    if not is_roster_key_id(vk.key_id):
        raise RosterKeyError(f"{pub}: key {vk.key_id} is not a roster key")
    return None, vk
