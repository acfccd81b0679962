"""The people area's client-facing endpoints."""
