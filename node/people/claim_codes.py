"""One-time claim codes: how an imported pupil or parent signs in the first time.

Imported accounts have no password.  School IT prints a list of codes per class
(``parta node people claim-codes``); a person enters theirs with a new password at
``POST /_parta/v1/claim`` and from then on logs in with ``m.login.password``.  A code is
12 characters from an alphabet without look-alikes (about 60 bits), shown once, stored
only as a SHA-256 digest, and works once; printing a new list replaces older codes.
Guessing is bounded by the credential guard shared with /login (``node/accounts/guard.py``).
"""

from __future__ import annotations

import secrets

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
LENGTH = 12
MAX_INPUT = 64


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, LENGTH, 4))


def normalise(code: str) -> str | None:
    """The code as stored (upper case, without dashes or spaces); None if it cannot be one."""
    if len(code) > MAX_INPUT:
        return None
    cleaned = "".join(ch for ch in code.upper() if ch not in "- ")
    if len(cleaned) != LENGTH or any(ch not in ALPHABET for ch in cleaned):
        return None
    return cleaned
