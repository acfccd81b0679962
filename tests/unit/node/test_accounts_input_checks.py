"""NUL characters and over-long account strings get a Matrix 400, never a 500.

PostgreSQL refuses NUL in text ("invalid byte sequence"); SQLite stores it.  The fixture makes
the in-memory SQLite database refuse NUL parameters the way PostgreSQL does, so these tests
show what a PostgreSQL node answered (500) and that the checks run before any database work.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import event

from accounts_support import PASSWORD, V3, Node

NUL = "a\x00b"


@pytest.fixture
def node(monkeypatch):
    n = Node(monkeypatch)

    @event.listens_for(n.db.engine, "before_cursor_execute")
    def refuse_nul(conn, cursor, statement, parameters, context, executemany):
        rows = parameters if executemany else [parameters]
        for row in rows:
            values = row.values() if isinstance(row, dict) else row
            if any(isinstance(v, str) and "\x00" in v for v in values):
                raise ValueError("A string literal cannot contain NUL (0x00) characters.")

    n.add_user("anna")
    n.token = n.token_for("anna")
    return n


def _err(result):
    status, body = result
    return status, (body or {}).get("errcode")


@pytest.mark.parametrize(
    "field,value",
    [
        ("identifier", {"type": "m.id.user", "user": NUL}),
        ("identifier", {"type": "m.id.user", "user": "@" + "x" * 300 + ":school.test"}),
        ("user", NUL),
        ("device_id", NUL),
        ("device_id", "D" * 256),
        ("initial_device_display_name", NUL),
        ("initial_device_display_name", "n" * 257),
    ],
)
def test_login_refuses_bad_strings(node, field, value):
    body = {
        "type": "m.login.password",
        "password": PASSWORD,
        "identifier": {"type": "m.id.user", "user": "anna"},
    }
    if field == "user":
        del body["identifier"]
    body[field] = value
    assert _err(node.call("POST", V3 + "/login", body)) == (400, "M_INVALID_PARAM")


def test_login_with_normal_strings_still_works(node):
    status, body = node.login("anna", device_id="D" * 255, initial_device_display_name="n" * 256)
    assert status == 200 and body["device_id"] == "D" * 255


def test_register_refuses_nul_device_fields(node):
    for field in ("device_id", "initial_device_display_name", "username"):
        status, body = node.call("POST", V3 + "/register", {"password": PASSWORD, field: NUL})
        assert (status, body["errcode"]) == (400, "M_INVALID_PARAM"), field


def test_profile_refuses_nul_and_long_avatar(node):
    me = quote("@anna:school.test")
    for key, value in (
        ("displayname", NUL),
        ("avatar_url", "mxc://s/" + NUL),
        ("avatar_url", "mxc://s/" + "x" * 600),
        ("m.tz", NUL),
    ):
        assert _err(
            node.call("PUT", f"{V3}/profile/{me}/{key}", {key: value}, token=node.token)
        ) == (400, "M_INVALID_PARAM"), key
    status, profile = node.call("GET", f"{V3}/profile/{me}")
    assert status == 200 and profile["displayname"] == "anna"
    assert _err(node.call("GET", f"{V3}/profile/{quote('@a' + chr(0) + ':school.test')}")) == (
        400,
        "M_INVALID_PARAM",
    )


def test_devices_refuse_nul(node):
    dev = quote(NUL)
    assert _err(node.call("GET", f"{V3}/devices/{dev}", token=node.token)) == (
        400,
        "M_INVALID_PARAM",
    )
    assert _err(
        node.call("PUT", f"{V3}/devices/{dev}", {"display_name": "x"}, token=node.token)
    ) == (400, "M_INVALID_PARAM")
    devices = node.call("GET", V3 + "/devices", token=node.token)[1]["devices"]
    mine = quote(devices[0]["device_id"])
    assert _err(
        node.call("PUT", f"{V3}/devices/{mine}", {"display_name": NUL}, token=node.token)
    ) == (400, "M_INVALID_PARAM")
    assert _err(
        node.call("POST", V3 + "/delete_devices", {"devices": [NUL]}, token=node.token)
    ) == (400, "M_INVALID_PARAM")
    assert node.call("GET", V3 + "/account/whoami", token=node.token)[0] == 200
