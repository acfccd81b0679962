"""E2E: hostile federation traffic at the raw HTTP level.

A fake homeserver in the test process (bench/federation_env.py ``FakeServer``) has a real
ed25519 signing key, serves it on ``/_matrix/key/v2/server`` over HTTPS (certificate from the
test CA) and joins a public room on node A through make_join/send_join as ``@mallory``.  It
then sends transactions signed with X-Matrix (federation.transport.xmatrix) carrying:

* a valid PDU (the positive control: accepted, seen by A's client);
* a PDU with a forged signature (dropped);
* a PDU whose content does not match its content hash (stored redacted);
* PDUs whose sender belongs to another server than the origin (rejected);
* PDUs the auth rules forbid (a power-level grab by mallory, a message from a non-member);
* a replayed transaction (same txnId -> same response, nothing duplicated);
* unsigned / mis-signed / misdirected requests (401 M_UNAUTHORIZED, nothing processed).

After each, A's and B's clients still chat in the room and its state is unchanged.
Spec: server-server API "Authentication", "Transactions", "Checks performed on receipt of a
PDU", "Validating hashes and signatures on received events".
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

import pytest

from e2e_helpers import run
from fed_fixtures import fake_server, fed_ca, fed_cluster  # noqa: F401 - pytest fixtures
from fed_harness import (
    Account,
    FakeServer,
    client_api,
    close_all,
    send_text,
    setup_room,
    wait_for,
    wait_for_bodies,
)
from federation.keys import SigningKey
from federation_env import FakeRoom, q


@pytest.fixture(scope="module")
def world(fed_cluster, fake_server: FakeServer):  # noqa: F811 - the pytest fixture imported above
    a, b = fed_cluster.create(2)
    alice = Account(a, "alice")
    bob = Account(b, "bob")
    mallory = f"@mallory:{fake_server.server_name}"

    async def setup():
        wa, wb = await alice.watcher(), await bob.watcher()
        try:
            from nio import RoomPreset

            room_id = await setup_room(wa, wb, name="Offener Raum", preset=RoomPreset.public_chat)
        finally:
            await close_all(wa, wb)
        return room_id

    room_id = run(setup(), timeout=300)
    room = FakeRoom.join(fake_server, a.server_name, room_id, mallory)
    return {
        "a": a,
        "b": b,
        "alice": alice,
        "bob": bob,
        "room": room,
        "fake": fake_server,
        "mallory": mallory,
        "room_id": room_id,
    }


# --- helpers -------------------------------------------------------------------------------
def _get_event(account: Account, room_id: str, event_id: str):
    return _api(account, "GET", f"/_matrix/client/v3/rooms/{q(room_id)}/event/{q(event_id)}")


def _api(account: Account, method: str, path: str, body=None):
    class _C:  # client_api needs .homeserver and .access_token
        homeserver = account.node.base_url
        access_token = account.access_token

    return client_api(_C, method, path, body)


def _state_ids(account: Account, room_id: str) -> dict:
    status, body = _api(account, "GET", f"/_matrix/client/v3/rooms/{q(room_id)}/state")
    assert status == 200, body
    return {(e["type"], e["state_key"]): e["event_id"] for e in body}


async def _still_chatting(world, tag: str) -> None:
    """A and B exchange a message each way in the room."""
    wa, wb = await world["alice"].watcher(), await world["bob"].watcher()
    try:
        room_id = world["room_id"]
        await send_text(wa, room_id, f"A nach {tag}")
        await wait_for_bodies(wb, room_id, [f"A nach {tag}"])
        await send_text(wb, room_id, f"B nach {tag}")
        await wait_for_bodies(wa, room_id, [f"B nach {tag}"])
    finally:
        await close_all(wa, wb)


def _assert_not_stored(world, event_id: str) -> None:
    status, body = _get_event(world["alice"], world["room_id"], event_id)
    assert status == 404, f"rejected event {event_id} is served to A's client: {status} {body}"


def _result(reply, event_id):
    assert isinstance(reply, dict) and isinstance(reply.get("pdus"), dict), reply
    assert event_id in reply["pdus"], f"no per-PDU result for {event_id}: {reply}"
    return reply["pdus"][event_id]


# --- tests (module order: positive control first) ------------------------------------------
def test_valid_pdu_from_fake_server_is_accepted(world):
    room, room_id = world["room"], world["room_id"]
    ev = room.build(
        type="m.room.message",
        sender=world["mallory"],
        content={"msgtype": "m.text", "body": "Hallo, ich bin Mallory"},
    )
    _txn, status, reply = room.send([ev.pdu])
    assert status == 200, reply
    assert _result(reply, ev.event_id) == {}, reply
    room.advance(ev)
    status, body = _get_event(world["alice"], room_id, ev.event_id)
    assert status == 200 and body["content"]["body"] == "Hallo, ich bin Mallory", body

    async def scenario():
        wa = await world["alice"].watcher()
        try:
            await wait_for_bodies(wa, room_id, ["Hallo, ich bin Mallory"])
        finally:
            await close_all(wa)

    run(scenario())


def test_missing_prev_events_fetched_by_other_server(world):
    """B never got mallory's message; A's next event points at it, so B fetches it from A
    (get_missing_events) and can serve it to its client."""
    room, room_id = world["room"], world["room_id"]
    mallory_event = room.tip
    run(_still_chatting(world, "Mallory"))

    def b_has_it():
        status, body = _get_event(world["bob"], room_id, mallory_event)
        return status == 200 and body.get("sender") == world["mallory"]

    run(wait_for(b_has_it, what="B has mallory's event via A"))


def test_forged_signature_is_dropped(world):
    room, room_id = world["room"], world["room_id"]
    before = _state_ids(world["alice"], room_id)
    # Same key ID as the fake server's real key, different private key.
    impostor = SigningKey(world["fake"].signing_key.version, secrets.token_bytes(32))
    ev = room.build(
        type="m.room.message",
        sender=world["mallory"],
        content={"msgtype": "m.text", "body": "gefälschte Signatur"},
        signing_key=impostor,
    )
    _txn, status, reply = room.send([ev.pdu])
    assert status == 200, reply
    assert "error" in _result(reply, ev.event_id), reply
    _assert_not_stored(world, ev.event_id)
    # A forged state event does not change the state either.
    ev2 = room.build(
        type="m.room.topic",
        sender=world["mallory"],
        state_key="",
        content={"topic": "gefälscht"},
        signing_key=impostor,
    )
    _txn, status, reply = room.send([ev2.pdu])
    assert status == 200 and "error" in _result(reply, ev2.event_id), reply
    _assert_not_stored(world, ev2.event_id)
    assert _state_ids(world["alice"], room_id) == before
    run(_still_chatting(world, "Signatur"))


def test_bad_content_hash_is_stored_redacted(world):
    room, room_id = world["room"], world["room_id"]
    ev = room.build(
        type="m.room.message",
        sender=world["mallory"],
        content={"msgtype": "m.text", "body": "ursprünglich"},
    )
    pdu = dict(ev.pdu)
    pdu["content"] = {"msgtype": "m.text", "body": "manipuliert"}  # hash no longer matches
    _txn, status, reply = room.send([pdu])
    assert status == 200, reply
    _result(reply, ev.event_id)
    room.advance(ev)
    status, body = _get_event(world["alice"], room_id, ev.event_id)
    assert status == 200, f"the event should be kept, redacted: {status} {body}"
    assert body["content"] == {}, f"content of a hash-mismatched event must be redacted: {body}"

    async def scenario():
        wa = await world["alice"].watcher()
        try:
            await send_text(wa, room_id, "nach Hash")
            await wait_for_bodies(wa, room_id, ["nach Hash"])
            assert "manipuliert" not in wa.bodies(room_id)
            assert "ursprünglich" not in wa.bodies(room_id)
        finally:
            await close_all(wa)

    run(scenario())
    run(_still_chatting(world, "Hash"))


@pytest.mark.parametrize("victim", ["alice", "bob"])
def test_sender_from_another_server_is_rejected(world, victim):
    room = world["room"]
    impersonated = world[victim].user_id
    ev = room.build(
        type="m.room.message",
        sender=impersonated,
        content={"msgtype": "m.text", "body": f"Ich bin {victim} (nicht)"},
    )
    _txn, status, reply = room.send([ev.pdu])
    assert status == 200, reply
    assert "error" in _result(reply, ev.event_id), reply
    _assert_not_stored(world, ev.event_id)
    run(_still_chatting(world, f"Absender {victim}"))


def test_events_forbidden_by_auth_rules_are_rejected(world):
    room, room_id, fake = world["room"], world["room_id"], world["fake"]
    before = _state_ids(world["alice"], room_id)
    status, pl = _api(
        world["alice"], "GET", f"/_matrix/client/v3/rooms/{q(room_id)}/state/m.room.power_levels/"
    )
    assert status == 200, pl

    # Mallory (power 0) makes himself admin.
    grab = dict(pl)
    grab["users"] = {**pl.get("users", {}), world["mallory"]: 100}
    ev = room.build(type="m.room.power_levels", sender=world["mallory"], state_key="", content=grab)
    _txn, status, reply = room.send([ev.pdu])
    assert status == 200, reply
    _result(reply, ev.event_id)
    _assert_not_stored(world, ev.event_id)

    # A user of the fake server who never joined sends a message.
    stranger = f"@stranger:{fake.server_name}"
    ev2 = room.build(
        type="m.room.message", sender=stranger, content={"msgtype": "m.text", "body": "ungebeten"}
    )
    _txn, status, reply = room.send([ev2.pdu])
    assert status == 200, reply
    _result(reply, ev2.event_id)
    _assert_not_stored(world, ev2.event_id)

    # Mallory kicks alice (power 100) - not allowed either.
    ev3 = room.build(
        type="m.room.member",
        sender=world["mallory"],
        state_key=world["alice"].user_id,
        content={"membership": "leave"},
    )
    _txn, status, reply = room.send([ev3.pdu])
    assert status == 200, reply
    _result(reply, ev3.event_id)
    _assert_not_stored(world, ev3.event_id)

    assert _state_ids(world["alice"], room_id) == before
    assert (
        _state_ids(world["bob"], room_id)[("m.room.power_levels", "")]
        == before[("m.room.power_levels", "")]
    )
    run(_still_chatting(world, "Auth"))


def test_replayed_transaction_is_idempotent(world):
    room, room_id = world["room"], world["room_id"]
    ev = room.build(
        type="m.room.message",
        sender=world["mallory"],
        content={"msgtype": "m.text", "body": "genau einmal"},
    )
    txn = f"replay-{secrets.token_hex(4)}"
    body = {
        "origin": world["fake"].server_name,
        "origin_server_ts": 1_700_000_000_000,
        "pdus": [ev.pdu],
    }
    path = f"/_matrix/federation/v1/send/{q(txn)}"
    fake, dest = world["fake"], world["a"].server_name
    first = fake.request(dest, "PUT", path, body)
    assert first[0] == 200 and _result(first[1], ev.event_id) == {}, first
    room.advance(ev)
    second = fake.request(dest, "PUT", path, body)
    assert second == first, f"replay answered differently: {first} vs {second}"
    # The same PDU again in a new transaction is not a new event either.
    _txn, status, reply = room.send([ev.pdu])
    assert status == 200, reply

    async def scenario():
        wa = await world["alice"].watcher()
        try:
            await send_text(wa, room_id, "nach Wiederholung")
            await wait_for_bodies(wa, room_id, ["nach Wiederholung"])
            # Count in the room's history (initial sync may not reach back that far).
            from nio import RoomMessagesResponse

            resp = await wa.client.room_messages(room_id, start=wa.client.next_batch, limit=50)
            assert isinstance(resp, RoomMessagesResponse), resp
            ids = [e.event_id for e in resp.chunk]
            assert ids.count(ev.event_id) == 1, ids
        finally:
            await close_all(wa)

    run(scenario())


def test_unsigned_and_missigned_requests_are_refused(world):
    room, room_id, fake = world["room"], world["room_id"], world["fake"]
    dest = world["a"].server_name

    def attempt(**kw):
        ev = room.build(
            type="m.room.message",
            sender=world["mallory"],
            content={"msgtype": "m.text", "body": f"unsigniert {secrets.token_hex(3)}"},
        )
        body = {"origin": fake.server_name, "origin_server_ts": 1_700_000_000_000, "pdus": [ev.pdu]}
        path = f"/_matrix/federation/v1/send/{q('bad-' + secrets.token_hex(4))}"
        status, reply = fake.request(dest, "PUT", path, body, **kw)
        assert status == 401, (kw, status, reply)
        assert reply.get("errcode") == "M_UNAUTHORIZED", (kw, reply)
        _assert_not_stored(world, ev.event_id)

    attempt(sign=False)
    attempt(signing_key=SigningKey(fake.signing_key.version, secrets.token_bytes(32)))
    attempt(signing_key=SigningKey.generate())  # a key the server never had
    attempt(sign_destination="localhost:1")  # signed for someone else
    attempt(
        headers={"Authorization": 'X-Matrix origin="nonsense",key="ed25519:x",sig="x"'}, sign=False
    )

    # A signed body that is altered afterwards (signature covers the old content).
    from federation.transport.xmatrix import sign_request

    ev = room.build(
        type="m.room.message",
        sender=world["mallory"],
        content={"msgtype": "m.text", "body": "Body getauscht"},
    )
    path = f"/_matrix/federation/v1/send/{q('swap-' + secrets.token_hex(4))}"
    signed_body = {"origin": fake.server_name, "origin_server_ts": 1, "pdus": []}
    header = sign_request("PUT", path, fake.server_name, dest, fake.signing_key, signed_body)
    sent_body = {"origin": fake.server_name, "origin_server_ts": 1, "pdus": [ev.pdu]}
    status, reply = fake.request(
        dest, "PUT", path, sent_body, sign=False, headers={"Authorization": header}
    )
    assert status == 401 and reply.get("errcode") == "M_UNAUTHORIZED", (status, reply)
    _assert_not_stored(world, ev.event_id)

    # Read endpoints need signatures too.
    status, reply = fake.request(
        dest,
        "GET",
        f"/_matrix/federation/v1/state_ids/{q(room_id)}?event_id={quote(room.tip)}",
        sign=False,
    )
    assert status == 401 and reply.get("errcode") == "M_UNAUTHORIZED", (status, reply)
    run(_still_chatting(world, "unsigniert"))


def test_read_endpoints_for_a_member_server(world):
    """The fake server, a member of the room, reads it over federation (spec: server-server
    API "Retrieving events", "Backfilling", "Querying for information", "Public Room
    Directory", "Querying Keys Through Another Server")."""
    from federation.events.model import Event
    from federation.keys import VerifyKey
    from federation.signing import verify_json

    room, room_id, fake = world["room"], world["room_id"], world["fake"]
    a, b = world["a"], world["b"]
    dest = a.server_name

    def get(path):
        return fake.request(dest, "GET", path)

    status, body = get("/_matrix/federation/v1/version")
    assert status == 200 and body["server"]["name"], body

    # event/{eventId}: our own accepted message, as a PDU with the same ID.
    status, body = get(f"/_matrix/federation/v1/event/{q(room.tip)}")
    assert status == 200 and body["origin"] == dest, body
    assert [Event(p, room.version).event_id for p in body["pdus"]] == [room.tip]

    # state_ids / state at our event: the room's create, power levels and our join.
    status, ids = get(f"/_matrix/federation/v1/state_ids/{q(room_id)}?event_id={q(room.tip)}")
    assert status == 200, ids
    create_id = room.state[("m.room.create", "")]
    for key in (
        ("m.room.create", ""),
        ("m.room.power_levels", ""),
        ("m.room.member", world["mallory"]),
    ):
        assert room.state[key] in ids["pdu_ids"], (key, ids)
    status, full = get(f"/_matrix/federation/v1/state/{q(room_id)}?event_id={q(room.tip)}")
    assert status == 200, full
    assert sorted(Event(p, room.version).event_id for p in full["pdus"]) == sorted(ids["pdu_ids"])
    assert sorted(Event(p, room.version).event_id for p in full["auth_chain"]) == sorted(
        ids["auth_chain_ids"]
    )

    # event_auth: the auth chain of our message reaches the create event.
    status, body = get(f"/_matrix/federation/v1/event_auth/{q(room_id)}/{q(room.tip)}")
    assert status == 200, body
    assert create_id in {Event(p, room.version).event_id for p in body["auth_chain"]}

    # backfill from our message: it and earlier events, none after.
    status, body = get(f"/_matrix/federation/v1/backfill/{q(room_id)}?v={q(room.tip)}&limit=5")
    assert status == 200 and 1 <= len(body["pdus"]) <= 5, body
    assert room.tip in {Event(p, room.version).event_id for p in body["pdus"]}

    # get_missing_events between our join and our latest message.
    join_id = room.state[("m.room.member", world["mallory"])]
    status, body = fake.request(
        dest,
        "POST",
        f"/_matrix/federation/v1/get_missing_events/{q(room_id)}",
        {"earliest_events": [join_id], "latest_events": [room.tip], "limit": 10, "min_depth": 0},
    )
    assert status == 200 and isinstance(body.get("events"), list), body
    assert join_id not in {Event(p, room.version).event_id for p in body["events"]}

    # query/profile and query/directory.
    status, body = _api(
        world["alice"],
        "PUT",
        f"/_matrix/client/v3/profile/{q(world['alice'].user_id)}/displayname",
        {"displayname": "Frau Adler"},
    )
    assert status == 200, body
    status, body = get(f"/_matrix/federation/v1/query/profile?user_id={q(world['alice'].user_id)}")
    assert status == 200 and body.get("displayname") == "Frau Adler", body
    status, body = get(f"/_matrix/federation/v1/query/profile?user_id={q('@niemand:' + dest)}")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND", body
    alias = f"#offen{secrets.token_hex(3)}:{dest}"
    status, body = _api(
        world["alice"], "PUT", f"/_matrix/client/v3/directory/room/{q(alias)}", {"room_id": room_id}
    )
    assert status == 200, body
    status, body = get(f"/_matrix/federation/v1/query/directory?room_alias={q(alias)}")
    assert status == 200 and body["room_id"] == room_id and dest in body["servers"], body

    # publicRooms lists the room once it is published in A's directory.
    status, body = _api(
        world["alice"],
        "PUT",
        f"/_matrix/client/v3/directory/list/room/{q(room_id)}",
        {"visibility": "public"},
    )
    assert status == 200, body
    status, body = get("/_matrix/federation/v1/publicRooms?limit=50")
    assert status == 200, body
    listed = {r["room_id"]: r for r in body["chunk"]}
    assert room_id in listed and listed[room_id].get("name") == "Offener Raum", body

    # A as a notary for B's keys: B's own signature plus A's.
    status, body = fake.request(
        dest, "POST", "/_matrix/key/v2/query", {"server_keys": {b.server_name: {}}}
    )
    assert status == 200, body
    (resp,) = [k for k in body["server_keys"] if k["server_name"] == b.server_name]
    status, b_keys = b.fed_get("/_matrix/key/v2/server")
    assert status == 200
    for key_id, key in b_keys["verify_keys"].items():
        assert resp["verify_keys"][key_id]["key"] == key["key"]
        verify_json(resp, b.server_name, VerifyKey.decode(key_id, key["key"]))
    status, a_keys = a.fed_get("/_matrix/key/v2/server")
    ((a_key_id, a_key),) = a_keys["verify_keys"].items()
    verify_json(resp, a.server_name, VerifyKey.decode(a_key_id, a_key["key"]))
    status, body2 = fake.request(dest, "GET", f"/_matrix/key/v2/query/{q(b.server_name)}")
    assert status == 200 and any(k["server_name"] == b.server_name for k in body2["server_keys"]), (
        body2
    )


def test_read_endpoints_refused_to_a_server_outside_the_room(world, fed_ca, tmp_path):  # noqa: F811 - the pytest fixture imported above
    """A second fake server that never joined may not read the room's events or state."""
    room, room_id = world["room"], world["room_id"]
    outsider = FakeServer(fed_ca, str(tmp_path / "outsider")).start()
    try:
        dest = world["a"].server_name
        for path in (
            f"/_matrix/federation/v1/event/{q(room.tip)}",
            f"/_matrix/federation/v1/state_ids/{q(room_id)}?event_id={q(room.tip)}",
            f"/_matrix/federation/v1/state/{q(room_id)}?event_id={q(room.tip)}",
            f"/_matrix/federation/v1/backfill/{q(room_id)}?v={q(room.tip)}&limit=5",
            f"/_matrix/federation/v1/event_auth/{q(room_id)}/{q(room.tip)}",
        ):
            status, body = outsider.request(dest, "GET", path)
            assert status in (403, 404), (path, status, body)
            assert body.get("errcode") in ("M_FORBIDDEN", "M_NOT_FOUND"), (path, body)
            assert "pdus" not in body and "pdu_ids" not in body and "auth_chain" not in body
        # Its transactions into the room are refused PDU by PDU (not a member).
        ev = outsider.build_event(
            room.version,
            type="m.room.message",
            sender=f"@eve:{outsider.server_name}",
            content={"msgtype": "m.text", "body": "von draussen"},
            room_id=room_id,
            prev_events=[room.tip],
            auth_events=[room.state[("m.room.power_levels", "")]],
            depth=room.depth + 1,
        )
        _txn, status, reply = outsider.send_transaction(dest, [ev.pdu])
        assert status == 200, reply
        _result(reply, ev.event_id)
        _assert_not_stored(world, ev.event_id)
    finally:
        outsider.stop()


def test_room_intact_after_attacks(world):
    """Mallory is still a member with power 0, the name is unchanged, and a message from
    each of A, B and the fake server still gets through."""
    room, room_id = world["room"], world["room_id"]
    status, pl = _api(
        world["alice"], "GET", f"/_matrix/client/v3/rooms/{q(room_id)}/state/m.room.power_levels/"
    )
    assert status == 200 and world["mallory"] not in pl.get("users", {}), pl
    status, name = _api(
        world["bob"], "GET", f"/_matrix/client/v3/rooms/{q(room_id)}/state/m.room.name/"
    )
    assert status == 200 and name == {"name": "Offener Raum"}, name
    status, member = _api(
        world["alice"],
        "GET",
        f"/_matrix/client/v3/rooms/{q(room_id)}/state/m.room.member/{q(world['mallory'])}",
    )
    assert status == 200 and member["membership"] == "join", member

    ev = room.build(
        type="m.room.message",
        sender=world["mallory"],
        content={"msgtype": "m.text", "body": "immer noch da"},
    )
    _txn, status, reply = room.send([ev.pdu])
    assert status == 200 and _result(reply, ev.event_id) == {}, reply
    room.advance(ev)
    run(_still_chatting(world, "allem"))

    def same_state():
        return _state_ids(world["alice"], room_id) == _state_ids(world["bob"], room_id)

    run(wait_for(same_state, what="same room state on A and B"))
