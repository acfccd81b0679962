"""``SignatureVerifier``: step 2's ed25519 verifications, inline or on worker threads.

Spec: server-server API "Checks performed on receipt of a PDU", step 2.  ``verify(batch)``
answers, per event of the batch, None (all its signatures hold) or the ``SignatureInvalid``
of its first bad one.  The threaded path is driven with a stand-in reactor that declares
``IReactorThreads`` and queues ``callFromThread`` calls, so the test decides when the
result is handed back (no real reactor, no timing).
"""

from __future__ import annotations

import copy
import queue

import pytest
from twisted.internet import task
from twisted.internet.interfaces import IReactorThreads
from zope.interface import implementer

from federation.events.builder import build_create_event, build_event, sign_event
from federation.events.checks import prepare_received_event
from federation.keys import SigningKey
from federation.room_versions import V12
from federation.signing import SignatureInvalid
from node.federation.verifier import SignatureVerifier, _run_batch, default_threads

KEY = SigningKey("k1", bytes(range(32)))
KEYS = {("a.example", KEY.key_id): KEY.verify_key}


def lookup(server, key_id):
    return KEYS.get((server, key_id))


def _message(body: str) -> dict:
    c = build_create_event(
        V12,
        server_name="a.example",
        signing_key=KEY,
        creator="@alice:a.example",
        content={},
        origin_server_ts=1,
    )
    return build_event(
        V12,
        server_name="a.example",
        signing_key=KEY,
        type="m.room.message",
        sender="@alice:a.example",
        content={"body": body},
        room_id=c.room_id,
        prev_events=[c.event_id],
        auth_events=[],
        depth=2,
        origin_server_ts=2,
    ).pdu


def good_jobs(body="hello"):
    return prepare_received_event(_message(body), V12, lookup)[1]


def bad_jobs(body="forged"):
    pdu = copy.deepcopy(_message(body))
    del pdu["signatures"]["a.example"]
    sign_event(pdu, V12, "a.example", SigningKey("k1", b"\x09" * 32))
    return prepare_received_event(pdu, V12, lookup)[1]


@implementer(IReactorThreads)
class ThreadedReactor:
    """Declares IReactorThreads; results handed back from worker threads wait in a queue
    until the test runs them (as the reactor thread would)."""

    def __init__(self) -> None:
        self.from_threads: queue.Queue = queue.Queue()
        self.triggers: list = []

    def callFromThread(self, fn, *args, **kwargs):
        self.from_threads.put((fn, args, kwargs))

    def addSystemEventTrigger(self, phase, event, fn, *args, **kwargs):
        self.triggers.append((phase, event, fn, args, kwargs))
        return len(self.triggers)

    def run_one_from_thread(self) -> None:
        fn, args, kwargs = self.from_threads.get(timeout=60)  # a bound, not a timing check
        fn(*args, **kwargs)

    def shutdown(self) -> None:
        for _phase, event, fn, args, kwargs in self.triggers:
            if event == "shutdown":
                fn(*args, **kwargs)


# --- the batch helper ------------------------------------------------------------------------


def test_run_batch_answers_per_event_in_order():
    two_bad = good_jobs("x") + bad_jobs("y")  # one event with a good and a bad signature
    out = _run_batch([good_jobs(), [], bad_jobs(), two_bad])
    assert len(out) == 4
    assert out[0] is None and out[1] is None
    assert isinstance(out[2], SignatureInvalid) and "a.example/ed25519:k1" in str(out[2])
    assert isinstance(out[3], SignatureInvalid)
    assert _run_batch([]) == []


# --- inline mode -----------------------------------------------------------------------------


@pytest.mark.parametrize("reactor", [task.Clock(), None], ids=["task.Clock", "None"])
def test_without_reactor_threads_verification_is_inline(reactor):
    v = SignatureVerifier(reactor, threads=4)
    assert v.threads == 0
    d = v.verify([good_jobs(), bad_jobs()])
    assert d.called  # synchronous: nothing to hand back to
    ok, bad = d.result
    assert ok is None and isinstance(bad, SignatureInvalid)


def test_zero_or_negative_threads_is_inline_even_with_a_threaded_reactor():
    for n in (0, -2):
        reactor = ThreadedReactor()
        v = SignatureVerifier(reactor, threads=n)
        assert v.threads == 0
        d = v.verify([bad_jobs()])
        assert d.called and isinstance(d.result[0], SignatureInvalid)
        assert reactor.from_threads.empty() and reactor.triggers == []  # no pool made


def test_default_thread_count_is_one_per_core_up_to_four():
    assert 1 <= default_threads() <= 4
    assert SignatureVerifier(ThreadedReactor()).threads == default_threads()
    assert SignatureVerifier(task.Clock()).threads == 0


def test_threaded_mode_with_nothing_to_verify_answers_at_once():
    reactor = ThreadedReactor()
    v = SignatureVerifier(reactor, threads=2)
    d = v.verify([[], []])
    assert d.called and d.result == [None, None]
    assert reactor.triggers == []  # no pool started for it


