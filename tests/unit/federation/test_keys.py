"""Signing keys and the Synapse key-file format (appendix "Cryptographic Test Vectors")."""

from __future__ import annotations

import os
import stat

import nacl.signing
import pytest

from federation.b64 import decode_base64
from federation.errors import BadJSON
from federation.keys import (
    KeyFormatError,
    SigningKey,
    VerifyKey,
    is_valid_key_version,
    load_signing_key_file,
    read_signing_keys,
    save_signing_key_file,
    split_key_id,
    write_signing_keys,
)

# From the appendix: SIGNING_KEY_SEED, KEY_ID = "ed25519:1".
SPEC_SEED_B64 = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
# The public key of that seed.  The appendix does not print it, but its JSON-signing vectors
# verify with it (test_signing.py) and other implementations' test suites use the same value.
SPEC_PUBLIC_B64 = "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI"


def spec_key() -> SigningKey:
    return SigningKey("1", decode_base64(SPEC_SEED_B64))


def test_spec_test_key_gives_its_public_key():
    key = spec_key()
    assert key.key_id == "ed25519:1"
    assert key.version == "1"
    assert key.verify_key.key_id == "ed25519:1"
    assert key.verify_key.encode() == SPEC_PUBLIC_B64
    # PyNaCl derives the same public key from the seed (independent backend).
    nacl_key = nacl.signing.SigningKey(decode_base64(SPEC_SEED_B64))
    assert bytes(nacl_key.verify_key) == key.verify_key.public_bytes


def test_spec_key_from_synapse_key_file_line():
    [key] = read_signing_keys(f"ed25519 1 {SPEC_SEED_B64}\n")
    assert key.verify_key.encode() == SPEC_PUBLIC_B64
    # Written back canonically (the spec's seed has non-zero unused trailing bits).
    assert write_signing_keys([key]) == "ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0\n"


def test_sign_and_verify_raw():
    key = spec_key()
    sig = key.sign(b"message")
    assert len(sig) == 64
    assert key.verify_key.verify(sig, b"message")
    assert not key.verify_key.verify(sig, b"messagf")
    assert not SigningKey.generate().verify_key.verify(sig, b"message")
    # Same signature as PyNaCl's (ed25519 is deterministic).
    assert nacl.signing.SigningKey(decode_base64(SPEC_SEED_B64)).sign(b"message").signature == sig


def test_generate_gives_distinct_valid_keys():
    a, b = SigningKey.generate(), SigningKey.generate()
    assert a.key_id != b.key_id or a.verify_key != b.verify_key
    assert a.key_id.startswith("ed25519:a_") and is_valid_key_version(a.version)
    assert SigningKey.generate("v2").key_id == "ed25519:v2"


def test_repr_never_shows_the_seed():
    key = spec_key()
    assert SPEC_SEED_B64[:20] not in repr(key)
    assert "ed25519:1" in repr(key)


def test_equality():
    assert spec_key() == spec_key()
    assert spec_key() != SigningKey("2", decode_base64(SPEC_SEED_B64))
    assert len({spec_key(), spec_key()}) == 1


@pytest.mark.parametrize("version", ["", "a-b", "a:b", "a b", "é", "a/b"])
def test_invalid_versions(version):
    with pytest.raises(KeyFormatError, match="version"):
        SigningKey(version, bytes(32))
    assert not is_valid_key_version(version)


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33), bytes(64), "x" * 32])
def test_seed_must_be_32_bytes(seed):
    with pytest.raises(KeyFormatError, match="32 bytes"):
        SigningKey("1", seed)


# --- key file round trip -----------------------------------------------------------------


def test_round_trip_text():
    keys = [SigningKey.generate("a_abc"), SigningKey.generate("old_1"), spec_key()]
    text = write_signing_keys(keys)
    assert text.count("\n") == 3 and all(line.startswith("ed25519 ") for line in text.splitlines())
    back = read_signing_keys(text)
    assert back == keys
    assert [k.verify_key for k in back] == [k.verify_key for k in keys]


def test_reader_tolerates_blank_lines_comments_and_whitespace():
    text = f"\n# server key\n  ed25519\t1   {SPEC_SEED_B64}  \r\n\n"
    [key] = read_signing_keys(text)
    assert key == spec_key()


