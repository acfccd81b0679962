"""The demo city's layout, shared by ``gateway.demo_city`` (processes, steps 1-3) and
``gateway.demo_city_seed`` (steps 4 and 5): the schools and their demo users, the
directories and ports of every node (``City``, ``NodeDir``), and the one-line ``DemoError``.

It is its own module so that the seeding steps can use it without importing the runner
that imports them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

GATEWAY = "city.localhost"
PASSWORD = "demo-password-42"
OFFICE = "office"


@dataclass(frozen=True)
class School:
    key: str
    server: str
    school_id: str
    name: str
    district: str
    offset: int
    users: tuple = ()  # (localpart, role, display name)
    class_name: str = ""
    club: tuple = ("", "", "")  # (alias localpart, name, topic)


SCHOOLS = (
    School(
        "a",
        "school42.localhost",
        "42",
        "Lyceum No. 42",
        "North",
        10,
        (
            ("director", "director", "Director Novak"),
            ("teacher.ana", "teacher", "Ana (Maths)"),
            ("teacher.ben", "teacher", "Ben (History)"),
            ("pupil.cara", "pupil", "Cara"),
            ("pupil.dan", "pupil", "Dan"),
            ("parent.eva", "parent", "Eva (Cara's parent)"),
        ),
        "Class 7B",
        ("chess", "Chess club", "Fridays after school, all levels welcome"),
    ),
    School(
        "b",
        "school17.localhost",
        "17",
        "Gymnasium No. 17",
        "South",
        20,
        (
            ("director", "director", "Director Horvat"),
            ("teacher.iva", "teacher", "Iva (Physics)"),
            ("teacher.marko", "teacher", "Marko (Biology)"),
            ("pupil.lena", "pupil", "Lena"),
            ("pupil.oskar", "pupil", "Oskar"),
            ("parent.petra", "parent", "Petra (Lena's parent)"),
        ),
        "Class 5A",
        ("robotics", "Robotics club", "Building line followers on Tuesdays"),
    ),
)

STEP_TIMEOUT = 90.0


class DemoError(Exception):
    """A step failed (printed as one line; the processes are stopped)."""


def say(text: str) -> None:
    print(text, flush=True)


# --- layout --------------------------------------------------------------------------------


@dataclass
class NodeDir:
    kind: str  # "gateway" or "node"
    server: str
    path: str
    client_port: int
    school: School | None = None
    proc: Any = None
    log: Any = None

    @property
    def config_path(self) -> str:
        return os.path.join(self.path, "config.yaml")

    @property
    def metrics_port(self) -> int:
        return self.client_port + 1

    @property
    def fed_port(self) -> int:
        return self.client_port + 2

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def label(self) -> str:
        return self.school.name if self.school else f"gateway {self.server}"


@dataclass
class City:
    root: str
    base_port: int
    gateway: NodeDir = field(init=False)
    schools: list[NodeDir] = field(init=False)

    def __post_init__(self) -> None:
        self.gateway = NodeDir(
            "gateway", GATEWAY, os.path.join(self.root, "gateway"), self.base_port
        )
        self.schools = [
            NodeDir(
                "node", s.server, os.path.join(self.root, s.server), self.base_port + s.offset, s
            )
            for s in SCHOOLS
        ]

    @property
    def nodes(self) -> list[NodeDir]:
        return [self.gateway, *self.schools]

    @property
    def ca_cert(self) -> str:
        return os.path.join(self.root, "ca.crt")

    @property
    def ca_key(self) -> str:
        return os.path.join(self.root, "ca.key")


def log_tail(node: NodeDir, lines: int = 15) -> str:
    try:
        with open(os.path.join(node.path, f"{node.kind}.log"), "rb") as fh:
            return b"\n".join(fh.read().splitlines()[-lines:]).decode("utf-8", "replace")
    except OSError:
        return "(no log)"
