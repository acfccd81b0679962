"""Fan-out of local events and EDUs, transactions, backoff while a server is down,
catch-up in order without duplicates, restarts, server policy."""

from __future__ import annotations

from types import SimpleNamespace

from support.db import InlineDB
from support.deferreds import result_of

from federation.keys import SigningKey
from fedout_support import FakeAccounts, FakeClient, Policy, make_clock, make_rooms, remote_join
from node.federation.outbound import queue
from node.federation.outbound.backoff import BackoffPolicy
from node.federation.outbound.wiring import attach, build_sender

A = "a.test"
B = "b.test"
ALICE = f"@alice:{A}"
BOB = f"@bob:{B}"
KEY_A = SigningKey("a1", b"\x01" * 32)
KEY_B = SigningKey("b1", b"\x02" * 32)


class Node:
    """One server's rooms + outbound sender on a database that survives 'restarts'."""

    def __init__(self, db=None, client=None, reactor_clock=None, policy=None, backoff=None):
        self.db = db or InlineDB()
        self.reactor, self.clock = reactor_clock or make_clock()
        self.client = client or FakeClient()
        self.rooms = make_rooms(A, self.db, self.clock, KEY_A, accounts=FakeAccounts(()))
        self.rooms.accounts.profiles = {ALICE: {"displayname": "Alice"}}
        self.sender = build_sender(
            db=self.db,
            clock=self.clock,
            client=self.client,
            server_name=A,
            rooms=self.rooms,
            policy=policy or Policy(),
            backoff=backoff or BackoffPolicy(initial_ms=1000, max_ms=8000),
            random=lambda: 0.5,
        )
        attach(self.sender, rooms=self.rooms)

    def start(self):
        result_of(self.sender.start())

    def send(self, room_id, body):
        return result_of(
            self.rooms.send_event(
                ALICE, room_id, "m.room.message", {"msgtype": "m.text", "body": body}
            )
        )

    def shared_room(self):
        room_id = result_of(self.rooms.create_room(ALICE, {"preset": "public_chat"}))
        remote_join(self.rooms, room_id, BOB, KEY_B)
        return room_id


def sent_bodies(client, dest=B):
    """Message bodies as received by ``dest`` over the successful transactions only."""
    seen_txns = {}
    for d, method, path, body, _ in client.requests:
        if d == dest and method == "PUT" and "/send/" in path and d not in client.down:
            seen_txns.setdefault(path.rsplit("/", 1)[1], body)
    return seen_txns


def delivered(client, dest=B):
    """Events B accepted, de-duplicated by event ID as a receiver would, in arrival
    order -- plus the raw arrival count of each."""
    order, counts = [], {}
    for _txn_id, body in client.delivered:
        for pdu in body["pdus"]:
            key = (pdu["type"], pdu["content"].get("body"), pdu["depth"])
            counts[key] = counts.get(key, 0) + 1
            if counts[key] == 1:
                order.append(key)
    return order, counts


def recording_b(client):
    """B's side of the wire: remembers each transaction ID once (as the spec's
    idempotent /send does) and the transactions it processed."""
    client.delivered = []
    seen = set()

    async def respond(dest, method, path, body, query):
        txn = path.rsplit("/", 1)[1]
        if txn not in seen:
            seen.add(txn)
            client.delivered.append((txn, body))
        return 200, {"pdus": {}}

    client.responder = respond


def messages(client):
    order, counts = delivered(client)
    return [k[1] for k in order if k[0] == "m.room.message"], counts


# --- fan-out ---------------------------------------------------------------------------


def test_local_events_go_to_the_servers_of_joined_members():
    n = Node()
    recording_b(n.client)
    n.start()
    lonely = result_of(n.rooms.create_room(ALICE, {}))
    n.send(lonely, "nobody else here")
    room_id = n.shared_room()
    n.send(room_id, "hello B")
    sends = [r for r in n.client.requests if "/send/" in r[2]]
    assert {r[0] for r in sends} == {B}
    bodies, _ = messages(n.client)
    assert bodies == ["hello B"]
    txn = n.client.delivered[-1][1]
    assert txn["origin"] == A and isinstance(txn["origin_server_ts"], int)
    pdu = txn["pdus"][0]
    assert pdu["sender"] == ALICE and "signatures" in pdu and "unsigned" not in pdu
    # the remote join itself is B's event: never sent back to B
    assert all(p["sender"] != BOB for _, t in n.client.delivered for p in t["pdus"])


