"""E2E: school IT imports the sample OneRoster export into a running node, prints the claim
codes of class 5A, and a pupil claims their account, logs in with matrix-nio and finds their
class room (and not the other class's) and invites to the school space and the
announcements (where, once joined, they may not post).  SQLite only: no SQL here differs by backend.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from nio import JoinResponse, RoomSendError, RoomSendResponse

from e2e_helpers import api, parta_command, run, sync_until

pytestmark = pytest.mark.e2e

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "samples", "oneroster")


@pytest.fixture(scope="module")
def db_backend() -> str:
    return "sqlite"


def people(node, *args: str) -> subprocess.CompletedProcess:
    cmd = parta_command() + ["node", "people", args[0], "-c", node.config_path, *args[1:]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_a_bad_export_is_refused_with_file_and_line(node, tmp_path):
    export = tmp_path / "bad"
    shutil.copytree(SAMPLE, export)
    with open(export / "enrollments.csv", "a", encoding="utf-8") as fh:
        fh.write("enr-x,,2026-09-01,class-5a,org-school,nobody,student,false,,\n")
    res = people(node, "import", str(export))
    assert res.returncode != 0
    assert "enrollments.csv:8: userSourcedId 'nobody' is not in users.csv" in res.stderr
    assert "nothing was changed" in res.stderr


def test_import_claim_login_and_see_the_class_room(node):
    dry = people(node, "import", SAMPLE, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Accounts to create: 9" in dry.stdout and "Dry run" in dry.stdout
    applied = people(node, "import", SAMPLE)
    assert applied.returncode == 0, applied.stderr
    again = people(node, "import", SAMPLE)
    assert "Nothing to change" in again.stdout

    codes = people(node, "claim-codes", "--class", "class-5a")
    assert codes.returncode == 0, codes.stderr
    line = next(ln for ln in codes.stdout.splitlines() if ln.startswith("Sasha Kuznetsov"))
    user_id, code = line.split()[-2:]
    assert user_id.endswith(":" + node.server_name)
    assert "sasha" not in user_id.lower()

    body = {"code": code, "new_password": "a pupil's new password"}
    assert api(node, "POST", "/_parta/v1/claim", json_body=body) == (200, {"user_id": user_id})
    status, err = api(node, "POST", "/_parta/v1/claim", json_body=body)
    assert (status, err["errcode"]) == (403, "M_FORBIDDEN")

    async def scenario() -> None:
        client = await node.login(user_id, "a pupil's new password")
        try:

            def names(_resp) -> set[str]:
                return {room.name for room in client.rooms.values()}

            def invites(_resp) -> dict[str, str]:
                return {room.name: rid for rid, room in client.invited_rooms.items()}

            # The node makes the rooms within its sync interval (10 s) of the import: the
            # class room joined, the school-wide ones as invites.
            await sync_until(client, lambda r: "5A" in names(r) and "Announcements" in invites(r))
            assert "Lyceum No. 42" in invites(None)  # the school space
            seen = names(None) | set(invites(None))
            assert "5B" not in seen and "Staff room" not in seen
            assert "5A \N{EM DASH} parents" not in seen
            announcements = invites(None)["Announcements"]
            assert isinstance(await client.join(announcements), JoinResponse)
            sent = await client.room_send(
                announcements, "m.room.message", {"msgtype": "m.text", "body": "hi"}
            )
            assert isinstance(sent, RoomSendError) and sent.status_code == "M_FORBIDDEN"
            class_room = next(rid for rid, room in client.rooms.items() if room.name == "5A")
            sent = await client.room_send(
                class_room, "m.room.message", {"msgtype": "m.text", "body": "hello class"}
            )
            assert isinstance(sent, RoomSendResponse), sent
            resp = await client.joined_members(class_room)
            members = {m.display_name for m in resp.members}
            assert members == {"School", "Oleg Petrov", "Dasha Popova", "Sasha Kuznetsov"}
        finally:
            await client.close()

    run(scenario())
