"""Test doubles shared by ``tests/unit`` and ``tests/e2e`` (import as ``support.<module>``).

``db``: ``InlineDB``, the ``Database`` double that runs each call synchronously;
``clocks``: fake clocks with injected time; ``deferreds``: driving coroutines and Deferreds
that complete synchronously.  Area-specific helpers stay beside their tests.
"""
