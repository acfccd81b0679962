"""E2E: the gateway is down for the whole test: two schools enrol,
the gateway is stopped, and the schools keep federating with each other on the last
roster -- a room across both, messages both ways -- even after school A restarts (its
roster is restored from ``roster.json``).  Their refreshes fail (counted in
``parta_roster_refresh_failures_total``), the roster version stays, and a server outside
the roster is still refused (never fail open)."""

from __future__ import annotations

import pytest

from city_fixtures import city, city_ca  # noqa: F401 - pytest fixtures
from city_harness import metric, wait_until
from e2e_helpers import run
from fed_harness import Account, close_all, send_text, setup_room, wait_for_bodies
from federation_env import q

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def world(city):  # noqa: F811 - the pytest fixture imported above
    gateway = city.start_gateway()
    a, _ = city.school("a")
    b, _ = city.school("b")
    version = gateway.roster_version()
    for node in (a, b):
        city.wait_version(node, version)
    outsider = city.fake()  # never enrolled
    gateway.stop_checked()  # down for the rest of the module
    return {
        "a": a,
        "b": b,
        "version": version,
        "outsider": outsider,
        "alice": Account(a, "alice"),
        "bob": Account(b, "bob"),
    }


def test_refreshes_fail_and_the_last_roster_stays(world):
    a, b = world["a"], world["b"]
    for node in (a, b):
        wait_until(
            lambda n=node: (metric(n, "parta_roster_refresh_failures_total") or 0) > 0,
            f"{node.label} notices the gateway is down",
        )
        assert metric(node, "parta_roster_version") == world["version"]
        assert metric(node, "parta_roster_stale") == 0
    status, body = world["outsider"].request(
        a.server_name,
        "GET",
        f"/_matrix/federation/v1/query/profile?user_id={q(world['alice'].user_id)}",
    )
    assert status == 403 and "not in the city roster" in body["error"], body


async def _chat(world, room_id, tag):
    wa, wb = await world["alice"].watcher(), await world["bob"].watcher()
    try:
        await send_text(wa, room_id, f"A {tag}")
        await wait_for_bodies(wb, room_id, [f"A {tag}"])
        await send_text(wb, room_id, f"B {tag}")
        await wait_for_bodies(wa, room_id, [f"B {tag}"])
    finally:
        await close_all(wa, wb)


def test_schools_federate_without_the_gateway(world):
    async def scenario():
        wa, wb = await world["alice"].watcher(), await world["bob"].watcher()
        try:
            return await setup_room(wa, wb, name="Ohne Gateway")
        finally:
            await close_all(wa, wb)

    world["room_id"] = run(scenario(), timeout=300)
    run(_chat(world, world["room_id"], "ohne Gateway"), timeout=300)


def test_a_restarted_school_restores_the_roster_and_keeps_federating(world):
    a = world["a"]
    a.restart()
    assert metric(a, "parta_roster_version") == world["version"]
    run(_chat(world, world["room_id"], "nach dem Neustart"), timeout=300)
