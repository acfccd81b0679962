"""Failures of outbound federation requests (the other server, not our caller, is at fault).

These are not ``MatrixError``s: they describe what went wrong talking to ``destination`` and
are handled by the caller (retry, back off, try another server).  Each carries
``destination`` and a message naming it.

* ``FederationRequestError``  - base.
* ``DestinationUnreachable``  - DNS, connection refused/reset, resolution failure.
* ``TLSFailure``              - handshake or certificate verification failed (subclass of
  ``DestinationUnreachable``: the server cannot be talked to safely).
* ``AddressRefused``          - every address the destination resolved to is in
  ``federation.ip_range_blacklist`` (``ip_ranges``); no connection was attempted (subclass
  of ``DestinationUnreachable``, so callers treat it as any unreachable server).
* ``RequestTimedOut``         - no complete response within the timeout.
* ``InvalidResponse``         - the response is not the JSON object the spec requires, or
  is too large; ``status`` is the HTTP status when one was received.
* ``RemoteError``             - a well-formed error response (``request_ok`` only):
  ``status``, ``errcode``, ``body``.
"""

from __future__ import annotations

from typing import Any


class FederationRequestError(Exception):
    def __init__(self, destination: str, message: str) -> None:
        super().__init__(f"{destination}: {message}")
        self.destination = destination
        self.message = message


class DestinationUnreachable(FederationRequestError):
    pass


class TLSFailure(DestinationUnreachable):
    pass


class AddressRefused(DestinationUnreachable):
    pass


class RequestTimedOut(FederationRequestError):
    pass


class InvalidResponse(FederationRequestError):
    def __init__(self, destination: str, message: str, status: int | None = None) -> None:
        super().__init__(destination, message if status is None else f"{message} (HTTP {status})")
        self.status = status


class RemoteError(FederationRequestError):
    def __init__(self, destination: str, status: int, body: Any) -> None:
        errcode = body.get("errcode") if isinstance(body, dict) else None
        error = body.get("error") if isinstance(body, dict) else None
        self.status = status
        self.errcode = errcode if isinstance(errcode, str) else None
        self.body = body
        super().__init__(
            destination,
            f"HTTP {status} {self.errcode or ''} {error if isinstance(error, str) else ''}".strip(),
        )
