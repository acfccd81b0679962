"""Alembic migrations: a fresh database upgrades to head and matches ``schema.metadata``."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from schema.migrations import (
    MigrationError,
    current_revision,
    head_revision,
    pending_changes,
    script_head,
    upgrade,
)


def test_upgrade_to_head_matches_metadata(tmp_path):
    # (PostgreSQL runs the same migrations at every e2e node start.)
    engine = create_engine(f"sqlite:///{tmp_path}/m.db")
    try:
        assert upgrade(engine) == head_revision() is not None
        assert current_revision(engine) == head_revision()
        assert pending_changes(engine) == [], (
            "schema.metadata changed without a migration: python -m schema.migrations '...'"
        )
        tables = set(inspect(engine).get_table_names())
        assert {
            "users",
            "devices",
            "access_tokens",
            "registration_tokens",
            "events",
            "rooms",
            "alembic_version",
        } <= tables
        assert upgrade(engine) == head_revision()  # idempotent
    finally:
        engine.dispose()


def test_refuses_database_without_history(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/foreign.db")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE users (x INTEGER)"))
    with pytest.raises(MigrationError, match="no migration history"):
        upgrade(engine)
    engine.dispose()


def test_start_at_head_does_not_import_alembic(tmp_path):
    import subprocess
    import sys

    engine = create_engine(f"sqlite:///{tmp_path}/h.db")
    upgrade(engine)
    engine.dispose()
    code = (
        "import sys; from sqlalchemy import create_engine; "
        "from schema.migrations import upgrade, script_head; "
        f"e = create_engine('sqlite:///{tmp_path}/h.db'); "
        "assert upgrade(e) == script_head(); print('alembic' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"


def test_script_head_agrees_with_alembic():
    assert script_head() == head_revision()
