"""Discovery, TURN, third-party look-ups and whois: what a client sees from each endpoint."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from support.clocks import FakeClock
from support.deferreds import result_of

from federation.errors import MatrixError
from node.accounts.api import admin_whois, thirdparty, turn, wellknown
from node.config import Config, ConfigError, SupportConfig, VoipConfig
from node.http.request import ApiRequest, Requester
from node.http.router import Router

ALICE = "@alice:school.test"
BOB = "@bob:school.test"
DIRECTOR = "@director:school.test"
V3 = "/_matrix/client/v3"


class FakeAccounts:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.clock = FakeClock(1_700_000_000_000)
        self.roles = {ALICE: "pupil", BOB: "pupil", DIRECTOR: "director"}
        self.devices = {
            ALICE: [
                {"device_id": "PHONE", "last_seen_ip": "10.0.0.7", "last_seen_ts": 1234},
                {"device_id": "NEW"},
            ],
            BOB: [],
            DIRECTOR: [],
        }

    def role_of(self, user_id):
        return self.roles.get(user_id)

    async def user_exists(self, user_id):
        return user_id in self.roles

    async def list_devices(self, user_id):
        return self.devices[user_id]


def make_api(**config):
    cfg = Config(**config)
    accounts = FakeAccounts(cfg)
    router = Router()
    for module in (wellknown, turn, thirdparty, admin_whois):
        module.register(router, accounts)

    def call(method, path, user=ALICE, query=None):
        route, params, _ = router.match(method, path)
        assert route is not None, path
        args = {k: [v] for k, v in (query or {}).items()}
        req = ApiRequest(method, path, args, {}, b"", "127.0.0.1")
        req.requester = Requester(user, "DEV")
        try:
            return result_of(route.handler(req, **params))
        except MatrixError as exc:
            return exc.http_status, exc.to_json()

    return call


# --- /.well-known and auth metadata -----------------------------------------------------------
def test_support_is_404_until_configured_then_the_configured_contacts():
    status, err = make_api()("GET", "/.well-known/matrix/support")
    assert (status, err["errcode"]) == (404, "M_NOT_FOUND")
    contacts = [{"matrix_id": "@it:school.test", "role": "m.role.admin"}]
    call = make_api(support=SupportConfig(contacts=contacts, page="https://school.test/help"))
    assert call("GET", "/.well-known/matrix/support") == (
        200,
        {"contacts": contacts, "support_page": "https://school.test/help"},
    )
    assert make_api(support=SupportConfig(page="https://x.test"))(
        "GET", "/.well-known/matrix/support"
    ) == (200, {"support_page": "https://x.test"})


@pytest.mark.parametrize(
    "contact",
    [{"role": "m.role.admin"}, {"matrix_id": "@a:b"}, "admin", {"matrix_id": 1, "role": "x"}],
)
def test_support_contacts_are_checked_at_start(contact):
    with pytest.raises(ConfigError, match="support.contacts"):
        SupportConfig(contacts=[contact])


def test_policy_server_and_oauth_metadata_say_not_supported():
    call = make_api()
    status, err = call("GET", "/.well-known/matrix/policy_server")
    assert (status, err["errcode"]) == (404, "M_NOT_FOUND")
    status, err = call("GET", "/_matrix/client/v1/auth_metadata")
    assert (status, err["errcode"]) == (404, "M_UNRECOGNIZED")


# --- TURN ---------------------------------------------------------------------------------------
def test_no_turn_server_configured_answers_an_empty_object():
    assert make_api()("GET", V3 + "/voip/turnServer") == (200, {})
    only_uris = make_api(voip=VoipConfig(turn_uris=["turn:t.test:3478"]))
    assert only_uris("GET", V3 + "/voip/turnServer") == (200, {})


def test_turn_credentials_follow_the_turn_rest_api_scheme():
    uris = ["turn:turn.school.test:3478?transport=udp", "turns:turn.school.test:5349"]
    call = make_api(voip=VoipConfig(turn_uris=uris, turn_shared_secret="s3cret"))
    status, body = call("GET", V3 + "/voip/turnServer")
    assert status == 200
    assert body["uris"] == uris and body["ttl"] == 86_400
    expiry = 1_700_000_000 + 86_400
    assert body["username"] == f"{expiry}:{ALICE}"
    digest = hmac.new(b"s3cret", body["username"].encode(), hashlib.sha1).digest()
    assert base64.b64decode(body["password"]) == digest
    # Each user gets their own credentials.
    assert call("GET", V3 + "/voip/turnServer", user=BOB)[1]["password"] != body["password"]


# --- third-party networks ------------------------------------------------------------------------
def test_third_party_lookups_without_bridges():
    call = make_api()
    base = V3 + "/thirdparty"
    assert call("GET", base + "/protocols") == (200, {})
    for path in ("/protocol/irc", "/location/irc", "/user/irc"):
        status, err = call("GET", base + path, query={"network": "libera"})
        assert (status, err["errcode"]) == (404, "M_NOT_FOUND"), path
    assert call("GET", base + "/location", query={"alias": "#a:b"}) == (200, [])
    assert call("GET", base + "/user", query={"userid": "@a:b"}) == (200, [])
    status, err = call("GET", base + "/location")
    assert (status, err["errcode"]) == (400, "M_MISSING_PARAM")
    status, err = call("GET", base + "/user")
    assert (status, err["errcode"]) == (400, "M_MISSING_PARAM")


def test_a_registered_protocol_is_answered_with_bounded_queries():
    class OneBridge(thirdparty.NoBridges):
        def protocols(self):
            return {
                "irc": {
                    "user_fields": ["nick"],
                    "location_fields": [],
                    "icon": "mxc://x/y",
                    "field_types": {},
                    "instances": [],
                }
            }

        async def users(self, protocol, fields):
            return [
                {
                    "userid": "@irc_" + fields["nick"] + ":school.test",
                    "protocol": protocol,
                    "fields": fields,
                }
            ]

    router = Router()
    thirdparty.register(router, None, OneBridge())

    def call(path, query):
        route, params, _ = router.match("GET", path)
        req = ApiRequest("GET", path, {k: [v] for k, v in query.items()}, {}, b"", "1")
        req.requester = Requester(ALICE, "D")
        try:
            return result_of(route.handler(req, **params))
        except MatrixError as exc:
            return exc.http_status, exc.to_json()

    assert call(V3 + "/thirdparty/protocol/irc", {})[1]["user_fields"] == ["nick"]
    status, users = call(V3 + "/thirdparty/user/irc", {"nick": "bob"})
    assert status == 200 and users[0]["userid"] == "@irc_bob:school.test"
    many = {f"f{i}": "v" for i in range(thirdparty.MAX_FIELDS + 1)}
    assert call(V3 + "/thirdparty/user/irc", many)[1]["errcode"] == "M_INVALID_PARAM"
    assert call(V3 + "/thirdparty/user/irc", {"nick": "x" * 5000})[1]["errcode"] == (
        "M_INVALID_PARAM"
    )


# --- whois ---------------------------------------------------------------------------------------
def test_whois_oneself_lists_devices_and_last_connections():
    status, body = make_api()("GET", V3 + f"/admin/whois/{ALICE}")
    assert status == 200
    assert body == {
        "user_id": ALICE,
        "devices": {
            "PHONE": {"sessions": [{"connections": [{"ip": "10.0.0.7", "last_seen": 1234}]}]},
            "NEW": {"sessions": [{"connections": []}]},
        },
    }


def test_whois_others_only_for_server_admins_without_existence_leaks():
    call = make_api()
    for target in (ALICE, "@nobody:school.test"):
        status, err = call("GET", V3 + f"/admin/whois/{target}", user=BOB)
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
    status, body = call("GET", V3 + f"/admin/whois/{ALICE}", user=DIRECTOR)
    assert status == 200 and set(body["devices"]) == {"PHONE", "NEW"}
    status, err = call("GET", V3 + "/admin/whois/@nobody:school.test", user=DIRECTOR)
    assert (status, err["errcode"]) == (404, "M_NOT_FOUND")


@pytest.mark.parametrize(
    "voip", [{"turn_uris": ["stun:x.test"]}, {"turn_uris": [5]}, {"turn_user_lifetime_s": 0}]
)
def test_turn_settings_are_checked_at_start(voip):
    with pytest.raises(ConfigError, match="voip"):
        VoipConfig(**voip)
