"""The thumbnail work budget: jobs admitted by slots and estimated memory, FIFO, bounded queue."""

from __future__ import annotations

import io
from types import SimpleNamespace

from PIL import Image
from support.db import InlineDB
from support.images import png
from twisted.internet import defer

import schema.media  # noqa: F401 - registers the tables
from node.config import MediaConfig
from node.media.budget import WorkBudget
from node.media.service import MediaService
from node.media.store import MediaStore
from node.ratelimit import LimitExceeded

MB = 1024 * 1024


class Jobs:
    """Jobs that finish when the test says so; records which ones are running."""

    def __init__(self) -> None:
        self.running: dict[str, defer.Deferred] = {}
        self.results: dict[str, object] = {}

    def job(self, name: str):
        def start():
            d = defer.Deferred()
            self.running[name] = d
            return d

        return start

    def submit(self, budget: WorkBudget, name: str, cost: int) -> defer.Deferred:
        d = defer.ensureDeferred(budget.run(cost, self.job(name)))
        d.addBoth(lambda r: self.results.__setitem__(name, r))
        return d

    def finish(self, name: str) -> None:
        self.running.pop(name).callback(name)


def test_slots_bound_the_jobs_running_at_once():
    budget, jobs = WorkBudget(capacity_bytes=100 * MB, slots=2, max_waiting=10), Jobs()
    for name in "abcd":
        jobs.submit(budget, name, 1 * MB)
    assert set(jobs.running) == {"a", "b"} and budget.waiting == 2
    jobs.finish("a")
    assert set(jobs.running) == {"b", "c"}
    for name in "bcd":
        jobs.finish(name)
    assert jobs.results == {n: n for n in "abcd"}
    assert budget.running == 0 and budget.used_bytes == 0


def test_memory_bounds_the_jobs_and_an_oversized_job_runs_alone():
    budget, jobs = WorkBudget(capacity_bytes=100 * MB, slots=4, max_waiting=10), Jobs()
    jobs.submit(budget, "a", 60 * MB)
    jobs.submit(budget, "huge", 500 * MB)  # over the capacity: waits, then runs alone
    jobs.submit(budget, "small", 1 * MB)  # FIFO: not ahead of the large job
    assert set(jobs.running) == {"a"}
    jobs.finish("a")
    assert set(jobs.running) == {"huge"} and budget.used_bytes == 100 * MB
    jobs.finish("huge")
    assert set(jobs.running) == {"small"}
    jobs.finish("small")
    assert budget.used_bytes == 0


def test_full_queue_is_429_with_retry_after():
    budget, jobs = WorkBudget(capacity_bytes=MB, slots=1, max_waiting=1), Jobs()
    jobs.submit(budget, "a", 0)
    jobs.submit(budget, "b", 0)
    jobs.submit(budget, "c", 0)
    err = jobs.results["c"].value
    assert isinstance(err, LimitExceeded) and err.http_status == 429
    assert err.to_json()["errcode"] == "M_LIMIT_EXCEEDED" and err.to_json()["retry_after_ms"] > 0
    jobs.finish("a")
    jobs.finish("b")
    assert jobs.results["b"] == "b"


def test_failed_and_cancelled_jobs_release_their_share():
    budget, jobs = WorkBudget(capacity_bytes=MB, slots=1, max_waiting=5), Jobs()
    jobs.submit(budget, "a", MB)
    waiting = jobs.submit(budget, "gone", MB)
    jobs.submit(budget, "c", MB)
    waiting.cancel()  # e.g. the client disconnected
    assert budget.waiting == 1
    jobs.running.pop("a").errback(RuntimeError("decoder crashed"))
    assert isinstance(jobs.results["a"].value, RuntimeError)
    assert set(jobs.running) == {"c"}  # "gone" never ran
    jobs.finish("c")
    assert budget.running == 0 and budget.used_bytes == 0


def test_service_decodes_few_thumbnails_at_once_and_answers_all(tmp_path):
    """Four sizes of one picture requested at once: decoded at most two at a time (the old
    code decoded all four in parallel), each request still gets its thumbnail."""
    held: list[tuple[defer.Deferred, object, tuple]] = []

    def offload(fn, *args):
        if getattr(fn, "__name__", "") == "_generate_blocking":
            d = defer.Deferred()
            held.append((d, fn, args))
            return d
        return defer.maybeDeferred(fn, *args)

    config = MediaConfig(thumbnail_concurrency=2)
    media = MediaService(
        server_name="school.example",
        config=config,
        db=InlineDB(f"sqlite:///{tmp_path}/node.db"),
        store=MediaStore(str(tmp_path / "media")),
        clock=SimpleNamespace(time_ms=lambda: 1),
        offload=offload,
    )
    results: list = []
    uploaded: list[str] = []
    defer.ensureDeferred(
        media.upload("@anna:school.example", "image/png", "p.png", png(1200, 900))
    ).addCallback(uploaded.append)
    media_id = uploaded[0].rsplit("/", 1)[1]
    for w, h in ((32, 32), (96, 96), (320, 240), (640, 480)):
        defer.ensureDeferred(
            media.thumbnail("school.example", media_id, w, h, "scale", False)
        ).addBoth(results.append)
    finished = 0
    while held:
        assert len(held) <= 2  # never more decodes at once than the budget
        d, fn, args = held.pop(0)
        d.callback(fn(*args))
        finished += 1
    assert finished == 4 and len(results) == 4
    assert all(r.content_type == "image/png" for r in results)
    sizes = sorted(Image.open(io.BytesIO(r.data)).size for r in results)
    assert sizes == [(32, 24), (96, 72), (320, 240), (640, 480)]