def test_invite_goes_to_the_invitees_server_and_a_kick_to_the_kicked_users_server():
    n = Node()
    recording_b(n.client)
    n.start()
    room_id = result_of(n.rooms.create_room(ALICE, {"preset": "private_chat"}))
    result_of(n.rooms.update_membership(ALICE, room_id, "@carol:c.test", "invite"))
    assert [r[0] for r in n.client.requests if "/send/" in r[2]] == ["c.test"]
    pdu = n.client.requests[-1][3]["pdus"][0]
    assert pdu["content"]["membership"] == "invite" and pdu["state_key"] == "@carol:c.test"


def test_two_hundred_messages_while_down_arrive_once_in_order_after_backoff():
    n = Node()
    recording_b(n.client)
    n.start()
    room_id = n.shared_room()
    n.client.down.add(B)
    for i in range(200):
        n.send(room_id, f"m{i}")
    # one attempt failed; the rest only queued while backing off
    attempts = [r for r in n.client.requests if "/send/" in r[2]]
    assert len(attempts) == 1
    assert n.sender.transactions.retry_state(B).failures == 1
    assert result_of(n.db.run(queue.queue_sizes, B)) == (200, 0)
    # retries follow the backoff: 1 s, 2 s, 4 s, 8 s, 8 s (cap)
    for expected_failures, wait in [(2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 8.0)]:
        n.reactor.advance(wait - 0.01)
        assert n.sender.transactions.retry_state(B).failures == expected_failures - 1
        n.reactor.advance(0.01)
        assert n.sender.transactions.retry_state(B).failures == expected_failures
    n.client.down.discard(B)
    n.reactor.advance(8.0)
    bodies, counts = messages(n.client)
    assert bodies == [f"m{i}" for i in range(200)]
    assert all(c == 1 for c in counts.values())
    assert all(len(body["pdus"]) <= 50 for _, body in n.client.delivered)
    # the transaction in flight when B went down (m0 alone) is resent as it was, then
    # the backlog in full transactions
    assert [len(body["pdus"]) for _, body in n.client.delivered] == [1, 50, 50, 50, 49]
    assert result_of(n.db.run(queue.queue_sizes, B)) == (0, 0)
    assert n.sender.transactions.retry_state(B).failures == 0


def test_failed_transaction_is_retried_with_the_same_txn_id():
    n = Node()
    recording_b(n.client)
    n.start()
    room_id = n.shared_room()
    n.client.down.add(B)
    n.send(room_id, "first")
    first_try = [r for r in n.client.requests if "/send/" in r[2]][-1]
    n.send(room_id, "second")  # queued behind the in-flight transaction
    n.client.down.discard(B)
    n.reactor.advance(1.0)
    txns = [t for t, _ in n.client.delivered]
    assert txns[0] == first_try[2].rsplit("/", 1)[1]
    assert [p["content"]["body"] for p in n.client.delivered[0][1]["pdus"]] == ["first"]
    assert messages(n.client)[0] == ["first", "second"]


def test_destination_up_ends_the_wait_at_once():
    n = Node()
    recording_b(n.client)
    n.start()
    room_id = n.shared_room()
    n.client.down.add(B)
    n.send(room_id, "x")
    n.client.down.discard(B)
    n.sender.destination_up(B)
    assert messages(n.client)[0] == ["x"]


def test_non_200_backs_off_and_bad_json_is_dropped():
    n = Node()
    recording_b(n.client)
    n.start()
    room_id = n.shared_room()
    responder = n.client.responder
    answers = [(503, {"errcode": "M_UNKNOWN"}), (400, {"errcode": "M_BAD_JSON"})]

    async def flaky(dest, method, path, body, query):
        if answers:
            return answers.pop(0)
        return await responder(dest, method, path, body, query)

    n.client.responder = flaky
    n.send(room_id, "doomed")
    assert n.sender.transactions.retry_state(B).failures == 1  # 503
    n.reactor.advance(1.0)  # 400 M_BAD_JSON: dropped
    assert result_of(n.db.run(queue.queue_sizes, B)) == (0, 0)
    n.send(room_id, "next")
    assert messages(n.client)[0] == ["next"]


def test_restart_resends_the_inflight_transaction_and_nothing_twice():
    db = InlineDB()
    client = FakeClient()
    recording_b(client)
    first = Node(db=db, client=client)
    first.start()
    room_id = first.shared_room()
    client.down.add(B)
    for i in range(60):
        first.send(room_id, f"m{i}")
    inflight = result_of(db.run(queue.destination_row, B))["inflight_txn_id"]
    assert inflight is not None
    first.sender.stop()
    # "restart": new services on the same database; B is back
    client.down.discard(B)
    second = Node(db=db, client=client)
    second.start()
    second.reactor.advance(10.0)
    bodies, counts = messages(client)
    assert bodies == [f"m{i}" for i in range(60)]
    assert all(c == 1 for c in counts.values())
    assert client.delivered[0][0] == inflight
    assert result_of(db.run(queue.queue_sizes, B)) == (0, 0)


