"""E2E crash test: ``kill -9`` a node while clients and another server send to it.

Per backend (SQLite, PostgreSQL), one node A hosts a public room that three local users
and a fake homeserver (``@mallory``, bench/federation_env.py ``FakeServer``) have joined.
Four threads send at once: the three users through ``PUT /rooms/{roomId}/send/...`` with
their own transaction IDs, the fake server through ``PUT /_matrix/federation/v1/send``
transactions of two PDUs each.  Once enough sends were acknowledged, A gets SIGKILL (no
shutdown code runs), and is started again on the same data.  Then:

* every acknowledged event is there: the client API serves each one with its body
  (a client send counts as acknowledged when it was answered 200 with an event ID, a PDU
  when its transaction was answered 200 with an empty result for it);
* nothing is there twice: the room's timeline, read back to the start with ``/messages``,
  holds every event ID once and every body at most once; a client retrying its
  transaction ID after the restart gets the event ID it was given before (client-server API
  "Transaction identifiers"), and the fake server re-sending acknowledged PDUs stores
  nothing new (server-server API "Transactions");
* the room still works: a user sends and the fake server's next PDU is accepted.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any
from urllib.parse import quote

import pytest

from fed_fixtures import fake_server, fed_ca, fed_cluster  # noqa: F401 - pytest fixtures
from fed_harness import Account, FakeServer
from fed_harness import account_api as _api
from federation_env import FakeRoom

USES_POSTGRES = True
SENDS_BEFORE_KILL = 120  # acknowledged sends (all threads) before SIGKILL
MAX_SENDS_PER_THREAD = 400  # bounds the load if the node is slow to get there
V3 = "/_matrix/client/v3"


class Tally:
    """What the node acknowledged, shared by the sending threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.client: dict[tuple[str, str], tuple[str, str]] = {}  # (user, txn) -> (event, body)
        self.pdus: dict[str, str] = {}  # event ID -> body
        self.pdu_json: dict[str, dict] = {}
        self.stop = threading.Event()

    def count(self) -> int:
        with self.lock:
            return len(self.client) + len(self.pdus)


def _client_sender(account: Account, room_id: str, tag: str, tally: Tally) -> None:
    path = f"{V3}/rooms/{quote(room_id)}/send/m.room.message/"
    for i in range(MAX_SENDS_PER_THREAD):
        if tally.stop.is_set():
            return
        txn, body = f"{tag}-{i}", f"{tag} message {i}"
        try:
            status, reply = _api(account, "PUT", path + txn, {"msgtype": "m.text", "body": body})
        except OSError:
            return  # the node is gone: this send was not acknowledged
        if status == 200 and isinstance(reply, dict) and "event_id" in reply:
            with tally.lock:
                tally.client[(account.user_id, txn)] = (reply["event_id"], body)


