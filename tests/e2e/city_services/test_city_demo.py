"""`parta demo` is a city: ``--seed-only`` sets up a gateway and two schools (real processes,
HTTPS federation with a demo CA), seeds and verifies them and exits; a second run reuses the
data dir and serves; real matrix-nio clients on school B then read the teachers' room
message sent on school A and the city announcement, a director sees the directors' room,
the gateway's JSON lists both schools as enrolled and both schools' public rooms; SIGTERM
stops everything cleanly."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import pytest
from nio import AsyncClient, LoginResponse, RoomMessagesResponse

_E2E = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _E2E not in sys.path:
    sys.path.insert(0, _E2E)

from e2e_helpers import http_request, run
from gateway.demo_city_layout import GATEWAY, PASSWORD
from gateway.demo_city_seed import ANNOUNCEMENT, TEACHERS_MESSAGE, TEACHERS_ROOM

pytestmark = pytest.mark.e2e
OFFSETS = (0, 1, 2, 10, 11, 12, 20, 21, 22)
A, B = "school42.localhost", "school17.localhost"


def parta_command() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "parta")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-c", "import sys; from node.cli.main import main; sys.exit(main())"]


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port() -> int:
    for _ in range(200):
        base = random.randrange(20000, 60000)
        if all(_free(base + o) for o in OFFSETS):
            return base
    raise RuntimeError("no free block of ports")


def get_json(url: str):
    status, _, body = http_request("GET", url)
    return status, json.loads(body) if body else None


async def read_room(client: AsyncClient, sync, name: str) -> list[tuple[str, str]]:
    """(sender, body) of the messages of the joined room called ``name``."""
    room_id = next(rid for rid, r in client.rooms.items() if r.display_name == name)
    timeline = sync.rooms.join[room_id].timeline
    events = list(timeline.events)
    msgs = await client.room_messages(room_id, start=timeline.prev_batch or "", limit=50)
    assert isinstance(msgs, RoomMessagesResponse), msgs
    events += msgs.chunk
    return [(e.sender, e.body) for e in events if hasattr(e, "body")]


def test_demo_city_seeds_serves_and_federates(tmp_path):
    base = free_base_port()
    root = str(tmp_path / "demo-city")
    cmd = parta_command() + ["demo", "--data-dir", root, "--port", str(base)]
    seeded = subprocess.run(
        cmd + ["--seed-only"], capture_output=True, text=True, timeout=280, stdin=subprocess.DEVNULL
    )
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    out = seeded.stdout
    for line in (
        "enrolled with a one-time token",
        "teachers of school17.localhost joined over federation",
        "reads the message from school42.localhost and the city announcement",
        "lists both schools as enrolled",
        f"City office dashboard: http://127.0.0.1:{base}/dashboard/",
        f"Gymnasium No. 17 (homeserver {B}): http://127.0.0.1:{base + 20}",
        "@teacher.iva:school17.localhost",
        "Seeded and verified",
    ):
        assert line in out, out
    with open(os.path.join(root, ".seeded")) as fh:
        seeded_rooms = json.load(fh)

    # Second run: reuses everything, serves until SIGTERM.
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("Serving;") or proc.poll() is not None:
                break
        text = "".join(lines)
        assert "Serving;" in text, text
        assert "already seeded" in text and "is enrolled" in text, text

        async def scenario():
            iva = AsyncClient(f"http://127.0.0.1:{base + 20}", f"@teacher.iva:{B}")
            director = AsyncClient(f"http://127.0.0.1:{base + 20}", f"@director:{B}")
            try:
                assert isinstance(await iva.login(PASSWORD), LoginResponse)
                sync = await iva.sync(timeout=0)
                names = {r.display_name for r in iva.rooms.values()}
                assert {TEACHERS_ROOM, "City announcements"} <= names, names
                teachers = await read_room(iva, sync, TEACHERS_ROOM)
                assert (f"@teacher.ana:{A}", TEACHERS_MESSAGE) in teachers, teachers
                news = await read_room(iva, sync, "City announcements")
                assert (f"@office:{GATEWAY}", ANNOUNCEMENT) in news, news
                # The gateway invited the director (announced in the school's stats); the
                # demo accepted the invite.
                assert isinstance(await director.login(PASSWORD), LoginResponse)
                await director.sync(timeout=0)
                assert seeded_rooms["School directors"] in director.rooms
            finally:
                await iva.close()
                await director.close()

        run(scenario())

        status, data = get_json(f"http://127.0.0.1:{base}/_parta/v1/directory/schools")
        assert status == 200
        enrolled = {s["server"]: s["name"] for s in data["schools"] if s["status"] == "enrolled"}
        assert enrolled[A] == "Lyceum No. 42" and enrolled[B] == "Gymnasium No. 17"
        status, data = get_json(f"http://127.0.0.1:{base}/_parta/v1/directory/rooms")
        assert status == 200
        by_name = {r["name"]: r["server"] for r in data["rooms"]}
        assert by_name["Chess club"] == A and by_name["Robotics club"] == B
        assert by_name["City announcements"] == GATEWAY
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, "".join(lines) + rest
    assert "Stopped." in rest
    assert all(_free(base + o) for o in (0, 10, 20)), "a demo process is still listening"
