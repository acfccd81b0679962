"""Seeding and verifying the demo city through the client API (``gateway.demo_city`` steps
4 and 5), as a client would: plain JSON over HTTP to each node's client listener.

The seeded room IDs are kept in ``<root>/.seeded``; a re-run skips seeding and only
verifies.
"""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from .demo_city_layout import (
    GATEWAY,
    OFFICE,
    PASSWORD,
    STEP_TIMEOUT,
    City,
    DemoError,
    NodeDir,
    School,
    log_tail,
    say,
)

V3 = "/_matrix/client/v3"
TEACHERS_ROOM = "City teachers"
TEACHERS_MESSAGE = (
    "Welcome, colleagues from Gymnasium No. 17! Materials for the city maths "
    "olympiad are collected here."
)
ANNOUNCEMENT = (
    "Welcome to the city's school network: every school is connected. The new "
    "term starts on Monday, 1 September."
)
DIRECTORS_MESSAGE = "Directors' meeting at the city office on Thursday at 10:00."


# --- HTTP ----------------------------------------------------------------------------------


def http(
    method: str,
    url: str,
    body: Any = None,
    token: str | None = None,
    *,
    timeout: float = 60.0,
    context: Any = None,
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:  # noqa: S310 - the demo's own URL
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode("utf-8", "replace")


class Client:
    """One logged-in user on one node."""

    def __init__(self, node: NodeDir, user_id: str, token: str) -> None:
        self.node = node
        self.user_id = user_id
        self.token = token
        self._txn = int(time.time() * 1000)

    def call(self, method: str, path: str, body: Any = None, *, ok: tuple = (200,)) -> Any:
        status, data = http(method, self.node.url + path, body, self.token)
        if status not in ok:
            raise DemoError(
                f"{self.user_id}: {method} {path.split('?')[0]} -> {status} "
                f"{(data or {}).get('error') if isinstance(data, dict) else data}"
            )
        return data

    def create_room(self, body: dict) -> str:
        return self.call("POST", V3 + "/createRoom", body)["room_id"]

    def invite(self, room_id: str, user_id: str) -> None:
        self.call("POST", f"{V3}/rooms/{quote(room_id)}/invite", {"user_id": user_id})

    def join(self, room: str, via: str | None = None) -> str:
        query = f"?server_name={quote(via)}" if via else ""
        return self.call("POST", f"{V3}/join/{quote(room)}{query}", {})["room_id"]

    def send(self, room_id: str, body: str) -> str:
        self._txn += 1
        return self.call(
            "PUT",
            f"{V3}/rooms/{quote(room_id)}/send/m.room.message/demo{self._txn}",
            {"msgtype": "m.text", "body": body},
        )["event_id"]

    def timeline_bodies(self, room_id: str) -> list[str]:
        data = self.call("GET", f"{V3}/rooms/{quote(room_id)}/messages?dir=b&limit=50")
        return [
            e.get("content", {}).get("body")
            for e in data.get("chunk", [])
            if e.get("type") == "m.room.message"
        ]


def school_of(node: NodeDir) -> School:
    """The school of one of ``city.schools`` (only the gateway's directory has none)."""
    assert node.school is not None
    return node.school


def login(node: NodeDir, localpart: str) -> Client:
    status, data = http(
        "POST",
        node.url + V3 + "/login",
        {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": localpart},
            "password": PASSWORD,
            "initial_device_display_name": "parta demo",
        },
    )
    if status != 200:
        raise DemoError(f"login of {localpart} on {node.server} failed: {status} {data}")
    return Client(node, data["user_id"], data["access_token"])


def until(what: str, check: Any, timeout: float = STEP_TIMEOUT) -> Any:
    """Poll ``check()`` until it returns a true value (DemoError after ``timeout``)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except DemoError as exc:
            last = exc
        time.sleep(0.3)
    raise DemoError(f"timed out waiting for {what}" + (f" ({last})" if last else ""))


def wait_ready(node: NodeDir, ca_file: str, timeout: float) -> None:
    """The client listener answers /health and the federation listener its version."""
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.check_hostname = False  # loopback address, certificate for the server name
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.proc.poll() is not None:
            raise DemoError(f"{node.label} exited during start-up:\n{log_tail(node)}")
        try:
            if (
                http("GET", node.url + "/health", timeout=2)[0] == 200
                and http(
                    "GET",
                    f"https://127.0.0.1:{node.fed_port}/_matrix/federation/v1/version",
                    timeout=2,
                    context=ctx,
                )[0]
                == 200
            ):
                return
        except (OSError, ssl.SSLError):
            pass
        time.sleep(0.2)
    raise DemoError(f"{node.label} did not start within {timeout:.0f}s")


def roster_version(url: str) -> int:
    status, doc = http("GET", url + "/_parta/v1/roster")
    return doc["version"] if status == 200 else 0


def enforced_version(node: NodeDir) -> int:
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{node.metrics_port}/metrics", timeout=5
        ) as resp:
            text = resp.read().decode()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("parta_roster_version "):
            return int(float(line.split()[1]))
    return 0


# --- seeding -------------------------------------------------------------------------------


def _marker(city: City) -> str:
    return os.path.join(city.root, ".seeded")


def seed(city: City) -> dict[str, str]:
    """Create the demo rooms once; room name -> room ID."""
    latest = roster_version(city.gateway.url)
    for node in city.schools:
        until(
            f"{node.label} to enforce roster version {latest}",
            lambda n=node: enforced_version(n) >= latest,
        )
    say(f"[3/5] both schools enforce roster version {latest} (gateway + 2 schools)")
    if os.path.exists(_marker(city)):
        with open(_marker(city), encoding="utf-8") as fh:
            rooms: dict[str, str] = json.load(fh)
        say("[4/5] already seeded (rooms reused)")
        return rooms
    a, b = city.schools
    users = {
        school_of(node).key: {lp: login(node, lp) for lp, _, _ in school_of(node).users}
        for node in city.schools
    }
    office = login(city.gateway, OFFICE)
    rooms = {}

    for node in city.schools:
        school = school_of(node)
        u = users[school.key]
        teachers = [c for lp, c in u.items() if lp.startswith("teacher.")]
        others = [c for lp, c in u.items() if lp.split(".")[0] in ("pupil", "parent")]
        head = teachers[0]
        class_id = head.create_room(
            {
                "name": f"{school.class_name} ({school.name})",
                "preset": "private_chat",
                "topic": f"Homework and news for {school.class_name}",
                "invite": [c.user_id for c in teachers[1:] + others],
            }
        )
        for c in teachers[1:] + others:
            c.join(class_id)
        head.send(class_id, f"Welcome to {school.class_name}! Homework: p. 42, ex. 1-5.")
        others[0].send(class_id, "Thanks, got it.")
        rooms[f"{school.class_name} ({school.name})"] = class_id
        alias, name, topic = school.club
        rooms[name] = teachers[1].create_room(
            {
                "name": name,
                "topic": topic,
                "preset": "public_chat",
                "visibility": "public",
                "room_alias_name": alias,
            }
        )
        say(f"[4/5] {school.name}: {school.class_name} with pupils and a parent, public {name}")

    ana = users["a"]["teacher.ana"]
    b_teachers = [c for lp, c in users["b"].items() if lp.startswith("teacher.")]
    teachers_id = ana.create_room(
        {
            "name": TEACHERS_ROOM,
            "topic": "Teachers of every school in the city",
            "preset": "private_chat",
            "invite": [users["a"]["teacher.ben"].user_id] + [c.user_id for c in b_teachers],
        }
    )
    users["a"]["teacher.ben"].join(teachers_id)
    for c in b_teachers:
        until(
            f"{c.user_id} to join {TEACHERS_ROOM} over federation",
            lambda c=c: c.join(teachers_id, via=a.server),
        )
    ana.send(teachers_id, TEACHERS_MESSAGE)
    rooms[TEACHERS_ROOM] = teachers_id
    say(
        f"[4/5] {TEACHERS_ROOM}: created on {a.server}, teachers of {b.server} joined over "
        "federation"
    )

    news_alias = f"#announcements:{GATEWAY}"
    news_id = until(
        "the city announcements room",
        lambda: office.call("GET", f"{V3}/directory/room/{quote(news_alias)}", ok=(200,))[
            "room_id"
        ],
    )
    for key in ("a", "b"):
        for c in users[key].values():
            until(f"{c.user_id} to join {news_alias}", lambda c=c: c.join(news_alias))
    office.send(news_id, ANNOUNCEMENT)
    rooms["City announcements"] = news_id
    say(
        f"[4/5] city announcements ({news_alias}): every demo user joined, the office "
        "posted an announcement"
    )

    office.call("POST", "/_parta/v1/directory/refresh", {})
    directors_alias = f"#directors:{GATEWAY}"
    directors_id = office.call("GET", f"{V3}/directory/room/{quote(directors_alias)}")["room_id"]
    for key in ("a", "b"):
        director = users[key]["director"]
        until(
            f"{director.user_id} to accept the invite to {directors_alias}",
            lambda d=director: d.join(directors_id, via=GATEWAY),
        )
    office.send(directors_id, DIRECTORS_MESSAGE)
    rooms["School directors"] = directors_id
    say(
        "[4/5] the gateway gathered both schools (public rooms, counts, directors) and "
        f"invited the directors to {directors_alias}; they joined"
    )
    with open(_marker(city), "w", encoding="utf-8") as fh:
        json.dump(rooms, fh, indent=1)
    return rooms


# --- verification ----------------------------------------------------------------------------


def verify(city: City, rooms: dict[str, str]) -> None:
    a, b = city.schools
    iva = login(b, "teacher.iva")
    until(
        f"{iva.user_id} to see the teachers' room message from {a.server}",
        lambda: TEACHERS_MESSAGE in iva.timeline_bodies(rooms[TEACHERS_ROOM]),
    )
    until(
        f"{iva.user_id} to see the city announcement",
        lambda: ANNOUNCEMENT in iva.timeline_bodies(rooms["City announcements"]),
    )
    say(
        f"[5/5] verified: {iva.user_id} reads the message from {a.server} and the city announcement"
    )
    status, data = http("GET", city.gateway.url + "/_parta/v1/directory/schools")
    enrolled = {
        s["server"] for s in (data or {}).get("schools", []) if s.get("status") == "enrolled"
    }
    if not {a.server, b.server} <= enrolled:
        raise DemoError(f"the gateway's directory does not list both schools as enrolled: {data}")
    office = login(city.gateway, OFFICE)
    gathered = office.call("POST", "/_parta/v1/directory/refresh", {})["gathered"]
    for node in city.schools:
        stats = (gathered.get(node.server) or {}).get("stats") or {}
        if stats.get("users") != len(
            school_of(node).users
        ) or f"@director:{node.server}" not in stats.get("directors", []):
            raise DemoError(
                f"the gateway did not gather {node.server}'s counts: {gathered.get(node.server)}"
            )
    status, data = http("GET", city.gateway.url + "/_parta/v1/directory/rooms")
    servers = {r["server"] for r in (data or {}).get("rooms", [])}
    if not {a.server, b.server} <= servers:
        raise DemoError(f"the city directory lacks a school's public rooms: {data}")
    say(
        f"[5/5] verified: the gateway lists both schools as enrolled, their published "
        f"counts and directors, and {data['total']} public rooms of the city"
    )


def print_summary(city: City, rooms: dict[str, str]) -> None:
    gw = city.gateway
    say("")
    say(f"City office dashboard: {gw.url}/dashboard/   (login: {OFFICE} / {PASSWORD})")
    say(f"Gateway (homeserver {GATEWAY}): {gw.url}")
    for node in city.schools:
        school = school_of(node)
        say(f"{school.name} (homeserver {node.server}): {node.url}")
        for localpart, role, display in school.users:
            say(f"  {'@' + localpart + ':' + node.server:<34} {role:<9} {display}")
    say(f"Password for every demo login: {PASSWORD}")
    say("Rooms:")
    for name, room_id in rooms.items():
        say(f"  {name:<34} {room_id}")
    say("Try it: any Matrix client (Element, matrix-nio) against a client URL above.")
