"""The Matrix protocol core: pure functions over plain data, no I/O.

Canonical JSON, signing keys, JSON signatures, events (PDUs), redaction, room versions,
authorization rules and state resolution.  The transport (X-Matrix auth, key fetching,
transactions) lives in ``federation.transport`` and is the only part that may touch Twisted.
"""