@pytest.mark.parametrize(
    "text,line,match",
    [
        ("ed25519 1\n", 1, "got 2 fields"),
        (f"ed25519 1 {SPEC_SEED_B64} extra\n", 1, "got 4 fields"),
        (f"\n\ned25519 1 {SPEC_SEED_B64}\nbroken\n", 4, "got 1 field"),
        (f"curve25519 1 {SPEC_SEED_B64}\n", 1, "unsupported key algorithm 'curve25519'"),
        (f"ED25519 1 {SPEC_SEED_B64}\n", 1, "unsupported key algorithm"),
        (f"ed25519 a-b {SPEC_SEED_B64}\n", 1, "invalid key version"),
        ("ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA!\n", 1, "not unpadded Base64"),
        ("ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW-3XA1\n", 1, "not unpadded Base64"),
        ("ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1XY\n", 1, "impossible length"),
        ("ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1X\n", 1, "seed is 33 bytes"),
        ("ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3\n", 1, "seed is 30 bytes"),
        (f"ed25519 1 {SPEC_SEED_B64}AAAA\n", 1, "seed is 35 bytes"),
        (f"ed25519 1 {SPEC_SEED_B64}\ned25519 1 {SPEC_SEED_B64}\n", 2, "already defined on line 1"),
    ],
)
def test_malformed_files_name_the_line(text, line, match):
    with pytest.raises(KeyFormatError, match=match) as info:
        read_signing_keys(text)
    assert info.value.message.startswith(f"line {line}: ")
    assert isinstance(info.value, BadJSON)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_file_without_keys(text):
    with pytest.raises(KeyFormatError, match="no signing key"):
        read_signing_keys(text)


def test_save_and_load_file(tmp_path):
    path = tmp_path / "server.signing.key"
    keys = [spec_key(), SigningKey.generate()]
    save_signing_key_file(path, keys)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_signing_key_file(path) == keys
    assert load_signing_key_file(str(path)) == keys
    assert path.read_text() == write_signing_keys(keys)
    assert [p.name for p in tmp_path.iterdir()] == ["server.signing.key"]  # no temp left


def test_save_replaces_a_world_readable_file_with_0600(tmp_path):
    path = tmp_path / "key"
    path.write_text("old\n")
    os.chmod(path, 0o644)
    save_signing_key_file(path, [spec_key()])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_signing_key_file(path) == [spec_key()]


def test_save_without_keys_is_refused(tmp_path):
    with pytest.raises(KeyFormatError):
        save_signing_key_file(tmp_path / "key", [])
    assert not (tmp_path / "key").exists()


def test_load_reports_file_and_line(tmp_path):
    path = tmp_path / "bad.key"
    path.write_text(f"ed25519 1 {SPEC_SEED_B64}\ned25519 2\n")
    with pytest.raises(KeyFormatError) as info:
        load_signing_key_file(path)
    assert info.value.message.startswith(f"{path}: line 2: ")
    path.write_bytes(b"ed25519 1 \xff\xfe\n")
    with pytest.raises(KeyFormatError, match="not UTF-8"):
        load_signing_key_file(path)
    with pytest.raises(FileNotFoundError):
        load_signing_key_file(tmp_path / "missing")


def test_synapse_generated_file_shape(tmp_path):
    # Synapse writes "ed25519 a_XXXX <43 base64 chars>\n"; read one of that shape.
    line = "ed25519 a_Yxwz " + "A" * 43 + "\n"
    [key] = read_signing_keys(line)
    assert key.key_id == "ed25519:a_Yxwz"


# --- verify keys and key IDs -------------------------------------------------------------


def test_verify_key_decode():
    vk = VerifyKey.decode("ed25519:1", SPEC_PUBLIC_B64)
    assert vk == spec_key().verify_key
    assert vk.version == "1" and vk.encode() == SPEC_PUBLIC_B64


@pytest.mark.parametrize(
    "key_id,b64,match",
    [
        ("ed25519:1", SPEC_PUBLIC_B64[:-1], "Base64|bytes"),
        ("ed25519:1", SPEC_PUBLIC_B64 + "AAAA", "35 bytes"),
        ("ed25519:1", "not base64!", "Base64"),
        ("curve25519:1", SPEC_PUBLIC_B64, "unsupported algorithm"),
        ("ed25519", SPEC_PUBLIC_B64, "algorithm>:<version"),
        ("ed25519:", SPEC_PUBLIC_B64, "algorithm>:<version"),
    ],
)
def test_verify_key_decode_errors(key_id, b64, match):
    with pytest.raises(KeyFormatError, match=match):
        VerifyKey.decode(key_id, b64)


def test_split_key_id():
    assert split_key_id("ed25519:a_b:c") == ("ed25519", "a_b:c")
    for bad in ("", ":", "abc", ":x", 5):
        with pytest.raises(KeyFormatError):
            split_key_id(bad)  # type: ignore[arg-type]
