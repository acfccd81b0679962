"""A small city for the roster enforcement unit tests: a roster key, a gateway that signs
versions on demand (``City.publish``), and the data-dir files of an enrolled node."""

from __future__ import annotations

import json
import os
from typing import Any

from federation.keys import SigningKey
from federation.roster import build_roster, generate_roster_key, server_entry

GATEWAY = "city.test"
SCHOOL_A = "a.school.test"
SCHOOL_B = "b.school.test"
MINISTRY = "ministry.test"
ROGUE = "rogue.test"
T0_MS = 1_700_000_000_000
DAY_MS = 24 * 3600 * 1000


class City:
    def __init__(self, validity_ms: int = 7 * DAY_MS) -> None:
        self.roster_key = generate_roster_key(1)
        self.validity_ms = validity_ms
        self.keys = {
            name: SigningKey.generate() for name in (GATEWAY, SCHOOL_A, SCHOOL_B, MINISTRY, ROGUE)
        }
        self.docs: list[dict] = []

    def entry(
        self, name: str, school_id: str, cls: str = "school", old: dict | None = None
    ) -> dict:
        return server_entry(
            school_id=school_id,
            name=f"Server {school_id}",
            district="X",
            server_class=cls,
            verify_keys=[self.keys[name].verify_key],
            old_verify_keys=old,
        )

    def servers(self, *names: str) -> dict:
        table = {
            GATEWAY: ("city", "city"),
            SCHOOL_A: ("a", "school"),
            SCHOOL_B: ("b", "school"),
            MINISTRY: ("m", "external"),
            ROGUE: ("r", "school"),
        }
        return {n: self.entry(n, *table[n]) for n in names}

    def publish(
        self,
        servers: dict,
        issued_ts: int | None = None,
        key: SigningKey | None = None,
        prev: dict | None = None,
    ) -> dict:
        """The next version after the last published one (or after ``prev``)."""
        if prev is None:
            prev = self.docs[-1] if self.docs else None
        ts = issued_ts if issued_ts is not None else (prev["issued_ts"] + 1000 if prev else T0_MS)
        doc = build_roster(prev, servers, ts, self.validity_ms, GATEWAY, key or self.roster_key)
        self.docs.append(doc)
        return doc

    def after(self, since: int) -> list[dict]:
        return [d for d in self.docs if d["version"] > since]

    def enrol_files(
        self, data_dir: str, doc: dict | None = None, gateway_url: str = "http://127.0.0.1:1"
    ) -> None:
        """What ``parta node enrol`` leaves in the data dir."""
        vk = self.roster_key.verify_key
        with open(os.path.join(data_dir, "roster_key.json"), "w") as fh:
            json.dump(
                {
                    "signer_name": GATEWAY,
                    "key_id": vk.key_id,
                    "key": vk.encode(),
                    "fingerprint": "x",
                    "gateway_url": gateway_url,
                    "enrolled_ts": T0_MS,
                },
                fh,
            )
        if doc is not None:
            with open(os.path.join(data_dir, "roster.json"), "w") as fh:
                json.dump(doc, fh)


class FakeConfig:
    """The parts of ``node.config.Config`` the roster policy reads."""

    def __init__(
        self,
        data_dir: str,
        roster: str = "auto",
        refresh: Any = 60.0,
        extensions: dict | None = None,
    ) -> None:
        from node.config import FederationConfig

        self.data_dir = data_dir
        self.federation = FederationConfig(roster=roster, roster_refresh_seconds=refresh)
        self.extensions = extensions or {}
