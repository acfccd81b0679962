"""ed25519 signing keys (spec: server-server API "Retrieving server keys"; appendix "Signing
Details" and "Cryptographic Test Vectors").

Key IDs are ``ed25519:<version>``; a version has characters matching ``[a-zA-Z0-9_]``
(``data/api/server-server/definitions/keys.yaml``).  The on-disk format is Synapse's
signing-key file so an existing server's key can be brought over unchanged: one key per line,

    ed25519 <version> <unpadded Base64 of the 32-byte seed>

Blank lines and ``#`` comments are ignored when reading.  Every format problem is a
``KeyFormatError`` naming the line.  ``load_signing_key_file``/``save_signing_key_file`` are
the only file I/O in ``federation/``: the key file belongs to this format.
"""

from __future__ import annotations

import os
import secrets
import string
from dataclasses import dataclass
from typing import Iterable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .atomic_write import write_file_atomic
from .b64 import decode_base64, encode_base64
from .errors import BadJSON

try:  # libsodium signs faster than cryptography here (bench/bench_core.py); same bytes.
    from nacl.bindings import crypto_sign as _nacl_sign
except ImportError:  # pragma: no cover - PyNaCl is a dependency
    _nacl_sign = None  # type: ignore[assignment]  # the fallback tests for None

ALGORITHM = "ed25519"
SEED_BYTES = 32
PUBLIC_KEY_BYTES = 32
_VERSION_CHARS = frozenset(string.ascii_letters + string.digits + "_")


class KeyFormatError(BadJSON):
    """A signing-key file, key ID or encoded key that cannot be read."""


def is_valid_key_version(version: str) -> bool:
    """``[a-zA-Z0-9_]+``, as the spec requires of a key ID's version part."""
    return isinstance(version, str) and bool(version) and set(version) <= _VERSION_CHARS


def split_key_id(key_id: str) -> tuple[str, str]:
    """``"ed25519:abc"`` -> ``("ed25519", "abc")``; ``KeyFormatError`` if there is no colon."""
    if not isinstance(key_id, str):
        raise KeyFormatError("Key ID must be a string")
    algorithm, sep, version = key_id.partition(":")
    if not sep or not algorithm or not version:
        raise KeyFormatError(f"Key ID {key_id!r} is not of the form <algorithm>:<version>")
    return algorithm, version


