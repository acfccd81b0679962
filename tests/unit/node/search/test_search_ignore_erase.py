"""``POST /search`` and the two ways a user's messages stop being shown: the searcher
ignores the sender (client-server API "Ignoring Users"), or the sender's account was
erased before the searcher joined ("Account deactivation", ``erase``)."""

from __future__ import annotations

import pytest

from search_support import ALICE, BOB, CAROL, SearchApi, uid


@pytest.fixture
def api():
    return SearchApi()


def test_ignored_senders_messages_are_not_found(api):
    room = api.room(preset="public_chat")
    for user in (BOB, CAROL):
        api.join(room, user)
    api.say(room, BOB, "Hausaufgaben von Bob")
    api.say(room, CAROL, "Hausaufgaben von Carol")
    api.service.ignored.set_content(ALICE, {"ignored_users": {BOB: {}}})
    assert api.found(ALICE, "Hausaufgaben") == ["Hausaufgaben von Carol"]
    assert sorted(api.found(CAROL, "Hausaufgaben")) == [
        "Hausaufgaben von Bob",
        "Hausaufgaben von Carol",
    ]


def test_an_erased_senders_words_are_not_found_by_later_joiners(api):
    room = api.room(preset="public_chat")
    for user in (BOB, CAROL):
        api.join(room, user)
    api.say(room, BOB, "meine Adresse ist geheim")
    api.service.erasure.erased[BOB] = api.service.current_stream_ordering()
    dave = uid("dave")
    api.join(room, dave)
    assert api.found(dave, "geheim") == []
    assert api.found(CAROL, "geheim") == ["meine Adresse ist geheim"]
