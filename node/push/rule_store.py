"""Every user's push rules, kept in memory and compiled on demand.

Evaluation runs for every local member of a room on every persisted event, synchronously
in the persister's hook, so a user's rules must never need a database read then: the
documents of all users who changed their rules are loaded once at start-up (at most
``ruleset.MAX_USER_RULES`` small rules each; a user who never changed anything has no
row and gets the server-default rules).  Compiled rules are cached per user (bounded)
and dropped when the user changes a rule.

Changes are serialised by one lock (read-modify-write of the user's document) and each is
announced to ``listeners`` -- the sync area puts the new ruleset into the user's
``m.push_rules`` account data (client-server API "Push Rules: Events").
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Awaitable, Callable

import orjson
from sqlalchemy import delete, insert, select
from twisted.internet import defer

from schema.push import push_rulesets

from .evaluator import CompiledRule, compile_ruleset
from .ruleset import client_ruleset, empty_document

log = logging.getLogger("parta.push")

COMPILED_CACHE = 50_000

Listener = Callable[[str, dict], "Awaitable[Any] | None"]


def _load_all(conn: Any) -> dict[str, dict]:
    out = {}
    for user_id, text in conn.execute(select(push_rulesets.c.user_id, push_rulesets.c.document)):
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            log.warning("event=push_rules_unreadable user=%s", user_id)
            continue
        if isinstance(doc, dict):
            out[user_id] = doc
    return out


def _save(conn: Any, user_id: str, text: str) -> None:
    conn.execute(delete(push_rulesets).where(push_rulesets.c.user_id == user_id))
    conn.execute(insert(push_rulesets).values(user_id=user_id, document=text))


class PushRuleStore:
    def __init__(self, db: Any) -> None:
        self.db = db
        self._docs: dict[str, dict] = {}
        self._compiled: OrderedDict[str, tuple[CompiledRule, ...]] = OrderedDict()
        self._lock = defer.DeferredLock()
        self.listeners: list[Listener] = []

    def load_sync(self) -> None:
        """Read every stored document (blocking; wiring only)."""
        self._docs = self.db.run_sync(_load_all)

    def document(self, user_id: str) -> dict:
        return self._docs.get(user_id) or empty_document()

    def ruleset(self, user_id: str) -> dict:
        """The ``m.push_rules`` content / ``GET /pushrules/`` body: ``{"global": ...}``."""
        return {"global": client_ruleset(self.document(user_id), user_id)}

    def has_own_rules(self, user_id: str) -> bool:
        """Did the user change anything (else the server-default rules apply)?"""
        return user_id in self._docs

    def compiled(self, user_id: str) -> tuple[CompiledRule, ...]:
        rules = self._compiled.get(user_id)
        if rules is None:
            rules = compile_ruleset(client_ruleset(self.document(user_id), user_id))
            self._compiled[user_id] = rules
            if len(self._compiled) > COMPILED_CACHE:
                self._compiled.popitem(last=False)
        return rules

    async def update(self, user_id: str, change: Callable[[dict], dict]) -> None:
        """Apply ``change`` (a pure function of the document, raising ``MatrixError`` on
        bad input) and store the result."""
        await self._lock.acquire()
        try:
            doc = change(self.document(user_id))
            await self.db.run(_save, user_id, orjson.dumps(doc).decode())
            self._docs[user_id] = doc
            self._compiled.pop(user_id, None)
        finally:
            self._lock.release()
        content = self.ruleset(user_id)
        for listener in self.listeners:
            try:
                result = listener(user_id, content)
                if result is not None:
                    await result
            except Exception:  # a listener never fails the change itself
                log.exception("push rules listener failed")
