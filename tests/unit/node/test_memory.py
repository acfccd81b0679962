"""node/memory.py: a large freed block leaves the process; start-up objects are frozen.

Each case runs in a fresh interpreter: malloc settings and gc.freeze are process-wide.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def run_python(code: str) -> str:
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_argon2_sized_blocks_are_returned_after_use_on_worker_threads() -> None:
    out = run_python("""
        import threading
        from node.memory import tune_allocator

        def rss_kib():
            with open("/proc/self/status") as fh:
                return next(int(l.split()[1]) for l in fh if l.startswith("VmRSS:"))

        if not tune_allocator():
            print("skip")
            raise SystemExit
        size = 8 << 20           # like argon2id's 7 MiB working area
        block = b"x" * size      # a first block freed raises glibc's dynamic threshold
        del block
        before = rss_kib()

        def hash_like():
            data = b"y" * size   # touched, as a hash touches its whole area
            del data

        for _ in range(3):       # several "hashes" on worker threads (own malloc arenas)
            t = threading.Thread(target=hash_like)
            t.start()
            t.join()
        print(rss_kib() - before)
    """)
    if out == "skip":
        pytest.skip("not glibc")
    assert int(out) < 2048, f"{out} KiB still resident after the blocks were freed"


def test_settle_after_startup_freezes_the_objects_alive_then() -> None:
    out = run_python("""
        import gc
        from node.memory import settle_after_startup
        settle_after_startup()
        print(gc.get_freeze_count())
    """)
    assert int(out) > 1000


def test_settle_after_startup_raises_the_collector_thresholds() -> None:
    out = run_python("""
        import gc
        from node.memory import GC_THRESHOLDS, settle_after_startup
        before = gc.get_threshold()
        settle_after_startup()
        print(before[0], gc.get_threshold()[0], GC_THRESHOLDS[0])
    """)
    before, after, wanted = map(int, out.split())
    assert after == wanted and after > before
