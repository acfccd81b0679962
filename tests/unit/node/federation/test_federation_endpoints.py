"""The one table of federation endpoints (``federation/transport/endpoints.py``): every route
of a node's federation listener comes from it, its ACL flags give the prefix list of
https://spec.matrix.org/v1.16/server-server-api/#server-access-control-lists-acls, and the
paths it builds for outbound requests encode each argument as one path segment."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from federation.transport import endpoints as E
from inprocess_federation_support import FedNode, Network
from node.federation import acl_check
from node.federation.membership.wiring import wire as wire_membership

# The spec's list of endpoint prefixes that "MUST be protected" by server ACLs.
SPEC_ACL_PREFIXES = {
    "/_matrix/federation/v1/make_join",
    "/_matrix/federation/v1/make_leave",
    "/_matrix/federation/v1/send_join",
    "/_matrix/federation/v2/send_join",
    "/_matrix/federation/v1/send_leave",
    "/_matrix/federation/v2/send_leave",
    "/_matrix/federation/v1/invite",
    "/_matrix/federation/v2/invite",
    "/_matrix/federation/v1/make_knock",
    "/_matrix/federation/v1/send_knock",
    "/_matrix/federation/v1/state",
    "/_matrix/federation/v1/state_ids",
    "/_matrix/federation/v1/backfill",
    "/_matrix/federation/v1/event_auth",
    "/_matrix/federation/v1/get_missing_events",
}
# The v1 forms Parta neither serves nor calls (superseded by v2 in the spec).
UNUSED_V1 = {
    "/_matrix/federation/v1/send_join",
    "/_matrix/federation/v1/send_leave",
    "/_matrix/federation/v1/invite",
}


def _node() -> FedNode:
    a = FedNode(Network(), "a.test")
    wire_membership(a.fed.fctx, rooms=a.rooms, accounts=a.accounts)
    return a


def test_every_route_of_the_federation_listener_is_in_the_table():
    routes = {(r.method, r.template) for r in _node().fed.fctx.router._routes}
    table = {(ep.method, ep.template) for ep in E.ENDPOINTS}
    assert routes <= table
    # what the in-process node does not serve: media (no media area wired here), the
    # deprecated client-server download, which Parta only calls, and the city staff
    # directory, which only a gateway serves
    assert table - routes == {
        (ep.method, ep.template)
        for ep in (E.MEDIA_DOWNLOAD, E.MEDIA_THUMBNAIL, E.LEGACY_MEDIA_DOWNLOAD, E.PARTA_STAFF)
    }


def test_entry_names_and_routes_are_unique():
    assert len({ep.name for ep in E.ENDPOINTS}) == len(E.ENDPOINTS)
    assert len({(ep.method, ep.template) for ep in E.ENDPOINTS}) == len(E.ENDPOINTS)


def test_acl_prefixes_are_the_spec_list_of_the_endpoints_parta_serves():
    assert set(E.ACL_PROTECTED_PREFIXES) == SPEC_ACL_PREFIXES - UNUSED_V1
    assert acl_check.PROTECTED_PREFIXES == E.ACL_PROTECTED_PREFIXES
    guarded = {ep.name for ep in E.ENDPOINTS if acl_check.protects(ep.template)}
    assert guarded == {ep.name for ep in E.ENDPOINTS if ep.acl_protected}
    assert all("{roomId}" in ep.template for ep in E.ENDPOINTS if ep.acl_protected)


def test_only_the_key_version_and_openid_endpoints_are_unsigned():
    # openid/userinfo: asked by third parties holding a user's OpenID token (spec "OpenID").
    unsigned = {ep.template for ep in E.ENDPOINTS if not ep.signed}
    assert unsigned == {
        "/_matrix/federation/v1/version",
        "/_matrix/federation/v1/openid/userinfo",
        "/_matrix/key/v2/server",
        "/_matrix/key/v2/server/",
        "/_matrix/key/v2/server/{keyId}",
        "/_matrix/key/v2/query",
        "/_matrix/key/v2/query/{serverName}",
    }


def test_paths_encode_each_argument_as_one_segment():
    assert (
        E.EVENT_AUTH.path("!room:a.test", "$ev/id?x")
        == "/_matrix/federation/v1/event_auth/%21room%3Aa.test/%24ev%2Fid%3Fx"
    )
    assert E.SEND.path("txn 1") == "/_matrix/federation/v1/send/txn%201"
    assert (
        E.LEGACY_MEDIA_DOWNLOAD.path("b.test:8448", "m1")
        == "/_matrix/media/v3/download/b.test%3A8448/m1"
    )
    assert E.QUERY_PROFILE.path() == "/_matrix/federation/v1/query/profile"
