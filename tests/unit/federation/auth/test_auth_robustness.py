"""Malformed content never crashes the rules: the outcome is allow or ``AuthError``."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authkit import ALICE, BOB, make_room
from federation.auth import AuthError
from federation.room_versions import V10, V11, V12

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
keys = st.sampled_from(
    [
        "membership",
        "third_party_invite",
        "join_authorised_via_users_server",
        "users",
        "events",
        "notifications",
        "ban",
        "kick",
        "invite",
        "users_default",
        "signed",
        "additional_creators",
        "m.federate",
    ]
)
contents = st.dictionaries(st.one_of(keys, st.text(max_size=5)), json_values, max_size=5)
memberships = st.sampled_from(["join", "invite", "leave", "ban", "knock", "x"])

ROOMS = {
    v.identifier: make_room(v, join_rule="restricted", members={BOB: "join"})
    for v in (V10, V11, V12)
}


def run(room, event):
    try:
        room.check(event, is_signed_by=lambda ev, server: server == "a.example")
    except AuthError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    version=st.sampled_from(sorted(ROOMS)),
    content=contents,
    membership=memberships,
    nested=json_values,
)
def test_member_events_with_arbitrary_content(version, content, membership, nested):
    room = ROOMS[version]
    content = dict(content, membership=membership)
    content.setdefault("third_party_invite", {"signed": nested})
    run(
        room,
        room.member(
            BOB, BOB, membership, **{k: v for k, v in content.items() if k != "membership"}
        ),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(version=st.sampled_from(sorted(ROOMS)), content=contents)
def test_power_levels_events_with_arbitrary_content(version, content):
    room = ROOMS[version]
    run(room, room.power_levels(ALICE, **content))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    version=st.sampled_from(sorted(ROOMS)),
    content=contents,
    room_version=json_values,
    prev=st.one_of(st.just([]), json_values),
)
def test_create_events_with_arbitrary_content(version, content, room_version, prev):
    room = ROOMS[version]
    content = dict(content, room_version=room_version)
    run(room, room.build("m.room.create", ALICE, content, state_key="", prev=prev, auth=[]))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(version=st.sampled_from(sorted(ROOMS)), auth=json_values)
def test_malformed_auth_events_lists(version, auth):
    room = ROOMS[version]
    run(room, room.build("m.room.message", BOB, {"body": "x"}, auth=auth))
