"""E2E (marker ``synapse``): a real Synapse configured from ``parta gateway roster export
--format synapse`` federates with an enrolled Parta school (a school that already runs
another homeserver).

The Synapse (from PyPI, ``tests/e2e/interop`` locates it) is set up with the loopback facts
of shared/INTEROP.md (``bench/federation_env.py`` ``FederatedSynapse``: TLS listener with a
certificate from the test CA, loopback allowed, certificates verified against that CA);
its server key is enrolled with the city gateway through the gateway's enrolment API; then
the gateway's export is merged into its ``homeserver.yaml``: ``federation_domain_whitelist``
(every roster member) and ``trusted_key_servers`` (the gateway's notary, which vouches for
roster members' keys, signed with the gateway's server key).  The Parta school pins the
Synapse's key from the roster.  A Synapse user joins a room on the school and a school user
joins a room on the Synapse; messages flow both ways; the Synapse got the school's keys from
the gateway's notary.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

import pytest
import yaml

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "interop")
)

from city_fixtures import city, city_ca  # noqa: F401 - pytest fixtures
from e2e_helpers import run
from fed_harness import (
    close_all,
    members_are,
    new_watcher,
    send_text,
    wait_for,
    wait_for_bodies,
)
from federation.keys import load_signing_key_file
from federation_env import FederatedSynapse
from interop_fixtures import synapse_python  # noqa: F401 - pytest fixture

pytestmark = [pytest.mark.synapse, pytest.mark.timeout(900)]


class RosterSynapse(FederatedSynapse):
    """Configured in steps (key first, roster export merged later), then started."""

    def merge_config(self, fragment: dict) -> None:
        with open(self.config_path) as fh:
            cfg = yaml.safe_load(fh)
        cfg.update(fragment)
        with open(self.config_path, "w") as fh:
            yaml.safe_dump(cfg, fh, sort_keys=False)

    def signing_keys(self) -> list:
        with open(self.config_path) as fh:
            path = yaml.safe_load(fh)["signing_key_path"]
        return load_signing_key_file(path)

    def start(self) -> None:  # configure() was called before
        out = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.python, "-m", "synapse.app.homeserver", "-c", self.config_path],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self.wait_ready(180)


@pytest.fixture(scope="module")
def world(city, synapse_python, city_ca, tmp_path_factory):  # noqa: F811 - the pytest fixture imported above
    gateway = city.start_gateway()
    a, _ = city.school("a")
    synapse = RosterSynapse(
        str(tmp_path_factory.mktemp("roster-synapse")), synapse_python, city_ca, log_level="INFO"
    )
    synapse.configure()
    gateway.enrol_keys(synapse.server_name, synapse.signing_keys(), "syn", "Synapse school")
    export = gateway.gw_cli("roster", "export", "--format", "synapse")
    fragment = yaml.safe_load(export)
    synapse.merge_config(fragment)
    version = gateway.roster_version()
    city.wait_version(a, version)
    try:
        synapse.start()
        yield {"gateway": gateway, "a": a, "synapse": synapse, "fragment": fragment}
    finally:
        synapse.stop()


def requests_to(node, route: str) -> float:
    with urllib.request.urlopen(node.metrics_url + "/metrics", timeout=10) as resp:  # noqa: S310 - loopback
        lines = resp.read().decode().splitlines()
    return sum(
        float(line.split()[-1])
        for line in lines
        if line.startswith("parta_http_requests_total{") and f'route="{route}"' in line
    )


def test_export_lists_the_roster_and_the_gateway_notary(world):
    fragment, gateway = world["fragment"], world["gateway"]
    assert set(fragment["federation_domain_whitelist"]) == {
        gateway.server_name,
        world["a"].server_name,
        world["synapse"].server_name,
    }
    (notary,) = fragment["trusted_key_servers"]
    assert notary["server_name"] == gateway.server_name


async def _synapse_watcher(synapse, prefix):
    import secrets

    from nio import AsyncClient, RegisterResponse

    from e2e_helpers import DEFAULT_PASSWORD
    from fed_harness import Watcher

    client = AsyncClient(synapse.base_url)
    resp = await client.register(
        f"{prefix}{secrets.token_hex(3)}", DEFAULT_PASSWORD, device_name="city"
    )
    assert isinstance(resp, RegisterResponse), f"register on Synapse: {resp}"
    w = Watcher(client)
    await w.sync_once(timeout_ms=0)
    return w


async def _room_between(owner, guest):
    from nio import JoinResponse, RoomCreateResponse, RoomInviteResponse

    created = await owner.client.room_create(name="Stadt und Synapse", room_version="12")
    assert isinstance(created, RoomCreateResponse), created
    room_id = created.room_id
    inv = await owner.client.room_invite(room_id, guest.user_id)
    assert isinstance(inv, RoomInviteResponse), inv
    await guest.until(lambda w: room_id in w.invites, what="the invite")
    joined = await guest.client.join(room_id)
    assert isinstance(joined, JoinResponse), joined
    both = {owner.user_id, guest.user_id}
    await wait_for(lambda: members_are(owner, room_id, both), what="members at the owner")
    await wait_for(lambda: members_are(guest, room_id, both), what="members at the guest")
    return room_id


async def _both_ways(parta_w, syn_w, room_id, tag):
    await send_text(parta_w, room_id, f"Schule sagt {tag}")
    (ev,) = await wait_for_bodies(syn_w, room_id, [f"Schule sagt {tag}"])
    assert ev["sender"] == parta_w.user_id
    await send_text(syn_w, room_id, f"Synapse sagt {tag}")
    (ev,) = await wait_for_bodies(parta_w, room_id, [f"Synapse sagt {tag}"])
    assert ev["sender"] == syn_w.user_id


def test_synapse_user_joins_a_room_on_the_school(world):
    async def scenario():
        alice = await new_watcher(world["a"], "alice")
        sam = await _synapse_watcher(world["synapse"], "sam")
        try:
            room_id = await _room_between(alice, sam)
            await _both_ways(alice, sam, room_id, "eins")
        finally:
            await close_all(alice, sam)

    run(scenario(), timeout=600)
    # Synapse asked the gateway's notary for keys (its only trusted key server).
    assert requests_to(world["gateway"], "/_matrix/key/v2/query") > 0


def test_school_user_joins_a_room_on_synapse(world):
    async def scenario():
        alice = await new_watcher(world["a"], "alice")
        sam = await _synapse_watcher(world["synapse"], "sam")
        try:
            room_id = await _room_between(sam, alice)
            await _both_ways(alice, sam, room_id, "zwei")
        finally:
            await close_all(alice, sam)

    run(scenario(), timeout=600)
