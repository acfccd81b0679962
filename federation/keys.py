"""ed25519 signing keys (spec: server-server "Retrieving server keys"; appendix key representation).

Key IDs are ``ed25519:<version>``.  The on-disk format is Synapse's signing-key file: one line
per key, ``ed25519 <version> <unpadded-base64 32-byte seed>``, so an existing server's key can
be brought over unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
import secrets
import string

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives import serialization

from .b64 import decode_base64, encode_base64
from .errors import BadJSON

ALGORITHM = "ed25519"
_VERSION_CHARS = set(string.ascii_letters + string.digits + "_")


class KeyFormatError(BadJSON):
    """A signing-key file or key ID that cannot be read."""


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
        raw = decode_base64(b64)
        if len(raw) != 32:
            raise KeyFormatError(f"Public key {key_id} is {len(raw)} bytes, expected 32")
        return cls(key_id, raw)


class SigningKey:
    """A private ed25519 key with its key ID."""

    __slots__ = ("key_id", "_private", "verify_key", "_seed")

    def __init__(self, version: str, seed: bytes) -> None:
        if not version or not set(version) <= _VERSION_CHARS:
            raise KeyFormatError(f"Invalid key version {version!r}: use [A-Za-z0-9_]")
        if len(seed) != 32:
            raise KeyFormatError(f"ed25519 seed must be 32 bytes, got {len(seed)}")
        self.key_id = f"{ALGORITHM}:{version}"
        self._seed = seed
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        pub = self._private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.verify_key = VerifyKey(self.key_id, pub)

    @property
    def version(self) -> str:
        return self.key_id.split(":", 1)[1]

    @classmethod
    def generate(cls, version: str | None = None) -> "SigningKey":
        if version is None:
            version = "a_" + secrets.token_urlsafe(3).replace("-", "_")
        return cls(version, secrets.token_bytes(32))

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def __repr__(self) -> str:  # never print the seed
        return f"<SigningKey {self.key_id}>"

    # --- Synapse key-file format -------------------------------------------------------
    def to_line(self) -> str:
        return f"{ALGORITHM} {self.version} {encode_base64(self._seed)}"


def read_signing_keys(text: str) -> list[SigningKey]:
    """Parse a Synapse-format signing-key file (one key per non-empty line)."""
    keys = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3:
            raise KeyFormatError(
                f"line {lineno}: expected 'ed25519 <version> <base64 seed>', got {len(parts)} fields")
        alg, version, seed_b64 = parts
        if alg != ALGORITHM:
            raise KeyFormatError(f"line {lineno}: unsupported key algorithm {alg!r}")
        try:
            seed = decode_base64(seed_b64)
        except BadJSON as exc:
            raise KeyFormatError(f"line {lineno}: {exc.message}") from None
        keys.append(SigningKey(version, seed))
    if not keys:
        raise KeyFormatError("no signing key found in file")
    return keys


def write_signing_keys(keys: list[SigningKey]) -> str:
    return "".join(k.to_line() + "\n" for k in keys)


def public_key_from_bytes(raw: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(raw)
