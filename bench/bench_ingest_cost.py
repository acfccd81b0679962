"""Federation ingest cost in CPU *instructions* per PDU, against one ed25519 verification.

Usage: ``make bench-ingest-cost`` or ``.venv/bin/python bench/bench_ingest_cost.py
[--small 200] [--large 1000] [--json FILE]`` (needs ``valgrind``: ``apt-get install
valgrind``; a few minutes on 2 cores).

Why: on a shared 2-core machine the wall-clock ingest benchmark (``bench_federation.py
--only ingest``) moves by +-25 % from run to run, more than most single changes to the ingest
code are worth.  Instructions executed are nearly deterministic, so this script is the
yardstick for such changes.  It runs, under ``valgrind --tool=cachegrind`` (instruction
counts only), an in-process pair of nodes
(``tests/unit/node/federation/inprocess_federation_support``: real room service, federation
area, X-Matrix authentication and ``/send`` processing, on in-memory SQLite, everything on
one thread) in four modes, each at two sizes so that start-up cancels out:

* ``ingest``: server B builds a chain of message PDUs in a room shared with A and sends
  them to A in transactions of 50; A checks (steps 1-6, signatures verified inline) and
  stores them;
* ``sign``: only B's side of that (building and signing the events, signing the
  transactions' requests), subtracted from ``ingest``;
* ``bound``: ``ingest`` with PDU checks 1-3 skipped (``ingest_bound_node._trusted``: only
  the event ID is computed), so ``bound`` - ``sign`` is what receiving costs besides the
  checks: the floor that no work on the checks can go below;
* ``verify``: ed25519 verifications of 600-byte messages with the node's verifier (as the
  wall-clock benchmark's one-core verify limit).

The report: instructions per received PDU (the A/B yardstick), and the same code's native
time per received PDU against one verification (best of 5, alternating): the share of the
one-core verify limit that ingest could reach on one core if nothing but this CPU work
counted (no HTTP, TLS, threads or waits); twice that is the ceiling with two cores in
perfect overlap.  The goal for federation ingest is 50 % of the limit.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TXN = 50


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- inner: what runs under valgrind ------------------------------------------------------


def _inner(mode: str, n: int) -> float:
    """Run ``mode`` with ``n`` items; the wall time (seconds) of the part measured: the
    verifications; the sending loop (``ingest``: B signs each request, A processes it);
    the request signing alone (``sign``)."""
    if mode == "verify":
        sys.path.insert(0, ROOT)
        from federation.keys import SigningKey
        from federation.signing import verify_raw

        key = SigningKey.generate()
        msgs = [os.urandom(600) for _ in range(n)]
        sigs = [key.sign(m) for m in msgs]
        pub = key.verify_key.public_bytes
        t0 = time.perf_counter()
        for m, s in zip(msgs, sigs, strict=True):
            if not verify_raw(pub, s, m):
                raise RuntimeError("verify failed")
        return time.perf_counter() - t0

    # tests/ for the shared test kit (tests/support), as tests/conftest.py adds it.
    for sub in ("tests/unit/node/federation", "tests/unit/node", "tests", ""):
        sys.path.insert(0, os.path.join(ROOT, sub))
    from inprocess_federation_support import FedNode, Network, join_remote, result_of

    if mode == "bound":
        sys.path.insert(0, os.path.join(ROOT, "bench"))
        from federation.events import checks
        from ingest_bound_node import _trusted
        from node.federation import pdu_checks

        checks.prepare_received_event = pdu_checks.prepare_received_event = _trusted
    from federation.transport.xmatrix import sign_request

    net = Network()
    a = FedNode(net, "a.test")
    b = FedNode(net, "b.test")
    room_id = result_of(a.rooms.create_room(a.uid("alice"), {"preset": "public_chat"}))
    join_remote(a, b, room_id)
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(20000, 20, 50)  # as the node runs (node/memory.py)
    room = b.room(room_id)
    prev, depth = list(room.extremities), room.depth
    pdus = []
    for i in range(n):
        ev = b.build(
            room_id,
            b.uid("bob"),
            "m.room.message",
            {"msgtype": "m.text", "body": f"message {i}"},
            prev=prev,
            depth=depth + 1,
        )
        prev, depth = [ev.event_id], depth + 1
        pdus.append(ev.pdu)
    txns = [pdus[i : i + TXN] for i in range(0, n, TXN)]
    if mode == "sign":
        t1 = time.perf_counter()
        for i, txn in enumerate(txns):
            body = {"origin": b.server_name, "origin_server_ts": 1, "pdus": txn}
            sign_request(
                "PUT",
                f"/_matrix/federation/v1/send/c{i}",
                b.server_name,
                a.server_name,
                b.key,
                body,
            )
        return time.perf_counter() - t1
    t1 = time.perf_counter()
    for i, txn in enumerate(txns):
        status, body = a.send_txn(b, txn, txn_id=f"c{i}")
        if status != 200 or any(v != {} for v in body["pdus"].values()):
            raise RuntimeError(f"transaction {i} not accepted: {status} {body}")
    return time.perf_counter() - t1


# --- outer ----------------------------------------------------------------------------------


def _instructions(mode: str, n: int) -> int:
    cmd = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        os.path.abspath(__file__),
        "--inner",
        mode,
        str(n),
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": "0"}
    )
    m = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
    if proc.returncode != 0 or m is None:
        raise RuntimeError(f"valgrind run {mode} {n} failed:\n{proc.stderr[-2000:]}")
    return int(m.group(1).replace(",", ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", type=int, default=200)
    ap.add_argument("--large", type=int, default=1000)
    ap.add_argument("--json")
    ap.add_argument("--inner", nargs=2, metavar=("MODE", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        print(_inner(args.inner[0], int(args.inner[1])))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    if args.large <= args.small or args.small % TXN or args.large % TXN:
        print(f"--small < --large, both multiples of {TXN}", file=sys.stderr)
        return 2
    modes = ("ingest", "bound", "sign", "verify")
    runs = [(mode, n) for mode in modes for n in (args.small, args.large)]
    log(f"{len(runs)} runs under valgrind, two at a time (a few minutes)")
    counts: dict[tuple[str, int], int] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {run: pool.submit(_instructions, *run) for run in runs}
        for run, fut in futures.items():
            counts[run] = fut.result()
            log(f"  {run[0]:6s} n={run[1]:5d}: {counts[run]:,} instructions")
    per = {
        mode: (counts[(mode, args.large)] - counts[(mode, args.small)]) / (args.large - args.small)
        for mode in modes
    }
    receive = per["ingest"] - per["sign"]  # both build the same chain
    rest = per["bound"] - per["sign"]
    # Native wall time of the same code, alternating, best of 5 each: instructions are
    # stable but not time (Python runs far fewer instructions per cycle than libsodium).
    log("native timing (best of 5)")
    best = {mode: float("inf") for mode in modes}
    for _ in range(5):
        for mode in best:
            best[mode] = min(best[mode], _inner_timed(mode, args.large))
    native_receive = (best["ingest"] - best["sign"]) / args.large
    native_verify = best["verify"] / args.large
    native_rest = (best["bound"] - best["sign"]) / args.large
    result = {
        "instructions_per_pdu": round(receive),
        "instructions_per_pdu_without_checks": round(rest),
        "native_us_per_pdu_without_checks": native_rest * 1e6,
        "instructions_per_verify": round(per["verify"]),
        "native_us_per_pdu": native_receive * 1e6,
        "native_us_per_verify": native_verify * 1e6,
        "one_core_ceiling_pct": 100 * native_verify / native_receive,
        "two_core_ceiling_pct_checks_free": 200 * native_verify / native_rest,
        "small": args.small,
        "large": args.large,
    }
    print()
    print(
        f"Receiving a PDU, in process (steps 1-6, one inline verification, storage): "
        f"{receive:,.0f} instructions; one ed25519 verification: {per['verify']:,.0f} "
        "(under valgrind, which may pick a slower libsodium code path)."
    )
    print(
        f"Native: {native_receive * 1e6:.0f} us per PDU received, "
        f"{native_verify * 1e6:.0f} us per verification: on one core, ingest can reach at "
        f"most {result['one_core_ceiling_pct']:.0f}% of the verify limit even without "
        f"HTTP, TLS and threads; {2 * result['one_core_ceiling_pct']:.0f}% on two cores "
        "in perfect overlap (goal 50%)."
    )
    print(
        f"Without checks 1-3 (only the event ID computed): {rest:,.0f} instructions, "
        f"{native_rest * 1e6:.0f} us per PDU: even if the checks cost nothing on this "
        f"core and all of them ran on another, ingest could reach at most "
        f"{100 * native_verify / native_rest:.0f}% of the verify limit on this core "
        f"({result['two_core_ceiling_pct_checks_free']:.0f}% if the rest could be split "
        "over two cores without loss, which the GIL prevents within one process)."
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


def _inner_timed(mode: str, n: int) -> float:
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--inner", mode, str(n)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return float(out.stdout.strip() or "nan")


if __name__ == "__main__":
    sys.exit(main())
