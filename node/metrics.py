"""Prometheus metrics of the node (own ``CollectorRegistry``, served on the metrics listener).

Other areas increment the shared instruments defined here, e.g.
``metrics.EVENTS_PERSISTED.inc(n)`` after a batch is written, ``metrics.ACTIVE_SYNCS.inc()`` /
``.dec()`` around a waiting ``/sync``.  Labels are route *templates*, never raw paths, so the
series count stays small.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from twisted.web import resource

log = logging.getLogger("parta.access")

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "parta_http_requests",
    "Client API requests by route template and status",
    ["route", "method", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "parta_http_request_seconds",
    "Client API request latency",
    ["route", "method"],
    registry=REGISTRY,
    buckets=(
        0.001,
        0.0025,
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1.0,
        2.5,
        5.0,
        10.0,
        30.0,
        60.0,
    ),
)
EVENTS_PERSISTED = Counter(
    "parta_events_persisted", "Room events written to the database", registry=REGISTRY
)
EVENT_PERSIST_BATCHES = Counter(
    "parta_event_persist_batches", "Event persistence transactions (batches)", registry=REGISTRY
)
ACTIVE_SYNCS = Gauge(
    "parta_active_syncs", "/sync requests currently waiting or running", registry=REGISTRY
)
MEDIA_UPLOADED_BYTES = Counter(
    "parta_media_uploaded_bytes", "Bytes of media uploaded", registry=REGISTRY
)
LOGINS = Counter("parta_logins", "Login attempts by result", ["result"], registry=REGISTRY)
# Content reported by users (client-server "Reporting content"): kind is event, room or user.
REPORTS = Counter("parta_reports", "Content reports accepted", ["kind"], registry=REGISTRY)


class _DbPoolCollector:
    """Reads ``db.pool_stats()`` at scrape time (threads busy/max, queued jobs)."""

    def __init__(self) -> None:
        self.source: Callable[[], dict[str, int]] | None = None

    def describe(self) -> list:
        return []

    def collect(self) -> Any:
        if self.source is None:
            return
        try:
            stats = self.source()
        except Exception:  # noqa: BLE001 - a scrape must not fail on a closed pool
            return
        for name, value in sorted(stats.items()):
            g = GaugeMetricFamily(f"parta_db_pool_{name}", f"Database thread pool: {name}")
            g.add_metric([], value)
            yield g


_DB_POOL = _DbPoolCollector()
REGISTRY.register(_DB_POOL)


def watch_db_pool(db: Any) -> None:
    _DB_POOL.source = db.pool_stats


def observe_request(route_name: str, method: str, status: int, seconds: float) -> None:
    """The ``ApiResource(observe=...)`` hook: counts, latency, and one access-log line."""
    REQUESTS.labels(route_name, method, str(status)).inc()
    LATENCY.labels(route_name, method).observe(seconds)
    if log.isEnabledFor(logging.DEBUG) or status >= 500:
        log.log(
            logging.WARNING if status >= 500 else logging.DEBUG,
            "event=request method=%s route=%s status=%d ms=%.1f",
            method,
            route_name,
            status,
            seconds * 1000,
        )


def render_latest() -> bytes:
    return generate_latest(REGISTRY)


HEALTH_BODY = b'{"status":"ok"}'


class MetricsResource(resource.Resource):
    """The metrics listener: ``/metrics`` (Prometheus text) and ``/health``."""

    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        if request.path == b"/metrics":
            request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode())
            return render_latest()
        if request.path == b"/health":
            request.setHeader(b"Content-Type", b"application/json")
            return HEALTH_BODY
        request.setResponseCode(404)
        request.setHeader(b"Content-Type", b"application/json")
        return b'{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}'