@dataclass(frozen=True)
class VerifyKey:
    """A public ed25519 key with its key ID (``ed25519:abc``)."""

    key_id: str
    public_bytes: bytes

    @property
    def version(self) -> str:
        return self.key_id.split(":", 1)[1]

    def encode(self) -> str:
        """Unpadded Base64 of the 32 public-key bytes, as in ``verify_keys``."""
        return encode_base64(self.public_bytes)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True if ``signature`` is valid for ``message``."""
        from .signing import verify_raw  # fastest available backend lives there

        return verify_raw(self.public_bytes, signature, message)

    @classmethod
    def decode(cls, key_id: str, b64: str) -> "VerifyKey":
        """A key from ``verify_keys``/``old_verify_keys``: ``KeyFormatError`` if unusable.

        Only ``ed25519`` keys can be used.  The version's character set is not enforced on
        remote keys (being lenient costs nothing; the key ID is only compared).
        """
        algorithm, _ = split_key_id(key_id)
        if algorithm != ALGORITHM:
            raise KeyFormatError(f"Key {key_id}: unsupported algorithm {algorithm!r}")
        try:
            raw = decode_base64(b64)
        except BadJSON as exc:
            raise KeyFormatError(f"Public key {key_id}: {exc.message}") from None
        if len(raw) != PUBLIC_KEY_BYTES:
            raise KeyFormatError(
                f"Public key {key_id} is {len(raw)} bytes, expected {PUBLIC_KEY_BYTES}"
            )
        return cls(key_id, raw)


class SigningKey:
    """A private ed25519 key with its key ID."""

    __slots__ = ("key_id", "_private", "verify_key", "_seed", "_nacl_secret")

    def __init__(self, version: str, seed: bytes) -> None:
        if not is_valid_key_version(version):
            raise KeyFormatError(f"Invalid key version {version!r}: use [A-Za-z0-9_]")
        if not isinstance(seed, (bytes, bytearray)) or len(seed) != SEED_BYTES:
            got = len(seed) if isinstance(seed, (bytes, bytearray)) else type(seed).__name__
            raise KeyFormatError(f"ed25519 seed must be {SEED_BYTES} bytes, got {got}")
        self.key_id = f"{ALGORITHM}:{version}"
        self._seed = bytes(seed)
        self._private = Ed25519PrivateKey.from_private_bytes(self._seed)
        pub = self._private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.verify_key = VerifyKey(self.key_id, pub)
        self._nacl_secret = self._seed + pub  # libsodium's 64-byte secret key form

    @property
    def version(self) -> str:
        return self.key_id.split(":", 1)[1]

    @classmethod
    def generate(cls, version: str | None = None) -> "SigningKey":
        if version is None:
            # "a_" + 4 characters of [A-Za-z0-9_], like the versions Synapse generates.
            version = "a_" + secrets.token_urlsafe(3).replace("-", "_")
        return cls(version, secrets.token_bytes(SEED_BYTES))

    def sign(self, message: bytes) -> bytes:
        """The 64-byte ed25519 signature of ``message`` (deterministic: either backend)."""
        if _nacl_sign is not None:
            return _nacl_sign(bytes(message), self._nacl_secret)[:64]
        return self._private.sign(message)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SigningKey):
            return NotImplemented
        return self.key_id == other.key_id and secrets.compare_digest(self._seed, other._seed)

    def __hash__(self) -> int:
        return hash((self.key_id, self.verify_key.public_bytes))

    def __repr__(self) -> str:  # never print the seed
        return f"<SigningKey {self.key_id} public={self.verify_key.encode()}>"

    # --- Synapse key-file format -------------------------------------------------------
    def to_line(self) -> str:
        return f"{ALGORITHM} {self.version} {encode_base64(self._seed)}"


def read_signing_keys(text: str) -> list[SigningKey]:
    """Parse a Synapse-format signing-key file (one key per non-empty line)."""
    keys: list[SigningKey] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3:
            raise KeyFormatError(
                f"line {lineno}: expected 'ed25519 <version> <base64 seed>', "
                f"got {len(parts)} field{'s' if len(parts) != 1 else ''}"
            )
        alg, version, seed_b64 = parts
        if alg != ALGORITHM:
            raise KeyFormatError(
                f"line {lineno}: unsupported key algorithm {alg!r} (only {ALGORITHM})"
            )
        if not is_valid_key_version(version):
            raise KeyFormatError(
                f"line {lineno}: invalid key version {version!r}: use [A-Za-z0-9_]"
            )
        try:
            seed = decode_base64(seed_b64)
        except BadJSON as exc:
            raise KeyFormatError(
                f"line {lineno}: seed is not unpadded Base64 ({exc.message})"
            ) from None
        if len(seed) != SEED_BYTES:
            raise KeyFormatError(f"line {lineno}: seed is {len(seed)} bytes, expected {SEED_BYTES}")
        if version in seen:
            raise KeyFormatError(
                f"line {lineno}: key version {version!r} already defined on line {seen[version]}"
            )
        seen[version] = lineno
        keys.append(SigningKey(version, seed))
    if not keys:
        raise KeyFormatError("no signing key found in file")
    return keys


def write_signing_keys(keys: Iterable[SigningKey]) -> str:
    """The Synapse key-file text for ``keys`` (one line each, newline-terminated)."""
    return "".join(k.to_line() + "\n" for k in keys)


def load_signing_key_file(path: str | os.PathLike[str]) -> list[SigningKey]:
    """Read a Synapse-format key file; ``KeyFormatError`` names the file and line.

    ``OSError`` (missing file, permissions) propagates unchanged.
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KeyFormatError(f"{os.fspath(path)}: not UTF-8 text (byte {exc.start})") from None
    try:
        return read_signing_keys(text)
    except KeyFormatError as exc:
        raise KeyFormatError(f"{os.fspath(path)}: {exc.message}") from None


def save_signing_key_file(path: str | os.PathLike[str], keys: Iterable[SigningKey]) -> None:
    """Write ``keys`` to ``path`` with mode 0600, atomically (temp file + rename).

    The temporary file is created 0600 before any secret is written, so the seed is
    never readable by others, even briefly; an existing file is replaced, not edited.
    """
    text = write_signing_keys(keys)
    if not text:
        raise KeyFormatError("refusing to write a key file without keys")
    write_file_atomic(path, text.encode("utf-8"), 0o600, prefix=".signing-key-")


def public_key_from_bytes(raw: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(raw)
