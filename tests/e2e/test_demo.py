"""`parta demo --school` (the single-school demo; `parta demo` is the city, see
tests/e2e/city_services): seeds a school and serves it to a real client."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from nio import AsyncClient, LoginResponse, RoomMessagesResponse

from conftest import free_port, parta_command
from e2e_helpers import run

pytestmark = pytest.mark.e2e


def test_demo_seeds_a_school_a_client_can_use(tmp_path):
    port = free_port()
    data_dir = str(tmp_path / "demo")
    seeded = subprocess.run(
        parta_command()
        + ["demo", "--school", "--data-dir", data_dir, "--port", str(port), "--seed-only"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert seeded.returncode == 0, seeded.stderr
    assert f"Client URL (homeserver): http://127.0.0.1:{port}" in seeded.stdout
    assert "@teacher.ana:school42.localhost" in seeded.stdout
    password = seeded.stdout.split("password for all: ")[1].split(")")[0]

    # Second start: no re-seeding, serves until SIGTERM; a real client logs in and reads.
    proc = subprocess.Popen(
        parta_command() + ["demo", "--school", "--data-dir", data_dir, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Try it:" in line or proc.poll() is not None:
                break
        assert any("Class 7B" in line for line in lines), "".join(lines)

        async def scenario():
            client = AsyncClient(f"http://127.0.0.1:{port}", "@pupil.cara:school42.localhost")
            try:
                login = await client.login(password)
                assert isinstance(login, LoginResponse), login
                sync = await client.sync(timeout=0)
                names = {r.display_name for r in client.rooms.values()}
                assert {"Class 7B", "School 42"} <= names, names
                room_id = next(
                    rid for rid, r in client.rooms.items() if r.display_name == "Class 7B"
                )
                msgs = await client.room_messages(
                    room_id, start=sync.rooms.join[room_id].timeline.prev_batch or "", limit=50
                )
                assert isinstance(msgs, RoomMessagesResponse), msgs
                bodies = [
                    getattr(e, "body", None)
                    for e in sync.rooms.join[room_id].timeline.events + msgs.chunk
                ]
                assert any(b and "Homework: p. 42" in b for b in bodies), bodies
            finally:
                await client.close()

        run(scenario())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0
    assert sum("seeded" in line.lower() and "fail" in line.lower() for line in lines) == 0
    assert os.path.exists(os.path.join(data_dir, ".seeded"))