def _fed_sender(room: FakeRoom, sender: str, tally: Tally) -> None:
    for i in range(MAX_SENDS_PER_THREAD // 2):
        if tally.stop.is_set():
            return
        first = room.build(
            type="m.room.message",
            sender=sender,
            content={"msgtype": "m.text", "body": f"fed message {i}a"},
        )
        second = room.build(
            type="m.room.message",
            sender=sender,
            prev_events=[first.event_id],
            depth=first.depth + 1,
            content={"msgtype": "m.text", "body": f"fed message {i}b"},
        )
        try:
            _txn, status, reply = room.send([first.pdu, second.pdu], timeout=10)
        except OSError:
            return
        if status != 200 or not isinstance(reply, dict):
            return
        results = reply.get("pdus") or {}
        for ev, body in ((first, f"fed message {i}a"), (second, f"fed message {i}b")):
            if results.get(ev.event_id) == {}:
                with tally.lock:
                    tally.pdus[ev.event_id] = body
                    tally.pdu_json[ev.event_id] = ev.pdu
        room.advance(first)
        room.advance(second)


def _sigkill_and_restart(node: Any) -> None:
    assert node.proc is not None and node.proc.poll() is None, node.log_tail()
    os.kill(node.proc.pid, signal.SIGKILL)
    node.proc.wait(10)
    node.proc = None
    node._log.close()
    node.start()


def _whole_timeline(account: Account, room_id: str) -> list[dict]:
    events: list[dict] = []
    token = None
    for _ in range(200):
        path = f"{V3}/rooms/{quote(room_id)}/messages?dir=b&limit=200"
        if token:
            path += f"&from={quote(token)}"
        status, page = _api(account, "GET", path)
        assert status == 200, page
        events.extend(page["chunk"])
        token = page.get("end")
        if not page["chunk"] or not token:
            return events
    raise AssertionError("the room's history did not end within 200 pages")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_acknowledged_events_survive_sigkill_once(
    fed_cluster,  # noqa: F811 - the pytest fixture imported above
    fake_server: FakeServer,  # noqa: F811 - the pytest fixture imported above
    backend: str,
):
    (node,) = fed_cluster.create(1, backends=[backend])
    users = [Account(node, f"crash{backend}") for _ in range(3)]
    status, created = _api(
        users[0], "POST", f"{V3}/createRoom", {"preset": "public_chat", "name": "Pausenhof"}
    )
    assert status == 200, created
    room_id = created["room_id"]
    for user in users[1:]:
        status, body = _api(user, "POST", f"{V3}/join/{quote(room_id)}", {})
        assert status == 200, body
    mallory = f"@mallory:{fake_server.server_name}"
    room = FakeRoom.join(fake_server, node.server_name, room_id, mallory)

    tally = Tally()
    threads = [
        threading.Thread(target=_client_sender, args=(u, room_id, f"u{n}", tally))
        for n, u in enumerate(users)
    ]
    threads.append(threading.Thread(target=_fed_sender, args=(room, mallory, tally)))
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while tally.count() < SENDS_BEFORE_KILL and time.monotonic() < deadline:
        if not any(t.is_alive() for t in threads):
            break
        time.sleep(0.02)
    assert tally.count() >= SENDS_BEFORE_KILL // 2, (tally.count(), node.log_tail())
    _sigkill_and_restart(node)
    tally.stop.set()
    for t in threads:
        t.join(60)
    assert tally.client and tally.pdus, (len(tally.client), len(tally.pdus))

    reader = users[0]
    # Every acknowledged event is there, with its content.
    wanted = {ev: body for ev, body in tally.client.values()}
    wanted.update(tally.pdus)
    for event_id, body in wanted.items():
        status, ev = _api(reader, "GET", f"{V3}/rooms/{quote(room_id)}/event/{quote(event_id)}")
        assert status == 200, (event_id, status, ev)
        assert ev["content"]["body"] == body, ev

    # Nothing twice: each event ID and each body once in the whole timeline.
    timeline = _whole_timeline(reader, room_id)
    ids = [e["event_id"] for e in timeline]
    assert len(ids) == len(set(ids)), "an event appears twice in /messages"
    bodies = [e["content"].get("body") for e in timeline if e["type"] == "m.room.message"]
    assert len(bodies) == len(set(bodies)), "a message was stored twice"
    assert set(wanted) <= set(ids)

    # Retrying an acknowledged transaction ID gives the same event, not a new one.
    by_user = {u.user_id: u for u in users}
    for (user_id, txn), (event_id, body) in list(tally.client.items())[:20]:
        status, reply = _api(
            by_user[user_id],
            "PUT",
            f"{V3}/rooms/{quote(room_id)}/send/m.room.message/{txn}",
            {"msgtype": "m.text", "body": body},
        )
        assert (status, reply) == (200, {"event_id": event_id})
    # Re-sent acknowledged PDUs are accepted again and stored once.
    again = list(tally.pdu_json.values())[:10]
    _txn, status, reply = room.send(again)
    assert status == 200, reply
    assert all(reply["pdus"].get(_event_id(p, room)) == {} for p in again), reply
    after = [e["event_id"] for e in _whole_timeline(reader, room_id)]
    assert len(after) == len(set(after)) and set(after) == set(ids)

    # The room still works both ways.
    status, sent = _api(
        users[1],
        "PUT",
        f"{V3}/rooms/{quote(room_id)}/send/m.room.message/after-crash",
        {"msgtype": "m.text", "body": "nach dem Absturz"},
    )
    assert status == 200, sent
    last = room.build(
        type="m.room.message",
        sender=mallory,
        content={"msgtype": "m.text", "body": "fed nach dem Absturz"},
    )
    _txn, status, reply = room.send([last.pdu])
    assert status == 200 and reply["pdus"][last.event_id] == {}, reply


def _event_id(pdu: dict, room: FakeRoom) -> str:
    from federation.events.model import Event

    return Event(pdu, room.version).event_id
