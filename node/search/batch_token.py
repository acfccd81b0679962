"""``next_batch`` tokens of ``POST /search`` (client-server API "Server Side Search" >
"Pagination": https://spec.matrix.org/v1.16/client-server-api/#pagination-1).

A token says where the next page starts: for ``recent`` order the stream ordering of the
last result returned (the next page has older events), for ``rank`` order how many rows
of the ranked match list were consumed and which stream orderings that list ranks.  A
token returned inside a group also names the group (``room_id`` or ``sender`` and its
value): paging with it stays in that group.

Tokens are opaque to clients: URL-safe Base64 of a small JSON array followed by a MAC
(HMAC-SHA256, 96 bits) under a key derived from the node's signing key, so they survive
restarts.  The MAC is not what keeps results private -- every page is limited to what the
user may see whatever the token says -- but it turns an edited or truncated token into a
clear 400 ``M_INVALID_PARAM`` instead of a confusing page, and stops a client from using
tokens as a way to feed arbitrary values to the query.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

import orjson

from federation.errors import InvalidParam

MAX_TOKEN_CHARS = 2048
MAC_BYTES = 12
ORDERS = ("rank", "recent")
GROUP_KEYS = ("room_id", "sender")


@dataclass(frozen=True)
class Position:
    order: str  # "rank" | "recent"
    at: int  # recent: results are below this stream ordering; rank: rows to skip
    group_key: str | None = None  # "room_id" | "sender"
    group_value: str | None = None
    # rank: the stream orderings ranked (node/search/query.py), fixed by the first page
    window_low: int | None = None
    window_high: int | None = None


class TokenCodec:
    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"parta search next_batch\x00" + secret).digest()

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:MAC_BYTES]

    def encode(self, pos: Position) -> str:
        payload = orjson.dumps(
            [
                pos.order,
                pos.at,
                pos.group_key,
                pos.group_value,
                pos.window_low,
                pos.window_high,
            ]
        )
        raw = payload + self._mac(payload)
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, token: str) -> Position:
        bad = InvalidParam("Invalid next_batch token")
        if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
            raise bad
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:
            raise bad from None
        payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        if len(raw) <= MAC_BYTES or not hmac.compare_digest(mac, self._mac(payload)):
            raise bad
        try:
            order, at, group_key, group_value, low, high = orjson.loads(payload)
        except (ValueError, TypeError):
            raise bad from None
        if (
            order not in ORDERS
            or type(at) is not int
            or (group_key is not None and group_key not in GROUP_KEYS)
            or (group_key is None) != (group_value is None)
            or (group_value is not None and not isinstance(group_value, str))
            or (low is not None and type(low) is not int)
            or (high is not None and type(high) is not int)
        ):
            raise bad
        return Position(order, at, group_key, group_value, low, high)
