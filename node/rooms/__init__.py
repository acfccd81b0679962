"""Rooms area: creating rooms, sending and persisting events, membership, state, aliases,
the room directory and hierarchy.

Entry point: ``node.rooms.wiring.wire(ctx, ...)``, called by the composition root
``node/app.py``.
"""
