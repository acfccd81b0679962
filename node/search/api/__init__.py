"""The search area's client-server API endpoints (one module per spec section)."""
