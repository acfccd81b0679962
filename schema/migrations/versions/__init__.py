"""Alembic revision scripts (generated from schema.metadata)."""
