"""A Parta node for the ingest benchmark's *bound* phase: PDU checks 1-3 skipped (bench only).

Run as ``python bench/ingest_bound_node.py node run -c CONFIG`` (``bench_federation.py``
does, with ``--ingest-bound``).  Never use it for a real node: it accepts any PDU its
origin's request carries, unchecked.

What it measures: the server-server API's "Checks performed on receipt of a PDU" steps 1-3
(format, the ed25519 signatures, the content hash) are the part of ingest that could be made
faster or moved to other threads or processes.  This node replaces them with "trust the PDU":
only its event ID is computed (the reference hash; without it nothing can refer to the
event), no copy is made and no signature is verified.  Everything else is the real node:
TLS, HTTP, X-Matrix request authentication (one verification per transaction), the
transaction lookup, steps 4-6, state, storage and the response.  Its ingest rate is
therefore the most that any work on steps 1-3 - faster code, more verifier threads, worker
processes - could give on this machine.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from federation.events import checks
from federation.events.hashes import compute_event_id
from federation.events.model import Event
from node.federation import pdu_checks


def _trusted(pdu, room_version, get_verify_key):  # noqa: ANN001, ANN202 - as the original
    """``prepare_received_event`` with steps 1-3 skipped: the event, no verifications."""
    return Event(pdu, room_version, event_id=compute_event_id(pdu, room_version)), []


def main() -> int:
    checks.prepare_received_event = _trusted
    pdu_checks.prepare_received_event = _trusted
    print(
        "ingest_bound_node: PDU checks 1-3 are SKIPPED (benchmark bound only)",
        file=sys.stderr,
        flush=True,
    )
    from node.cli.main import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
