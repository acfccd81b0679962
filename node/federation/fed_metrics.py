"""Federation counters on the node's Prometheus registry (``node.metrics.REGISTRY``).

* ``parta_federation_pdus{outcome}``: received PDUs by outcome -- ``accepted``,
  ``soft_failed``, ``rejected``, ``dropped`` (steps 1-2 or the server policy);
* ``parta_federation_transactions{result}``: ``/send`` transactions ``processed`` or
  ``replayed`` (answered from the stored response);
* ``parta_federation_edus{edu_type}``: received EDUs by type.
"""

from __future__ import annotations

from prometheus_client import Counter

from node.metrics import REGISTRY

PDUS = Counter("parta_federation_pdus", "Received PDUs by outcome", ["outcome"], registry=REGISTRY)
TRANSACTIONS = Counter(
    "parta_federation_transactions", "Inbound /send transactions", ["result"], registry=REGISTRY
)
EDUS = Counter("parta_federation_edus", "Received EDUs by type", ["edu_type"], registry=REGISTRY)

KNOWN_EDUS = (
    "m.typing",
    "m.receipt",
    "m.presence",
    "m.device_list_update",
    "m.signing_key_update",
    "m.direct_to_device",
)


_PDU_CHILDREN: dict[str, Counter] = {}


def pdu(outcome: str) -> None:
    child = _PDU_CHILDREN.get(outcome)
    if child is None:  # labels() costs more than inc(); one child per outcome
        child = _PDU_CHILDREN[outcome] = PDUS.labels(outcome)
    child.inc()


def transaction(result: str) -> None:
    TRANSACTIONS.labels(result).inc()


def edu(edu_type: str) -> None:
    EDUS.labels(edu_type if edu_type in KNOWN_EDUS else "other").inc()
