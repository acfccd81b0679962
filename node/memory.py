"""Process-wide memory settings for a running node (glibc malloc, the cyclic GC).

Measured with ``bench/bench_node.py`` (see docs/benchmarks.md, "School node"):

1. glibc raises its mmap threshold each time a large mmapped block is freed (up to 32 MiB).
   After the first argon2id hash (node/accounts/passwords.py: a 7 MiB working area) every
   later one is carved from the hashing thread's malloc arena instead and stays resident
   once freed: about 7 MiB per KDF thread for the life of the process.  A fixed threshold
   keeps every block of 1 MiB or more in its own mapping, returned to the system on free;
   the heap's free top is trimmed above 2 MiB (glibc's own ratio).
2. Once the node listens, ``gc.freeze()`` moves the objects start-up created (about 80,000
   from the imports alone) out of the collector's generations: a full collection no longer
   walks them (about 75 ms each on the benchmark machine, a latency spike under load), and
   ``malloc_trim`` returns the heap pages start-up freed.
3. Then the collector's thresholds are raised from (700, 10, 10) to ``GC_THRESHOLDS``: a
   busy node allocates several container objects per event (the PDU's dicts and lists,
   cache entries), and with the default every 700 of them started a young-generation
   collection.  Federation ingest (``bench/bench_federation.py``) spent about a sixth of
   its reactor-thread CPU in the collector; with these thresholds the reactor's CPU per
   received PDU fell from about 146 to 120 us.  Objects without reference cycles are freed by
   reference counting as before; only cyclic garbage waits a little longer.

Other glibc platforms and other C libraries simply skip these steps.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import sys
from typing import Any

log = logging.getLogger("parta.node")

GC_THRESHOLDS = (20_000, 20, 50)  # see 3. above
_M_TRIM_THRESHOLD = -1  # <malloc.h> mallopt parameters
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 20
TRIM_THRESHOLD_BYTES = 2 << 20


def _glibc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # symbols of the process's own C library
        _ = libc.gnu_get_libc_version  # only glibc has it (musl: no mallopt tuning)
        return libc
    except (OSError, AttributeError):
        return None


def tune_allocator() -> bool:
    """Step 1; call before the node's worker threads start.  True if applied."""
    libc = _glibc()
    if libc is None:
        return False
    ok = (
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
        and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
    )
    if not ok:
        log.warning("event=mallopt_failed")
    return ok


def settle_after_startup() -> None:
    """Steps 2 and 3; call once the node is up (the objects alive now live as long as the
    node)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
