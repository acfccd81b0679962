"""E2E: server-side search (``POST /search``) on a real node, SQLite and PostgreSQL (the
full-text SQL differs by backend).  Rooms and messages through matrix-nio; nio has no
search call, so the search requests are raw HTTP with the client's access token."""

from __future__ import annotations

from nio import RoomRedactResponse, RoomSendResponse

from e2e_helpers import api, create_room_with, run, text

SEARCH = "/_matrix/client/v3/search"


def search(node, client, term, *, next_batch=None, **criteria):
    criteria["search_term"] = term
    path = SEARCH if next_batch is None else f"{SEARCH}?next_batch={next_batch}"
    return api(
        node,
        "POST",
        path,
        token=client.access_token,
        json_body={"search_categories": {"room_events": criteria}},
    )


def bodies(resp):
    return [
        r["result"]["content"].get("body")
        for r in resp["search_categories"]["room_events"]["results"]
    ]


async def say(client, room_id, body):
    sent = await client.room_send(room_id, "m.room.message", text(body))
    assert isinstance(sent, RoomSendResponse), sent
    return sent.event_id


def test_search_finds_readable_messages_pages_and_forgets_redactions(node):
    async def scenario():
        teacher = await node.new_client("teacher")
        pupil = await node.new_client("pupil")
        try:
            room = await create_room_with(teacher, pupil, name="Chemie 9c")
            staff = await create_room_with(teacher, name="Staff room")
            await say(teacher, staff, "Klausur Lösungen: 1b 2a 3c")
            for i in range(5):
                await say(teacher, room, f"Klausur am Freitag, Teil {i}")
            typo = await say(pupil, room, "Klausurr typo")

            status, resp = search(node, pupil, "klausur", order_by="recent", filter={"limit": 2})
            assert status == 200, resp
            events = resp["search_categories"]["room_events"]
            assert events["highlights"] == ["klausur"]
            assert events["count"] == 6  # prefix match includes the typo; not the staff room
            seen = bodies(resp)
            while "next_batch" in events:
                status, resp = search(
                    node,
                    pupil,
                    "klausur",
                    next_batch=events["next_batch"],
                    order_by="recent",
                    filter={"limit": 2},
                )
                assert status == 200, resp
                events = resp["search_categories"]["room_events"]
                seen += bodies(resp)
            assert seen == ["Klausurr typo"] + [
                f"Klausur am Freitag, Teil {i}" for i in range(4, -1, -1)
            ]
            assert all("Lösungen" not in b for b in seen)  # the teacher's other room

            status, resp = search(node, teacher, "lösungen")
            assert status == 200 and bodies(resp) == ["Klausur Lösungen: 1b 2a 3c"]

            redacted = await pupil.room_redact(room, typo)
            assert isinstance(redacted, RoomRedactResponse), redacted
            status, resp = search(node, pupil, "klausurr")
            assert status == 200 and bodies(resp) == []

            # Query syntax of either engine is plain text here, never a 500.
            for term in ['"unbalanced', "NEAR(", "*", "a & b | !c", "x:*", "'", "\\"]:
                status, resp = search(node, pupil, term)
                assert status == 200, (term, resp)
            status, resp = search(node, pupil, "klausur", next_batch="bogus")
            assert status == 400 and resp["errcode"] == "M_INVALID_PARAM"
            status, resp = api(node, "POST", SEARCH, token=pupil.access_token, json_body={})
            assert status == 400 and resp["errcode"] == "M_MISSING_PARAM"
        finally:
            await teacher.close()
            await pupil.close()

    run(scenario())


def test_left_room_is_searched_up_to_the_leave(node):
    async def scenario():
        teacher = await node.new_client("teacher")
        pupil = await node.new_client("pupil")
        try:
            room = await create_room_with(teacher, pupil)
            await say(teacher, room, "Ausflug vorher")
            await pupil.room_leave(room)
            await say(teacher, room, "Ausflug nachher")
            status, resp = search(
                node,
                pupil,
                "ausflug",
                event_context={"before_limit": 2, "after_limit": 2},
                include_state=True,
            )
            assert status == 200, resp
            assert bodies(resp) == ["Ausflug vorher"]
            ctx = resp["search_categories"]["room_events"]["results"][0]["context"]
            after = [e.get("content", {}).get("body") for e in ctx["events_after"]]
            assert "Ausflug nachher" not in after
            assert room in resp["search_categories"]["room_events"]["state"]
            status, resp = search(node, teacher, "ausflug", order_by="recent")
            assert bodies(resp) == ["Ausflug nachher", "Ausflug vorher"]
        finally:
            await teacher.close()
            await pupil.close()

    run(scenario())
