"""OpenID (client-server and server-server API "OpenID"): a user's token, then what a third
party learns from the federation listener's ``openid/userinfo`` with it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import select
from support.clocks import FakeClock
from support.db import InlineDB, run
from support.deferreds import result_of

from federation.errors import MatrixError
from federation.transport import endpoints as E
from node.accounts import openid as openid_store
from node.accounts.api import openid as openid_api
from node.accounts.store import deactivate_user, insert_user
from node.accounts.tokens import hash_token
from node.federation.server import openid as openid_fed
from node.http.request import ApiRequest, Requester
from node.http.router import Router
from schema.client_misc import openid_tokens

ALICE = "@alice:school.test"
BOB = "@bob:school.test"
REQUEST = "/_matrix/client/v3/user/{}/openid/request_token"


class PublicRoutes:
    """The part of ``FederationRoutes`` an unsigned endpoint uses."""

    def __init__(self) -> None:
        self.router = Router()

    def add_public(self, method, template, handler):
        self.router.add(method, template, handler, auth=False)

    def add(self, *_a):  # pragma: no cover - a signed registration would be a bug
        raise AssertionError("openid/userinfo must not require X-Matrix signatures")


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.db = db = InlineDB()
        for name in ("alice", "bob"):
            run(
                db,
                insert_user,
                user_id=f"@{name}:school.test",
                localpart=name,
                role="pupil",
                displayname=name,
                password_hash=None,
                now_ms=1,
            )
        ctx = SimpleNamespace(db=db, clock=self.clock)
        accounts = SimpleNamespace(
            db=db, clock=self.clock, config=SimpleNamespace(server_name="school.test")
        )
        self.client = Router()
        openid_api.register(self.client, accounts)
        self.fed = PublicRoutes()
        openid_fed.register(self.fed, SimpleNamespace(ctx=ctx))

    def _call(self, router, method, path, user=None, body=b"", query=None):
        route, params, _ = router.match(method, path)
        assert route is not None
        args = {k: [v] for k, v in (query or {}).items()}
        req = ApiRequest(method, path, args, {}, body, "127.0.0.1")
        if user is not None:
            req.requester = Requester(user, "DEV")
        try:
            return result_of(route.handler(req, **params))
        except MatrixError as exc:
            return exc.http_status, exc.to_json()

    def request_token(self, user=ALICE, for_user=None, body=b"{}"):
        return self._call(self.client, "POST", REQUEST.format(for_user or user), user, body)

    def userinfo(self, token):
        query = {} if token is None else {"access_token": token}
        return self._call(self.fed.router, "GET", E.OPENID_USERINFO.template, query=query)


@pytest.fixture
def world():
    return World()


def test_token_names_its_user_to_a_third_party_until_it_expires(world):
    status, creds = world.request_token()
    assert status == 200
    assert creds["token_type"] == "Bearer"
    assert creds["matrix_server_name"] == "school.test"
    assert creds["expires_in"] == 3600
    assert world.userinfo(creds["access_token"]) == (200, {"sub": ALICE})
    world.clock.advance(3600 * 1000)
    status, err = world.userinfo(creds["access_token"])
    assert (status, err["errcode"]) == (401, "M_UNKNOWN_TOKEN")


def test_unknown_missing_or_absurd_tokens_are_401(world):
    for token in (None, "", "nope", "x" * 100_000):
        status, err = world.userinfo(token)
        assert (status, err["errcode"]) == (401, "M_UNKNOWN_TOKEN"), token


def test_only_for_oneself_and_the_body_is_an_object(world):
    status, err = world.request_token(user=BOB, for_user=ALICE)
    assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
    status, err = world.request_token(body=b"[]")
    assert (status, err["errcode"]) == (400, "M_BAD_JSON")
    assert world.request_token(body=b"")[0] == 200  # some clients send no body


def test_tokens_are_stored_hashed(world):
    _, creds = world.request_token()
    rows = run(world.db, lambda conn: [tuple(r) for r in conn.execute(select(openid_tokens))])
    assert len(rows) == 1
    assert creds["access_token"] not in rows[0]
    assert rows[0][0] == hash_token(creds["access_token"])


def test_live_tokens_per_user_are_capped(world, monkeypatch):
    monkeypatch.setattr(openid_store, "MAX_TOKENS_PER_USER", 3)
    for _ in range(3):
        assert world.request_token()[0] == 200
    status, err = world.request_token()
    assert (status, err["errcode"]) == (429, "M_LIMIT_EXCEEDED")
    assert world.request_token(user=BOB)[0] == 200  # another user is not affected
    world.clock.advance(3600 * 1000)  # expired tokens no longer count
    assert world.request_token()[0] == 200


def test_a_deactivated_users_tokens_stop_answering(world):
    _, creds = world.request_token()
    assert world.userinfo(creds["access_token"]) == (200, {"sub": ALICE})
    run(world.db, deactivate_user, ALICE, False)
    status, err = world.userinfo(creds["access_token"])
    assert (status, err["errcode"]) == (401, "M_UNKNOWN_TOKEN")
