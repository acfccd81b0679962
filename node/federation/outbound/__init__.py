"""Outbound federation: the persisted per-destination queue, transactions with
backoff and catch-up, fan-out of local events and EDUs.  ``wiring.wire`` builds it."""