# --- threaded mode ---------------------------------------------------------------------------


def test_threaded_mode_hands_results_back_through_the_reactor():
    reactor = ThreadedReactor()
    v = SignatureVerifier(reactor, threads=2)
    try:
        batch = [good_jobs(), [], bad_jobs()]
        d = v.verify(batch)
        assert not d.called  # only the reactor thread may fire it
        reactor.run_one_from_thread()
        assert d.called
        ok, empty, bad = d.result
        assert ok is None and empty is None
        assert isinstance(bad, SignatureInvalid) and "a.example/ed25519:k1" in str(bad)
        # A second batch reuses the pool (one shutdown trigger).
        d2 = v.verify([good_jobs("again")])
        reactor.run_one_from_thread()
        assert d2.result == [None]
        assert [t[1] for t in reactor.triggers] == ["shutdown"]
    finally:
        v.stop()


def test_stop_then_reactor_shutdown_does_not_fail():
    """The pool is stopped at reactor shutdown; stopping the verifier first must not make
    that shutdown trigger raise (a ThreadPool refuses a second stop)."""
    reactor = ThreadedReactor()
    v = SignatureVerifier(reactor, threads=1)
    d = v.verify([good_jobs()])
    reactor.run_one_from_thread()
    assert d.result == [None]
    v.stop()
    reactor.shutdown()  # must not raise
    v.stop()  # nor a second stop


# --- the caller runs a task no thread has started (work stealing) ----------------------------


def test_task_run_here_is_skipped_by_the_thread_and_fires_once():
    import threading

    from node.federation.verifier import VerifyTask

    reactor = ThreadedReactor()
    v = SignatureVerifier(reactor, threads=1)
    t = VerifyTask([good_jobs(), bad_jobs()], threading.Lock())
    assert t.try_run_here() is True and t.deferred.called
    ok, bad = t.deferred.result
    assert ok is None and isinstance(bad, SignatureInvalid)
    assert t.try_run_here() is False  # claimed: not run twice
    # A thread reaching the task later finds it claimed and hands back nothing.
    v._finished(t, True, v._in_thread(t))  # must not fire the Deferred again
    assert t.deferred.result == [ok, bad]


def test_task_started_by_a_thread_is_not_run_here():
    import threading

    from node.federation.verifier import VerifyTask

    t = VerifyTask([bad_jobs()], threading.Lock())
    results = SignatureVerifier._in_thread(t)  # a pool thread claimed and ran it
    assert isinstance(results[0], SignatureInvalid)
    assert t.try_run_here() is False and not t.deferred.called
    SignatureVerifier._finished(t, True, results)  # handed back through the reactor
    assert t.deferred.result == results


def test_threaded_submit_hands_back_once_even_when_the_reactor_ran_it():
    reactor = ThreadedReactor()
    v = SignatureVerifier(reactor, threads=1)
    try:
        tasks = [v.submit([good_jobs(f"m{i}")]) for i in range(6)]
        ran_here = [t.try_run_here() for t in reversed(tasks)]  # as _Verdicts does
        # Every task completes exactly once, wherever it ran; the pool's hand-backs of
        # the ones run here are no-ops.
        for _ in tasks:
            reactor.run_one_from_thread()
        assert all(t.deferred.called and t.deferred.result == [None] for t in tasks)
        assert len(ran_here) == 6
        assert reactor.from_threads.empty()  # one hand-back per task, no more
    finally:
        v.stop()


def test_waiting_for_a_chunk_runs_the_unstarted_chunks_of_the_batch_here():
    import threading

    from twisted.internet import defer

    from node.federation.ingest.checks import VERIFY_CHUNK, _Verdicts
    from node.federation.verifier import VerifyTask

    class Stalled:
        """A verifier whose threads never get to anything."""

        def __init__(self):
            self.tasks = []

        def submit(self, batch):
            t = VerifyTask(list(batch), threading.Lock())
            self.tasks.append(t)
            return t

    stalled = Stalled()
    verdicts = _Verdicts(stalled)
    jobs = [
        bad_jobs(f"b{i}") if i % 5 == 0 else good_jobs(f"g{i}") for i in range(2 * VERIFY_CHUNK + 3)
    ]
    slots = [verdicts.add(j) for j in jobs]
    verdicts.flush()
    assert len(stalled.tasks) == 3 and not any(t.deferred.called for t in stalled.tasks)
    first = defer.ensureDeferred(verdicts.get(slots[0]))
    # Waiting for the first chunk ran all three here (no thread was going to).
    assert first.called and isinstance(first.result, SignatureInvalid)
    assert all(t.deferred.called for t in stalled.tasks)
    for i, slot in enumerate(slots):
        got = defer.ensureDeferred(verdicts.get(slot))
        assert got.called
        assert (got.result is None) == (i % 5 != 0)
