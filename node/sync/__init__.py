"""Sync area: ``/sync``, filters, typing, receipts, read markers, account data, user directory.

Entry points: ``node.sync.notifier.make_notifier(ctx)`` and ``node.sync.wiring.wire(...)``.
"""