def test_events_committed_but_not_queued_before_a_crash_are_fanned_out_on_start():
    db = InlineDB()
    client = FakeClient()
    recording_b(client)
    first = Node(db=db, client=client)
    first.start()
    room_id = first.shared_room()
    first.send(room_id, "before")
    # the crash: the persister commits but the fan-out never runs
    first.rooms.persister.on_persisted.remove(first.sender.on_persisted)
    first.send(room_id, "lost?")
    first.sender.stop()
    second = Node(db=db, client=client)
    second.start()
    bodies, counts = messages(client)
    assert bodies == ["before", "lost?"] and all(c == 1 for c in counts.values())
    # and a third start queues nothing again
    third = Node(db=db, client=client)
    third.start()
    assert messages(client)[0] == ["before", "lost?"]
    assert len(client.delivered) == 2


def test_first_start_does_not_send_old_history():
    db = InlineDB()
    client = FakeClient()
    recording_b(client)
    n = Node(db=db, client=client)
    n.rooms.persister.on_persisted.remove(n.sender.on_persisted)
    room_id = n.shared_room()
    n.send(room_id, "history")
    n.rooms.persister.on_persisted.append(n.sender.on_persisted)
    n.start()
    assert client.delivered == []
    n.send(room_id, "new")
    assert messages(client)[0] == ["new"]


def test_policy_refused_destination_gets_nothing():
    n = Node(policy=Policy(refused={B}))
    recording_b(n.client)
    n.start()
    room_id = n.shared_room()
    n.send(room_id, "secret")
    assert [r for r in n.client.requests if r[0] == B] == []
    assert result_of(n.db.run(queue.queue_sizes, B)) == (0, 0)


def test_policy_refusal_after_queueing_drops_the_queue():
    policy = Policy()
    n = Node(policy=policy)
    recording_b(n.client)
    n.start()
    room_id = n.shared_room()
    n.client.down.add(B)
    n.send(room_id, "queued")
    n.client.down.discard(B)
    policy.refused.add(B)
    n.reactor.advance(1.0)
    assert n.client.delivered == []
    assert result_of(n.db.run(queue.queue_sizes, B)) == (0, 0)


# --- EDUs ------------------------------------------------------------------------------


def test_typing_and_receipts_of_local_users_become_edus():
    from node.sync.receipts import ReceiptStore
    from node.sync.typing import TypingManager

    class Notifier:
        def notify_room_stream(self, *a):
            pass

        def notify_users(self, *a):
            pass

    n = Node()
    recording_b(n.client)
    typing = TypingManager(n.clock, Notifier())
    receipts = ReceiptStore(n.db, Notifier(), n.clock)

    class Sync:
        pass

    sync = Sync()
    sync.typing, sync.receipts = typing, receipts
    sync.handler = SimpleNamespace(presence=None)  # presence off
    attach(n.sender, rooms=n.rooms, sync=sync)
    n.rooms.persister.on_persisted.remove(n.sender.on_persisted)  # attached twice above
    n.start()
    room_id = n.shared_room()
    eid = n.send(room_id, "read me")
    before = len(n.client.delivered)
    typing.set_typing(room_id, ALICE, True, 10_000)
    typing.set_typing(room_id, BOB, True, 10_000)  # remote user: not ours to send
    result_of(receipts.set_receipt(room_id, "m.read", ALICE, eid))
    result_of(receipts.set_receipt(room_id, "m.read.private", ALICE, eid))
    edus = [e for _, body in n.client.delivered[before:] for e in body["edus"]]
    assert edus[0] == {
        "edu_type": "m.typing",
        "content": {"room_id": room_id, "user_id": ALICE, "typing": True},
    }
    assert edus[1]["edu_type"] == "m.receipt"
    assert edus[1]["content"][room_id]["m.read"][ALICE]["event_ids"] == [eid]
    assert isinstance(edus[1]["content"][room_id]["m.read"][ALICE]["data"]["ts"], int)
    assert len(edus) == 2
    # expiry of local typing is sent as typing: false
    n.reactor.advance(10.0)
    last = n.client.delivered[-1][1]["edus"]
    assert last == [
        {"edu_type": "m.typing", "content": {"room_id": room_id, "user_id": ALICE, "typing": False}}
    ]
