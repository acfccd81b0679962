"""Helpers for the people area's tests (not a test module): a copy of the sample OneRoster
export to edit, and rows to add or drop."""

from __future__ import annotations

import csv
import os
import shutil
import sys
from pathlib import Path

# The node tests' shared harnesses (accounts_support, rooms_support) live one folder up.
_NODE_TESTS = str(Path(__file__).resolve().parents[1])
if _NODE_TESTS not in sys.path:
    sys.path.insert(0, _NODE_TESTS)

SAMPLE = Path(__file__).resolve().parents[4] / "deploy" / "samples" / "oneroster"


def sample_copy(tmp_path: Path) -> Path:
    target = tmp_path / "export"
    shutil.copytree(SAMPLE, target)
    return target


def read_rows(export: Path, name: str) -> tuple[list[str], list[dict[str, str]]]:
    with open(export / f"{name}.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def write_rows(export: Path, name: str, header: list[str], rows: list[dict[str, str]]) -> None:
    with open(export / f"{name}.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


def edit(export: Path, name: str, fn) -> None:
    """Replace ``name``.csv's rows by ``fn(rows)``."""
    header, rows = read_rows(export, name)
    write_rows(export, name, header, fn(rows))


def append_line(export: Path, name: str, line: str) -> None:
    with open(os.path.join(export, f"{name}.csv"), "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


class _Call:
    def active(self) -> bool:
        return False

    def cancel(self) -> None:
        pass


def hold_clock():
    """The rooms tests' step clock, with the timer the persister's ``hold`` arms (never
    fired: the room sync releases its hold itself)."""
    from rooms_support import StepClock

    class HoldClock(StepClock):
        def call_later(self, seconds, fn, *args):
            return _Call()

    return HoldClock()
