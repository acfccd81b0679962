"""Alembic migrations for every table on ``schema.metadata``.

``upgrade(engine)`` brings a database to the head revision; the node calls it on start and
``parta node db upgrade`` calls it explicitly.  Alembic is configured in code (no alembic.ini):
the scripts live next to this file.

After changing a table, generate a revision and review it::

    python -m schema.migrations "what changed"

``tests/unit/node/test_cli_migrations.py`` fails while ``schema.metadata`` and the
migrations disagree.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import re
from typing import Any

log = logging.getLogger("parta.db")

MIGRATIONS_DIR = os.path.dirname(os.path.abspath(__file__))
_SKIP = {"meta", "migrations"}


def import_all_tables() -> None:
    """Import every ``schema/<domain>.py`` so all tables are registered on the metadata."""
    import schema

    for info in pkgutil.iter_modules(schema.__path__):
        if info.name not in _SKIP and not info.name.startswith("_"):
            importlib.import_module(f"schema.{info.name}")


def sqlalchemy_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 (the only PostgreSQL driver we ship)."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def alembic_config(url: str | None = None, connection: Any = None):
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", MIGRATIONS_DIR)
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Any) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


class MigrationError(Exception):
    pass


_REVISION = re.compile(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*(.+)$", re.M)


def script_head() -> str | None:
    """The single head revision, read from the scripts' text (without importing Alembic,
    which costs ~11 MB of memory for the node's whole life); None if unclear."""
    revisions: set[str] = set()
    parents: set[str] = set()
    versions = os.path.join(MIGRATIONS_DIR, "versions")
    for name in os.listdir(versions):
        if not name.endswith(".py") or name.startswith("_"):
            continue
        with open(os.path.join(versions, name), encoding="utf-8") as fh:
            text = fh.read()
        rev, down = _REVISION.search(text), _DOWN_REVISION.search(text)
        if rev is None or down is None:
            return None
        revisions.add(rev.group(1))
        parents.update(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1)))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _database_revisions(engine: Any, tables: set[str]) -> list[str]:
    from sqlalchemy import text

    if "alembic_version" not in tables:
        return []
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def upgrade(engine: Any) -> str | None:
    """Upgrade the database behind ``engine`` to head; returns the revision it is at.

    A database already at head (every start but the first after an update) is recognised
    without importing Alembic.
    """
    from sqlalchemy import inspect

    import_all_tables()
    tables = set(inspect(engine).get_table_names())
    head = script_head()
    if head is not None and _database_revisions(engine, tables) == [head]:
        return head
    from alembic import command

    if tables and "alembic_version" not in tables:
        raise MigrationError(
            "the database has tables but no migration history "
            "(not created by Parta?); use an empty database"
        )
    with engine.begin() as conn:
        command.upgrade(alembic_config(connection=conn), "head")
    rev = current_revision(engine)
    log.info("event=db_upgraded revision=%s", rev)
    return rev


def pending_changes(engine: Any) -> list:
    """Differences between the database and ``schema.metadata`` (empty when in sync)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from schema.meta import metadata

    import_all_tables()
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), metadata)


def make_revision(message: str) -> str:
    """Autogenerate a revision from the difference between head and ``schema.metadata``."""
    import tempfile

    from alembic import command
    from sqlalchemy import create_engine

    import_all_tables()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/head.db"
        engine = create_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        script = command.revision(alembic_config(url), message=message, autogenerate=True)
    return script.path if script is not None and not isinstance(script, list) else ""
