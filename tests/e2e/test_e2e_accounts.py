"""E2E: registration with a registration token, login, whoami, profile, auth error paths.

Real matrix-nio clients against a real node over loopback HTTP, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from nio import (
    AsyncClient,
    LoginResponse,
    ProfileGetResponse,
    ProfileSetDisplayNameResponse,
    RegisterResponse,
    RoomMemberEvent,
    WhoamiResponse,
)

from e2e_helpers import DEFAULT_PASSWORD, api, run, sync_until


def test_register_with_token_and_login(node):
    token = node.registration_token(uses=1)

    async def scenario():
        client = AsyncClient(node.base_url, "")
        try:
            resp = await client.register_with_token("lena", DEFAULT_PASSWORD, token)
            assert isinstance(resp, RegisterResponse), resp
            assert resp.user_id == f"@lena:{node.server_name}"
            assert resp.access_token
        finally:
            await client.close()

        # The token had one use: a second registration with it is refused.
        other = AsyncClient(node.base_url, "")
        try:
            resp = await other.register_with_token("mia", DEFAULT_PASSWORD, token)
            assert not isinstance(resp, RegisterResponse)
        finally:
            await other.close()

        # Log in with the password, as a user's second device would.
        client = AsyncClient(node.base_url, f"@lena:{node.server_name}")
        try:
            resp = await client.login(DEFAULT_PASSWORD, device_name="tablet")
            assert isinstance(resp, LoginResponse), resp
            who = await client.whoami()
            assert isinstance(who, WhoamiResponse), who
            assert who.user_id == f"@lena:{node.server_name}"
            assert who.device_id == resp.device_id
            bad = AsyncClient(node.base_url, f"@lena:{node.server_name}")
            wrong = await bad.login("not the password")
            await bad.close()
            assert not isinstance(wrong, LoginResponse)
            assert wrong.status_code == "M_FORBIDDEN"
        finally:
            await client.close()

    run(scenario())


def test_open_registration_is_off_by_default(node):
    status, body = api(
        node,
        "POST",
        "/_matrix/client/v3/register",
        json_body={
            "username": "intruder",
            "password": DEFAULT_PASSWORD,
            "auth": {"type": "m.login.dummy"},
        },
    )
    assert status in (401, 403), body
    if status == 401:  # UIA answer: dummy is not among the offered flows
        stages = {s for flow in body["flows"] for s in flow["stages"]}
        assert "m.login.registration_token" in stages
        assert stages != {"m.login.dummy"}
    status, _ = api(
        node,
        "POST",
        "/_matrix/client/v3/login",
        json_body={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "intruder"},
            "password": DEFAULT_PASSWORD,
        },
    )
    assert status == 403


def test_cli_user_add_then_login(node):
    user_id = node.add_user("frau.weber", role="teacher", display_name="Frau Weber")

    async def scenario():
        client = await node.login(user_id)
        try:
            profile = await client.get_profile(user_id)
            assert isinstance(profile, ProfileGetResponse), profile
            assert profile.displayname == "Frau Weber"
        finally:
            await client.close()

    run(scenario())


def test_bad_token_is_401_unknown_token(node):
    status, body = api(node, "GET", "/_matrix/client/v3/account/whoami", token="not-a-token")
    assert status == 401
    assert body["errcode"] == "M_UNKNOWN_TOKEN"
    assert body.get("soft_logout", False) is False
    status, body = api(node, "GET", "/_matrix/client/v3/account/whoami")
    assert status == 401 and body["errcode"] == "M_MISSING_TOKEN"


def test_logout_invalidates_token(node):
    reg = node.register("leaver")
    token = reg["access_token"]
    assert api(node, "GET", "/_matrix/client/v3/account/whoami", token=token)[0] == 200
    assert api(node, "POST", "/_matrix/client/v3/logout", token=token, json_body={})[0] == 200
    status, body = api(node, "GET", "/_matrix/client/v3/account/whoami", token=token)
    assert status == 401 and body["errcode"] == "M_UNKNOWN_TOKEN"


def test_bad_json_is_400_not_json(node):
    token = node.register("jsonuser")["access_token"]
    status, body = api(
        node,
        "POST",
        "/_matrix/client/v3/createRoom",
        token=token,
        raw_body=b'{"name": "oops"',
        headers={"Content-Type": "application/json"},
    )
    assert status == 400 and body["errcode"] == "M_NOT_JSON"
    status, body = api(
        node,
        "POST",
        "/_matrix/client/v3/createRoom",
        token=token,
        raw_body=b'["not", "an", "object"]',
        headers={"Content-Type": "application/json"},
    )
    assert status == 400 and body["errcode"] == "M_BAD_JSON"


def test_unknown_endpoint_is_404_unrecognized(node):
    status, body = api(node, "GET", "/_matrix/client/v3/no/such/endpoint")
    assert status == 404 and body["errcode"] == "M_UNRECOGNIZED"


def test_profile_change_visible_to_room_member(node):
    async def scenario():
        anna = await node.new_client("anna")
        ben = await node.new_client("ben")
        try:
            room_id = (await anna.room_create(name="Klasse 5b", invite=[ben.user_id])).room_id
            assert (await ben.join(room_id)).room_id == room_id
            await ben.sync(timeout=0)

            resp = await anna.set_displayname("Anna Schmidt")
            assert isinstance(resp, ProfileSetDisplayNameResponse), resp
            profile = await ben.get_profile(anna.user_id)
            assert isinstance(profile, ProfileGetResponse), profile
            assert profile.displayname == "Anna Schmidt"

            # The change reaches the room as a member event (what clients show).
            def renamed(resp):
                room = resp.rooms.join.get(room_id)
                events = list(room.timeline.events) + list(room.state) if room else []
                return any(
                    isinstance(e, RoomMemberEvent)
                    and e.state_key == anna.user_id
                    and e.content.get("displayname") == "Anna Schmidt"
                    for e in events
                )

            await sync_until(ben, renamed)
        finally:
            await anna.close()
            await ben.close()

    run(scenario())
