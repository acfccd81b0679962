"""E2E: city-wide verified roles (docs/people.md) with a real gateway and two enrolled schools.

* a teacher at school A sees school B's director as verified through the profile field
  ``org.parta.role`` (asked over federation, checked against A's roster), and B's pupil has
  no such field;
* after the gateway gathers, the teacher finds B's director in ``/user_directory/search``
  (the city staff directory), never B's pupil;
* a member server that hands out a tampered attestation is shown as unverified.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import quote

import pytest

from city_fixtures import city, city_ca  # noqa: F401 - pytest fixtures
from city_harness import OFFICE_PASSWORD
from e2e_helpers import http_request
from federation.attestations import sign_attestation

pytestmark = pytest.mark.timeout(900)

V3 = "/_matrix/client/v3"
FIELD = "org.parta.role"
PASSWORD = "staff password 1"


@pytest.fixture(scope="module")
def db_backend() -> str:
    return "sqlite"  # no backend-specific SQL here


def _call(base: str, method: str, path: str, body=None, token: str | None = None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    status, _, raw = http_request(method, base + path, body=data, headers=headers)
    return status, json.loads(raw) if raw else None


def _login(base: str, localpart: str, password: str) -> str:
    status, body = _call(
        base,
        "POST",
        V3 + "/login",
        {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": localpart},
            "password": password,
        },
    )
    assert status == 200, body
    return body["access_token"]


@pytest.fixture(scope="module")
def world(city):  # noqa: F811 - the pytest fixture imported above
    gateway = city.start_gateway()
    a, _ = city.school("a")
    b, b_id = city.school("b")
    mallory = city.fake("mallory")  # a member server that forges roles
    version = gateway.roster_version()
    for node in (a, b):
        city.wait_version(node, version)
    director = b.add_user("boss", PASSWORD, role="director", display_name="Borislava Direktor")
    pupil = b.add_user("kid", PASSWORD, role="pupil", display_name="Borislava Pupil")
    a.add_user("teach", PASSWORD, role="teacher")
    return {
        "gateway": gateway,
        "a": a,
        "b": b,
        "b_id": b_id,
        "mallory": mallory,
        "director": director,
        "pupil": pupil,
        "teacher": _login(a.base_url, "teach", PASSWORD),
    }


def _role(world, user_id: str):
    path = V3 + f"/profile/{quote(user_id)}/{FIELD}"
    return _call(world["a"].base_url, "GET", path, token=world["teacher"])


async def _nio_profile(world, user_id: str):
    """The whole profile as matrix-nio reads it (custom fields land in ``other_info``)."""
    from nio import AsyncClient, ProfileGetResponse

    client = AsyncClient(world["a"].base_url, "@teach:" + world["a"].server_name)
    client.access_token = world["teacher"]
    try:
        resp = await client.get_profile(user_id)
    finally:
        await client.close()
    assert isinstance(resp, ProfileGetResponse), resp
    return resp


def test_teacher_sees_other_schools_director_verified(world):
    resp = asyncio.run(_nio_profile(world, world["director"]))
    assert resp.displayname == "Borislava Direktor"
    shown = resp.other_info[FIELD]
    assert shown["verified"] is True
    assert shown["role"] == "director"
    assert shown["school"] == world["b_id"]
    assert shown["school_name"] == "School b"
    assert shown["attestation"]["user_id"] == world["director"]
    status, body = _role(world, world["director"])  # the single field
    assert (status, body[FIELD]["verified"]) == (200, True)
    assert FIELD not in asyncio.run(_nio_profile(world, world["pupil"])).other_info
    status, body = _role(world, world["pupil"])
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_teacher_finds_the_director_in_the_user_directory(world):
    gateway = world["gateway"]
    office = _login(gateway.base_url, "office", OFFICE_PASSWORD)
    status, body = _call(gateway.base_url, "POST", "/_parta/v1/directory/refresh", {}, token=office)
    assert status == 200, body
    status, body = _call(
        world["a"].base_url,
        "POST",
        V3 + "/user_directory/search",
        {"search_term": "borislava", "limit": 10},
        token=world["teacher"],
    )
    assert status == 200, body
    found = {r["user_id"]: r for r in body["results"]}
    assert world["director"] in found
    assert found[world["director"]].get("display_name") == "Borislava Direktor"
    assert world["pupil"] not in found


def test_a_tampered_attestation_is_shown_unverified(world):
    fake = world["mallory"]
    user = f"@mallory:{fake.server_name}"
    doc = sign_attestation(
        user_id=user,
        role="teacher",
        server_name=fake.server_name,
        school="mallory",
        key=fake.signing_key,
        issued_ts=int(time.time() * 1000),
        lifetime_ms=86_400_000,
    )
    doc["role"] = "director"  # promoted after signing

    def profile(fake, method, path, body, headers):
        if method == "GET" and path.startswith("/_matrix/federation/v1/query/profile"):
            return 200, {"displayname": "Mallory", FIELD: doc}
        return None

    fake.handlers.append(profile)
    status, body = _role(world, user)
    assert status == 200, body
    assert body[FIELD] == {"verified": False, "reason": "signature"}
