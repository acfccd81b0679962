"""SQLAlchemy Core tables (one module per domain, all on ``schema.metadata``) and migrations."""

from .meta import metadata

__all__ = ["metadata"]
