"""E2E: roster attacks served by a fake gateway.

A real school node A is enrolled with a fake gateway: an in-process HTTPS server
(``FakeServer``, certificate from the test CA) that A's refresher asks for
``/_parta/v1/roster?since=N`` and that pushes signed roster hints.  The enrolment files are
what ``parta node enrol`` leaves (the pinned roster key of the test's city, roster version
1).  After a good version 2 the fake gateway serves, one after the other:

* a version 3 signed by another roster key,
* the real version 3 modified after signing (a rogue server added, old signature kept),
* a rollback to version 1,
* a version 3 that does not chain onto version 2 (broken hash chain),

and each is refused: ``parta_roster_updates_rejected_total{reason}`` counts it, A keeps
enforcing version 2 (member admitted, rogue refused) and ``roster.json`` is unchanged.  A
correct version 3 is then accepted and admits the rogue server.
"""

from __future__ import annotations

import json
import os
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from city_fixtures import city, city_ca  # noqa: F401 - pytest fixtures
from city_harness import metric, wait_until
from federation.keys import SigningKey
from federation.roster import (
    build_roster,
    generate_roster_key,
    roster_key_fingerprint,
    server_entry,
)
from federation_env import q

pytestmark = pytest.mark.timeout(600)

DAY_MS = 24 * 3600 * 1000


def now_ms() -> int:
    return int(time.time() * 1000)


class FakeGateway:
    """The roster side of a gateway, served by a ``FakeServer``."""

    def __init__(self, fake) -> None:
        self.fake = fake
        self.key = generate_roster_key(1)
        self.docs: list[dict] = []
        self.serve = None  # since -> versions (None: the honest chain)
        fake.handlers.append(self._handle)

    def _handle(self, fake, method, path, body, headers):
        parts = urlsplit(path)
        if method != "GET" or parts.path != "/_parta/v1/roster":
            return None
        since = int(parse_qs(parts.query).get("since", ["0"])[0])
        docs = self.serve(since) if self.serve else [d for d in self.docs if d["version"] > since]
        return 200, {"versions": docs, "limited": False, "latest_version": self.docs[-1]["version"]}

    def sign(self, servers: dict, prev: dict | None, key: SigningKey | None = None) -> dict:
        return build_roster(
            prev, servers, now_ms(), 7 * DAY_MS, self.fake.server_name, key or self.key
        )

    def publish(self, servers: dict) -> dict:
        doc = self.sign(servers, self.docs[-1] if self.docs else None)
        self.docs.append(doc)
        return doc

    def hint(self, node) -> None:
        status, body = self.fake.request(
            node.server_name, "PUT", "/_parta/v1/roster_hint", {"version": 0}
        )
        assert status == 200, body


def entry(name: str, school_id: str, key: SigningKey, cls: str = "school") -> dict:
    return server_entry(
        school_id=school_id, name=name, server_class=cls, verify_keys=[key.verify_key]
    )


@pytest.fixture(scope="module")
def setup(city):  # noqa: F811 - the pytest fixture imported above
    gw = FakeGateway(city.fake())
    member, rogue = city.fake(), city.fake()  # not enrolled anywhere: the fake
    a = city.new_node("a")  # gateway's roster decides
    from city_harness import signing_key_of

    servers = {
        gw.fake.server_name: entry("Fake city", "city", gw.fake.signing_key, "city"),
        a.server_name: entry("School A", "a", signing_key_of(a)),
        member.server_name: entry("Member", "m", member.signing_key),
    }
    v1 = gw.publish(servers)
    vk = gw.key.verify_key
    with open(os.path.join(a.data_dir, "roster_key.json"), "w") as fh:
        json.dump(
            {
                "signer_name": gw.fake.server_name,
                "key_id": vk.key_id,
                "key": vk.encode(),
                "fingerprint": roster_key_fingerprint(vk),
                "gateway_url": f"https://localhost:{gw.fake.port}",
                "enrolled_ts": now_ms(),
            },
            fh,
        )
    with open(os.path.join(a.data_dir, "roster.json"), "w") as fh:
        json.dump(v1, fh)
    a.start()
    return {"gw": gw, "a": a, "member": member, "rogue": rogue, "servers": servers}


def profile_status(setup, who) -> int:
    a = setup["a"]
    status, _ = who.request(
        a.server_name,
        "GET",
        f"/_matrix/federation/v1/query/profile?user_id={q('@nobody:' + a.server_name)}",
    )
    return status


def roster_file(a) -> dict:
    with open(os.path.join(a.data_dir, "roster.json")) as fh:
        return json.load(fh)


def assert_enforcing(setup, version: int) -> None:
    a = setup["a"]
    assert metric(a, "parta_roster_version") == version
    assert roster_file(a)["version"] == version
    assert profile_status(setup, setup["member"]) in (200, 404)  # admitted
    assert profile_status(setup, setup["rogue"]) == 403  # refused


def rejected(a, reason: str) -> float:
    return metric(a, "parta_roster_updates_rejected_total", {"reason": reason}) or 0.0


def test_enrolled_node_enforces_version_1_then_accepts_version_2(setup):
    a, gw = setup["a"], setup["gw"]
    wait_until(lambda: metric(a, "parta_roster_version") == 1, "A enforces version 1")
    assert_enforcing(setup, 1)
    gw.publish(dict(setup["servers"]))  # re-signed, same servers
    gw.hint(a)
    wait_until(lambda: metric(a, "parta_roster_version") == 2, "A accepts version 2")
    assert_enforcing(setup, 2)
    assert roster_file(a) == gw.docs[1]


@pytest.mark.parametrize(
    "attack,reason",
    [
        ("other_key", "signature"),
        ("modified", "signature"),
        ("rollback", "rollback"),
        ("broken_chain", "chain"),
    ],
)
def test_roster_attack_is_refused_and_the_last_good_roster_kept(setup, attack, reason):
    a, gw = setup["a"], setup["gw"]
    v1, v2 = gw.docs[0], gw.docs[1]
    with_rogue = dict(setup["servers"])
    with_rogue[setup["rogue"].server_name] = entry("Rogue", "r", setup["rogue"].signing_key)
    if attack == "other_key":
        bad = [gw.sign(with_rogue, v2, key=generate_roster_key(1))]
    elif attack == "modified":
        real_v3 = gw.sign(dict(setup["servers"]), v2)
        bad = [{**real_v3, "servers": with_rogue}]
    elif attack == "rollback":
        bad = [v1]
    else:
        fork_v2 = gw.sign(with_rogue, v1)
        bad = [gw.sign(with_rogue, fork_v2)]  # version 3, chained to the fork
    before = rejected(a, reason)
    gw.serve = lambda since: bad
    try:
        gw.hint(a)
        wait_until(
            lambda: rejected(a, reason) > before, f"A refuses the {attack} roster ({reason})"
        )
        assert_enforcing(setup, 2)
    finally:
        gw.serve = None
    assert roster_file(a) == v2


def test_a_correct_version_3_is_accepted_after_the_attacks(setup):
    a, gw = setup["a"], setup["gw"]
    servers = dict(setup["servers"])
    servers[setup["rogue"].server_name] = entry("Rogue", "r", setup["rogue"].signing_key)
    v3 = gw.publish(servers)
    gw.hint(a)
    wait_until(lambda: metric(a, "parta_roster_version") == 3, "A accepts version 3")
    assert roster_file(a) == v3
    assert profile_status(setup, setup["rogue"]) in (200, 404)
