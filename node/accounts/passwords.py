"""Password hashing with argon2id ("Password-based" authentication stores a slow-KDF hash).

Parameters follow OWASP's argon2id "7 MiB, 5 passes" setting: about 50 ms per hash on one core
and little memory, so a burst of logins neither stalls nor bloats a small school server.  The
service runs hashing on its own two worker threads, never on the reactor.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher(time_cost=5, memory_cost=7 * 1024, parallelism=1, hash_len=32, salt_len=16)

# Verified against when the user does not exist, so a wrong username costs the same time as a
# wrong password (no account enumeration by timing).
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """True if ``password`` matches; a missing hash never matches (but costs the same)."""
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """A random password for accounts created without one (printed once by the CLI)."""
    return secrets.token_urlsafe(12)
