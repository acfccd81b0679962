"""Single-use, short-lived ``m.login.token`` tokens (client-server "Login":
``POST /login/get_token``, login_token.yaml, and the ``m.login.token`` login type).

A logged-in client asks for one token to log another device in.  Tokens live only in memory:
they are valid for ``LIFETIME_MS`` (2 minutes, the spec's recommended default), so a restart
that forgets them costs the user one more click.  The map is keyed by the token's SHA-256
digest, a token is removed by its first use (the spec: "valid for a single login, enforced by
the server"), and memory stays bounded: at most ``MAX_PER_USER`` live tokens per user (older
ones are dropped) and ``MAX_TOKENS`` in all (the oldest go first).
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from typing import Callable

from .tokens import hash_token

LIFETIME_MS = 120_000
MAX_PER_USER = 5
MAX_TOKENS = 10_000
TOKEN_PREFIX = "plt_"


class LoginTokens:
    def __init__(
        self,
        now_ms: Callable[[], int],
        *,
        lifetime_ms: int = LIFETIME_MS,
        max_tokens: int = MAX_TOKENS,
        max_per_user: int = MAX_PER_USER,
    ) -> None:
        self._now_ms = now_ms
        self.lifetime_ms = lifetime_ms
        self._max_tokens = max_tokens
        self._max_per_user = max_per_user
        # Issue order = expiry order (one lifetime), so expiry pops from the front.
        self._tokens: OrderedDict[str, tuple[str, int]] = OrderedDict()  # hash -> (user, exp)

    def __len__(self) -> int:
        return len(self._tokens)

    def _expire(self, now: int) -> None:
        while self._tokens:
            h, (_, expires) = next(iter(self._tokens.items()))
            if expires > now:
                break
            del self._tokens[h]

    def issue(self, user_id: str) -> str:
        now = self._now_ms()
        self._expire(now)
        mine = [h for h, (u, _) in self._tokens.items() if u == user_id]
        for h in mine[: max(0, len(mine) - self._max_per_user + 1)]:
            del self._tokens[h]
        while len(self._tokens) >= self._max_tokens:
            self._tokens.popitem(last=False)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._tokens[hash_token(token)] = (user_id, now + self.lifetime_ms)
        return token

    def consume(self, token: str) -> str | None:
        """The token's user if it is live; the token is gone afterwards either way."""
        now = self._now_ms()
        self._expire(now)
        entry = self._tokens.pop(hash_token(token), None)
        if entry is None or entry[1] <= now:
            return None
        return entry[0]

    def forget_user(self, user_id: str) -> None:
        """Drop a user's tokens (password change, deactivation, lock)."""
        for h in [h for h, (u, _) in self._tokens.items() if u == user_id]:
            del self._tokens[h]
