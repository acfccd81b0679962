"""POST /search results carry bundled aggregations (``unsigned.m.relations``) as
``/messages`` does (client-server API "Aggregations of child events",
https://spec.matrix.org/v1.16/client-server-api/#aggregations-of-child-events): a
thread root shows its thread summary, an edited message its latest edit."""

from __future__ import annotations

import pytest

from search_support import ALICE, BOB, CAROL, V3, SearchApi


@pytest.fixture
def api():
    return SearchApi()


def send(api, room, user, content, txn):
    status, body = api.call("PUT", f"{V3}/rooms/{room}/send/m.room.message/{txn}", user, content)
    assert status == 200, body
    return body["event_id"]


def results(api, user, term):
    status, body = api.search(user, term)
    assert status == 200, body
    return {
        r["result"]["event_id"]: r["result"]
        for r in body["search_categories"]["room_events"]["results"]
    }


def test_search_results_have_thread_and_edit_bundles(api):
    room = api.room(ALICE, preset="public_chat")
    api.join(room, BOB)
    api.join(room, CAROL)
    root = api.say(room, ALICE, "pancakes on friday")
    reply = send(
        api,
        room,
        BOB,
        {
            "msgtype": "m.text",
            "body": "yes please",
            "m.relates_to": {"rel_type": "m.thread", "event_id": root},
        },
        "r1",
    )
    typo = api.say(room, BOB, "waffles tomorow")
    send(
        api,
        room,
        BOB,
        {
            "msgtype": "m.text",
            "body": "* waffles tomorrow",
            "m.new_content": {"msgtype": "m.text", "body": "waffles tomorrow"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": typo},
        },
        "e1",
    )

    found = results(api, ALICE, "pancakes")
    thread = found[root]["unsigned"]["m.relations"]["m.thread"]
    assert thread["count"] == 1 and thread["current_user_participated"] is True
    assert thread["latest_event"]["event_id"] == reply
    # Seen by someone who took no part in the thread.
    thread = results(api, CAROL, "pancakes")[root]["unsigned"]["m.relations"]["m.thread"]
    assert thread["count"] == 1 and thread["current_user_participated"] is False

    edited = results(api, ALICE, "tomorow")[typo]
    replace = edited["unsigned"]["m.relations"]["m.replace"]
    assert replace["content"]["m.new_content"] == {"msgtype": "m.text", "body": "waffles tomorrow"}


def test_plain_results_have_no_bundle(api):
    room = api.room(ALICE, preset="public_chat")
    plain = api.say(room, ALICE, "nothing related here")
    assert "m.relations" not in results(api, ALICE, "related")[plain].get("unsigned", {})
