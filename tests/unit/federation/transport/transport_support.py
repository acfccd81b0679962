"""Helpers for the federation transport tests (not a test module)."""

from __future__ import annotations

from federation.keys import SigningKey


def key(version: str, fill: int) -> SigningKey:
    return SigningKey(version, bytes([fill]) * 32)
