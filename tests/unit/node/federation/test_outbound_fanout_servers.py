"""The fan-out's remote servers of a room are kept between events and recomputed only when
the room's membership changes (server-server API "PDUs": an event goes to the servers of
the room's joined members), so an ordinary event in a room of thousands costs a lookup."""

from __future__ import annotations

from support.deferreds import result_of

from fedout_support import remote_join
from test_outbound_sender import ALICE, KEY_B, B, Node, messages, recording_b

C = "c.test"
KEY_C_USER = f"@carol:{C}"


class CountingSet(set):
    """The room's joined set, counting the walks over it."""

    walks = 0

    def __iter__(self):
        CountingSet.walks += 1
        return super().__iter__()


def send_dests(client, since):
    return [r[0] for r in client.requests[since:] if "/send/" in r[2]]


def test_membership_changes_move_the_destinations_and_messages_do_not_rescan():
    n = Node()
    recording_b(n.client)
    n.start()
    room_id = n.shared_room()
    n.send(room_id, "one")
    room = n.rooms.loaded_room(room_id)
    room.joined = CountingSet(room.joined)
    CountingSet.walks = 0
    n.send(room_id, "two")
    n.send(room_id, "three")
    assert CountingSet.walks == 0  # the servers came from the cache
    assert messages(n.client)[0] == ["one", "two", "three"]

    # A second remote server joins: the next message goes there too.
    remote_join(n.rooms, room_id, KEY_C_USER, KEY_B)
    mark = len(n.client.requests)
    n.send(room_id, "four")
    assert sorted(set(send_dests(n.client, mark))) == [B, C]

    # Carol is kicked: her server gets the kick, then nothing more.
    mark = len(n.client.requests)
    result_of(n.rooms.update_membership(ALICE, room_id, KEY_C_USER, "leave"))
    assert sorted(set(send_dests(n.client, mark))) == [B, C]
    mark = len(n.client.requests)
    n.send(room_id, "five")
    assert send_dests(n.client, mark) == [B]


def test_edus_use_the_same_servers_and_follow_leaves():
    n = Node()
    recording_b(n.client)
    n.start()
    room_id = n.shared_room()
    assert result_of(n.sender.destinations_for_room(room_id)) == {B}
    result_of(n.rooms.update_membership(ALICE, room_id, f"@bob:{B}", "leave"))
    assert result_of(n.sender.destinations_for_room(room_id)) == set()
    # The caller may change what it gets without touching the cache.
    out = result_of(n.sender.destinations_for_room(room_id))
    out.add("x.test")
    assert result_of(n.sender.destinations_for_room(room_id)) == set()
