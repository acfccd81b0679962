"""Helpers for the search area's unit tests (not a test module): a rooms service and the
search area wired onto one router, in-process on ``support.db.InlineDB``."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support.db import InlineDB

import schema.search  # noqa: F401 - registers the tables before InlineDB creates them
from federation.keys import SigningKey
from node.search import wiring
from rooms_support import Api, make_service, uid

V3 = "/_matrix/client/v3"
ALICE, BOB, CAROL = uid("alice"), uid("bob"), uid("carol")
KEY = SigningKey("t1", b"\x01" * 32)


class NoReactor:
    def callWhenRunning(self, fn, *args):  # the tests run the backfill themselves
        pass


class SearchApi(Api):
    """The rooms API plus ``POST /search`` on one router."""

    def __init__(self, db: InlineDB | None = None) -> None:
        db = db or InlineDB()
        self.db = db
        service = make_service(db, signing_key=KEY)
        super().__init__(service)
        ctx = SimpleNamespace(db=db, router=self.router, signing_key=KEY, reactor=NoReactor())
        self.search_service = wiring.wire(ctx, rooms=service)

    def room(self, user=ALICE, **body) -> str:
        return self.call("POST", V3 + "/createRoom", user, body)[1]["room_id"]

    def say(self, room, user, text, txn=None) -> str:
        txn = txn or f"t{id(text)}-{len(text)}-{text[:20]}"
        return self.call(
            "PUT",
            f"{V3}/rooms/{room}/send/m.room.message/{txn}",
            user,
            {"msgtype": "m.text", "body": text},
        )[1]["event_id"]

    def join(self, room, user) -> None:
        self.call("POST", f"{V3}/rooms/{room}/join", user, {})

    def leave(self, room, user) -> None:
        self.call("POST", f"{V3}/rooms/{room}/leave", user, {})

    def invite(self, room, user, target) -> None:
        self.call("POST", f"{V3}/rooms/{room}/invite", user, {"user_id": target})

    def state(self, room, user, etype, content, key="") -> str:
        return self.call("PUT", f"{V3}/rooms/{room}/state/{etype}/{key}", user, content)[1][
            "event_id"
        ]

    def search(self, user, term=None, next_batch=None, **criteria):
        crit = dict(criteria)
        if term is not None:
            crit["search_term"] = term
        query = {"next_batch": next_batch} if next_batch is not None else None
        return self.call(
            "POST", V3 + "/search", user, {"search_categories": {"room_events": crit}}, query
        )

    def found(self, user, term, **criteria) -> list[str]:
        status, body = self.search(user, term, **criteria)
        assert status == 200, body
        return [
            r["result"]["content"].get("body")
            for r in body["search_categories"]["room_events"]["results"]
        ]
