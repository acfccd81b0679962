"""What the ``parta node people ...`` commands do, on a database connection (no running
node needed; the node picks up the result, ``room_sync.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from . import claim_codes, store
from .oneroster import read_roster
from .plan import Plan, make_plan


@dataclass
class ImportResult:
    plan: Plan
    created: dict[str, str]


def plan_import(conn: Connection, directory: str) -> Plan:
    """Read and check the export (``RosterError`` lists every bad row), then plan."""
    roster = read_roster(directory)
    return make_plan(store.load_state(conn), roster)


def run_import(
    conn: Connection, directory: str, *, server_name: str, now_ms: int, dry_run: bool
) -> ImportResult:
    """Plan, and unless ``dry_run`` apply, in the caller's one transaction: nothing is
    written before the whole export has been read and checked."""
    plan = plan_import(conn, directory)
    created: dict[str, str] = {}
    if not dry_run and not plan.is_empty():
        created = store.apply_plan(conn, plan, server_name=server_name, now_ms=now_ms)
    return ImportResult(plan, created)


def issue_claim_codes(conn: Connection, class_sourced_id: str, now_ms: int) -> list[dict] | None:
    """New codes for a class's pupils and their parents (replacing older ones): rows with
    ``name``, ``role``, ``child``, ``user_id`` and the plain ``code``; None: no such class."""
    claimants = store.class_claimants(conn, class_sourced_id)
    if claimants is None:
        return None
    codes: dict[str, str] = {}
    for row in claimants:
        code = codes.get(row["user_id"]) or claim_codes.new_code()
        codes[row["user_id"]] = code
        row["code"] = code
    store.set_claim_codes(
        conn, {uid: claim_codes.normalise(code) or code for uid, code in codes.items()}, now_ms
    )
    return claimants
