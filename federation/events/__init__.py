"""Events (PDUs): the model, hashes and IDs, redaction, building and checking."""

from .model import Event, StateKey

__all__ = ["Event", "StateKey"]
