"""The error that stops a node from starting.

It lives below every area (not in the composition root ``node/app.py``) so that an area
such as ``node.federation.roster_policy`` can refuse its settings at start-up without
importing the composition root that imports it.  ``node.app`` re-exports it.
"""

from __future__ import annotations


class StartupError(Exception):
    """A problem that stops the node from starting (printed as one line by the CLI)."""
