"""This server's signing keys on disk, and their rotation (``parta node keys rotate``).

Spec: server-server API "Retrieving server keys" > "Publishing Keys" (``verify_keys`` sign
requests and events; ``old_verify_keys`` -- ``{key, expired_ts}`` -- only let others check
events signed before the rotation).

Files (in the data dir, as ``Config`` names them):

* ``signing_key_path`` (``signing.key``): Synapse's key-file format, one
  ``ed25519 <version> <seed>`` line per key; the first key signs.  A rotation writes the
  new key alone (mode 0600, atomically).
* ``federation.old_signing_keys_path`` (``old_signing_keys.json``): the public halves of
  retired keys with their ``expired_ts``, in the ``old_verify_keys`` shape (the same
  ``{key_id: {key, expired_ts}}`` object Synapse's ``old_signing_keys`` setting holds).

A running node reads both at start-up: a rotation takes effect at the next start.
"""

from __future__ import annotations

import json
from typing import Any

from federation.atomic_write import write_file_atomic
from federation.keys import KeyFormatError, SigningKey, load_signing_key_file, save_signing_key_file
from federation.transport.key_server import (
    OldKey,
    old_keys_from_json,
    old_keys_to_json,
    rotate_signing_keys,
)


def load_old_keys(path: str) -> list[OldKey]:
    """The retired keys (none when the file does not exist)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return []
    try:
        return old_keys_from_json(json.loads(text) if text.strip() else {})
    except ValueError as exc:  # json.JSONDecodeError
        raise KeyFormatError(f"{path}: not JSON ({exc})") from None
    except KeyFormatError as exc:
        raise KeyFormatError(f"{path}: {exc.message}") from None


def save_old_keys(path: str, old: list[OldKey]) -> None:
    data = json.dumps(old_keys_to_json(old), indent=2, sort_keys=True) + "\n"
    write_file_atomic(path, data.encode("utf-8"), 0o644, prefix=".old-keys-")


def load_keys(config: Any) -> tuple[list[SigningKey], list[OldKey]]:
    """(current signing keys, retired keys) of the node configured by ``config``."""
    current = load_signing_key_file(config.signing_key_path)
    old = load_old_keys(config.federation.old_signing_keys_path)
    current_ids = {k.key_id for k in current}
    return current, [o for o in old if o.verify_key.key_id not in current_ids]


def plan_rotation(
    config: Any, now_ms: int, new_version: str | None = None
) -> tuple[list[SigningKey], list[SigningKey], list[OldKey]]:
    """(current keys, new keys, new retired list) of a rotation, nothing written yet."""
    current, old = load_keys(config)
    new_keys, new_old = rotate_signing_keys(current, old, now_ms, new_version)
    return current, new_keys, new_old


def save_rotation(config: Any, new_keys: list[SigningKey], new_old: list[OldKey]) -> None:
    """Write a planned rotation.  The old-keys file is written first: if the second write
    fails, the node still starts with its previous key, and the retired list merely
    already names it."""
    save_old_keys(config.federation.old_signing_keys_path, new_old)
    save_signing_key_file(config.signing_key_path, new_keys)


def rotate(
    config: Any, now_ms: int, new_version: str | None = None
) -> tuple[SigningKey, list[OldKey]]:
    """Make a new signing key; the current ones become old keys expired at ``now_ms``
    (locally only: ``node.federation.key_rotation`` tells the city gateway first)."""
    _, new_keys, new_old = plan_rotation(config, now_ms, new_version)
    save_rotation(config, new_keys, new_old)
    return new_keys[0], new_old
