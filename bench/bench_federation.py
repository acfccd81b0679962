"""Federation benchmark: cross-school delivery and federation ingest (not a test).

Run: ``.venv/bin/python bench/bench_federation.py [--rate 10] [--duration 30]
[--tp-senders 4] [--tp-messages 200] [--ingest-pdus 5000] [--only parta|synapse|ingest]
[--skip-ingest] [--ingest-bound] [--runs N] [--json FILE]``.

Servers: two Parta nodes, and two Synapses from PyPI (``synapse_env``), each pair federating
over HTTPS on loopback with certificates from a throwaway CA (verification on), SQLite, rate
limits off (``federation_env``).  For each pair:

1. **Steady load** - the sender clients on server A (round robin) send ``--rate``
   messages/s (open loop: message *i* is due at ``t0 + i/rate`` whatever earlier requests
   are doing) for ``--duration`` s; an observer client on server B long-polls
   ``/sync``.  Delivery latency =
   B's ``/sync`` returning the event - the send request's start.  p50/p99.
2. **Federated throughput** - ``--tp-senders`` clients on A send ``--tp-messages`` each as
   fast as they can (closed loop); throughput = messages the observer on B received / (last
   arrival - first send).  Reported as the Parta/Synapse ratio.

3. **Ingest** (Parta only) - a fake homeserver (real ed25519 key, HTTPS key endpoint) joins a
   room on one fresh Parta node and pushes ``--ingest-pdus`` signed message PDUs (a chain, 50
   per transaction, the spec's maximum) through ``PUT /_matrix/federation/v1/send``; also with
   ``--ingest-origins`` such servers at once, each in its own room.  Compared with the
   per-core ed25519 verify limit measured in this process with the verifier the node uses
   (``federation.signing.verify_raw``), one signature per PDU, right before and right after
   each phase (the higher counts: this shared machine's speed drifts within
   minutes).  The pushing servers build
   and sign their transactions before the clock starts; the node's CPU time per PDU (all
   threads, and its reactor thread alone) is read from ``/proc``.  From the node's and the
   pushing servers' CPU per PDU follows the rate all cores could reach if both were busy
   all the time ("all cores busy at this cost"): the most that better overlap could give.
   With ``--ingest-bound`` the phases run again on a node that skips PDU checks 1-3
   (``ingest_bound_node.py``; only event IDs are computed): the most that any work on
   those checks - faster code, threads, worker processes - could give.

Everything is bounded in time; servers are stopped and temp dirs removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from nio import (
    AsyncClient,
    JoinResponse,
    RoomCreateResponse,
    RoomInviteResponse,
    RoomPreset,
    RoomSendResponse,
)

from bench_node import Observer, percentile, register
from federation_env import FakeRoom, FakeServer, FederatedParta, FederatedSynapse, TestCA
from synapse_env import BENCH_ROOT, ensure_synapse_venv, log, synapse_version

TXN_PDUS = 50
HERE = os.path.dirname(os.path.abspath(__file__))
BOUND = "checks 1-3 skipped"


@dataclass
class PairResult:
    server: str
    version: str
    steady_rate: float
    steady_sent: int
    steady_delivered: int
    delivery_p50_ms: float
    delivery_p99_ms: float
    delivery_max_ms: float
    tp_senders: int
    tp_sent: int
    tp_delivered: int
    tp_send_rate: float
    tp_federated_rate: float  # msgs/s received on B
    tp_delivery_p50_ms: float
    tp_delivery_p99_ms: float
    stored_on_b: int = 0  # sent messages B's /messages returns at the end
    peak_rss_mib: list[float] = field(default_factory=list)
    errors: int = 0


@dataclass
class IngestResult:
    origins: int
    pdus: int
    accepted: int
    errors: int
    seconds: float
    pdus_per_s: float
    verify_per_s_one_core: float
    ratio: float
    peak_rss_mib: float
    node_cpu_us_per_pdu: float = 0.0  # the node's CPU time (all threads) / accepted PDUs
    reactor_cpu_us_per_pdu: float = 0.0  # of which its reactor (main) thread
    push_cpu_us_per_pdu: float = 0.0  # the pushing servers' (this process's) CPU / PDUs
    # The rate all cores could reach at this CPU cost per PDU (node + pushing) if they were
    # busy all the time, as a fraction of the verify limit: what better overlap could give.
    cpu_ceiling_ratio: float = 0.0
    variant: str = "node"  # or "checks 1-3 skipped" (--ingest-bound)


# --- the two-server scenario ----------------------------------------------------------------
async def _room_between(
    a_url: str, b_url: str, tag: str, senders: int
) -> tuple[list[AsyncClient], AsyncClient, str]:
    clients = [await register(a_url, f"fsend{tag}x{i}") for i in range(senders)]
    observer = await register(b_url, f"fobs{tag}")
    created = await clients[0].room_create(preset=RoomPreset.public_chat, name="Bench federation")
    if not isinstance(created, RoomCreateResponse):
        raise RuntimeError(f"createRoom failed: {created}")
    room_id = created.room_id
    for c in clients[1:]:
        joined = await c.join(room_id)
        if not isinstance(joined, JoinResponse):
            raise RuntimeError(f"local join failed: {joined}")
    inv = await clients[0].room_invite(room_id, observer.user_id)
    if not isinstance(inv, RoomInviteResponse):
        raise RuntimeError(f"invite of the remote observer failed: {inv}")
    deadline = time.monotonic() + 120
    while True:
        joined = await observer.join(room_id)
        if isinstance(joined, JoinResponse):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"remote join failed: {joined}")
        await asyncio.sleep(0.5)  # the invite may still be on its way
    return clients, observer, room_id


async def _wait_arrivals(observer: Observer, ids: set[str], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not ids <= set(observer.arrivals) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def drive_pair(a_url: str, b_url: str, label: str, args: argparse.Namespace) -> dict:
    tag = f"{int(time.time()) % 100000}"
    log(f"{label}: room on A with {args.tp_senders} senders, observer on B")
    clients, obs_client, room_id = await _room_between(a_url, b_url, tag, args.tp_senders)
    observer = Observer(obs_client, room_id)
    errors = 0
    try:
        await observer.catch_up()
        watcher = asyncio.create_task(observer.run())

        # Warm-up: a few messages must cross before measuring.
        warm: dict[str, float] = {}
        for i in range(5):
            bid = f"warm-{i}"
            warm[bid] = time.perf_counter()
            await clients[0].room_send(
                room_id, "m.room.message", {"msgtype": "m.text", "body": "warm", "bench_id": bid}
            )
        await _wait_arrivals(observer, set(warm), 120)
        if not set(warm) <= set(observer.arrivals):
            raise RuntimeError(f"{label}: warm-up messages never crossed to B")

        # 1. steady load, open loop.
        n = int(args.rate * args.duration)
        log(f"{label}: steady load {args.rate:g} msgs/s for {args.duration:g}s ({n} messages)")
        starts: dict[str, float] = {}
        failed = [0]

        async def one(i: int) -> None:
            bid = f"steady-{i}"
            starts[bid] = time.perf_counter()
            resp = await clients[i % len(clients)].room_send(
                room_id,
                "m.room.message",
                {"msgtype": "m.text", "body": f"Takt {i}", "bench_id": bid},
            )
            if not isinstance(resp, RoomSendResponse):
                failed[0] += 1
                starts.pop(bid, None)

        t0 = time.perf_counter()
        tasks = []
        for i in range(n):
            due = t0 + i / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        await _wait_arrivals(observer, set(starts), 60)
        steady = [observer.arrivals[k] - s for k, s in starts.items() if k in observer.arrivals]
        errors += failed[0]

        # 2. throughput, closed loop.
        log(f"{label}: throughput {args.tp_senders} senders x {args.tp_messages} messages")
        tp_starts: dict[str, float] = {}
        sent_ok = [0]

        async def sender(idx: int, client: AsyncClient) -> None:
            for i in range(args.tp_messages):
                bid = f"tp-{idx}-{i}"
                tp_starts[bid] = time.perf_counter()
                resp = await client.room_send(
                    room_id,
                    "m.room.message",
                    {"msgtype": "m.text", "body": f"Last {i}", "bench_id": bid},
                )
                if isinstance(resp, RoomSendResponse):
                    sent_ok[0] += 1
                else:
                    failed[0] += 1
                    tp_starts.pop(bid, None)

        failed[0] = 0
        tp_t0 = time.perf_counter()
        await asyncio.gather(*(sender(i, c) for i, c in enumerate(clients)))
        tp_t1 = time.perf_counter()
        await _wait_arrivals(observer, set(tp_starts), max(60.0, 3 * (tp_t1 - tp_t0)))
        got = [observer.arrivals[k] for k in tp_starts if k in observer.arrivals]
        tp_lat = [observer.arrivals[k] - s for k, s in tp_starts.items() if k in observer.arrivals]
        errors += failed[0] + observer.errors
        last = max(got) if got else tp_t1
        observer.stop()
        try:
            await asyncio.wait_for(watcher, 10)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            watcher.cancel()
        stored = await _stored_on_b(obs_client, room_id, set(starts) | set(tp_starts))
        return {
            "steady_rate": args.rate,
            "steady_sent": len(starts),
            "steady_delivered": len(steady),
            "delivery_p50_ms": percentile(steady, 50) * 1000,
            "delivery_p99_ms": percentile(steady, 99) * 1000,
            "delivery_max_ms": (max(steady) if steady else float("nan")) * 1000,
            "tp_senders": len(clients),
            "tp_sent": sent_ok[0],
            "tp_delivered": len(got),
            "tp_send_rate": sent_ok[0] / (tp_t1 - tp_t0) if tp_t1 > tp_t0 else 0.0,
            "tp_federated_rate": len(got) / (last - tp_t0) if last > tp_t0 else 0.0,
            "tp_delivery_p50_ms": percentile(tp_lat, 50) * 1000,
            "tp_delivery_p99_ms": percentile(tp_lat, 99) * 1000,
            "stored_on_b": stored,
            "errors": errors,
        }
    finally:
        for c in clients + [obs_client]:
            await c.close()


async def _stored_on_b(client: AsyncClient, room_id: str, wanted: set[str]) -> int:
    """How many of the sent messages B has in the room's history (``/messages`` backwards
    from now): tells "stored but never shown by /sync" apart from "never arrived"."""
    from nio import MessageDirection, RoomMessagesResponse, SyncResponse

    sync = await client.sync(timeout=0, sync_filter={"room": {"timeline": {"limit": 1}}})
    if not isinstance(sync, SyncResponse):
        return -1
    token, found = sync.next_batch, set()
    for _ in range(200):
        resp = await client.room_messages(
            room_id, start=token, direction=MessageDirection.back, limit=500
        )
        if not isinstance(resp, RoomMessagesResponse) or not resp.chunk:
            break
        for ev in resp.chunk:
            bid = ev.source.get("content", {}).get("bench_id")
            if bid in wanted:
                found.add(bid)
        if found >= wanted or not resp.end or resp.end == token:
            break
        token = resp.end
    return len(found)


def bench_pair(which: str, args: argparse.Namespace, ca: TestCA) -> PairResult:
    servers = []
    try:
        if which == "synapse":
            python = ensure_synapse_venv(args.synapse_spec)
            version = synapse_version(python)
            for name in ("a", "b"):
                servers.append(
                    FederatedSynapse(
                        tempfile.mkdtemp(prefix=f"fsyn-{name}-", dir=BENCH_ROOT), python, ca
                    )
                )
        else:
            version = _parta_version()
            for name in ("a", "b"):
                d = tempfile.mkdtemp(prefix=f"fparta-{name}-", dir=BENCH_ROOT)
                os.rmdir(d)  # parta node init creates it
                servers.append(FederatedParta(d, ca))
        for s in servers:
            s.start()
            log(f"{which}: {s.server_name} up (client {s.base_url}, pid {s.pid})")
        figures = asyncio.run(
            asyncio.wait_for(
                drive_pair(servers[0].base_url, servers[1].base_url, which, args), args.deadline
            )
        )
        rss = [(s.peak_rss_kib() or 0) / 1024 for s in servers]
        return PairResult(server=which, version=version, peak_rss_mib=rss, **figures)
    finally:
        for s in servers:
            s.stop()
            shutil.rmtree(s.workdir, ignore_errors=True)


# --- ingest ----------------------------------------------------------------------------------
def verify_limit(rounds: int = 20, batch: int = 200) -> float:
    """ed25519 verifications per second on one core (this thread): the best of ``rounds``
    batches (so other load on the machine does not lower the limit), with the verifier the
    node uses (``federation.signing.verify_raw``, PyNaCl) on 600-byte messages, about the
    redacted signing form of a message PDU."""
    from federation.keys import SigningKey
    from federation.signing import verify_raw

    key = SigningKey.generate()
    msgs = [os.urandom(600) for _ in range(batch)]
    sigs = [key.sign(m) for m in msgs]
    pub = key.verify_key.public_bytes
    best = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        for m, s in zip(msgs, sigs, strict=True):
            if not verify_raw(pub, s, m):
                raise RuntimeError("verify failed")
        best = max(best, batch / (time.perf_counter() - t0))
    return best


def _build_chain(room: FakeRoom, count: int) -> list[list[dict]]:
    sender = next(
        k[1]
        for k, v in room.state.items()
        if k[0] == "m.room.member" and k[1].endswith(":" + room.fake.server_name)
    )
    txns, batch = [], []
    for i in range(count):
        ev = room.build(
            type="m.room.message",
            sender=sender,
            content={"msgtype": "m.text", "body": f"Ingest {i}"},
        )
        room.advance(ev)
        batch.append(ev.pdu)
        if len(batch) == TXN_PDUS:
            txns.append(batch)
            batch = []
    if batch:
        txns.append(batch)
    return txns


def bench_ingest(
    args: argparse.Namespace, ca: TestCA, *, bound: bool = False
) -> list[IngestResult]:
    """The ingest phases on a fresh node; with ``bound`` on a node that skips PDU checks
    1-3 (``ingest_bound_node.py``): the most any work on those checks could give."""
    d = tempfile.mkdtemp(prefix="fingest-", dir=BENCH_ROOT)
    os.rmdir(d)
    variant = BOUND if bound else "node"
    node = FederatedParta(
        d, ca, [sys.executable, os.path.join(HERE, "ingest_bound_node.py")] if bound else None
    )
    fakes: list[FakeServer] = []
    results = []
    try:
        node.start()
        log(f"ingest: node {node.server_name} up" + (f" ({variant})" if bound else ""))
        for origins in sorted({1, args.ingest_origins}):
            rooms = asyncio.run(_ingest_rooms(node, origins, ca, fakes, args))
            per = args.ingest_pdus // origins
            chains = [_build_chain(r, per) for r in rooms]
            total = sum(len(p) for c in chains for p in c)
            # The load generator signs its requests before the clock starts (as it built
            # the events), so its JSON and signing work is not counted against the node.
            chains = [
                [(r.fake.prepare_transaction(r.destination, pdus), len(pdus)) for pdus in c]
                for r, c in zip(rooms, chains, strict=True)
            ]
            log(
                f"ingest: {origins} origin(s), {total} PDUs in "
                f"{sum(len(c) for c in chains)} transactions"
            )
            counts = {"accepted": 0, "errors": 0}
            lock = threading.Lock()

            def push(
                room: FakeRoom,
                txns: list[tuple[tuple[str, bytes, dict], int]],
                lock: threading.Lock = lock,
                counts: dict[str, int] = counts,
            ) -> None:
                for prepared, n in txns:
                    status, reply = room.fake.send_prepared(room.destination, prepared)
                    ok = status == 200 and isinstance(reply, dict)
                    with lock:
                        if not ok:
                            counts["errors"] += n
                            continue
                        for res in reply.get("pdus", {}).values():
                            counts["errors" if res else "accepted"] += 1

            # The limit is measured right before and right after the phase (the speed of
            # this shared machine drifts within minutes); the higher one counts.
            before = verify_limit(rounds=10)
            threads = [
                threading.Thread(target=push, args=(r, c))
                for r, c in zip(rooms, chains, strict=True)
            ]
            cpu0, own0 = node.cpu_seconds() or 0.0, time.process_time()
            main0 = node.main_thread_cpu_seconds() or 0.0
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - t0
            node_cpu = (node.cpu_seconds() or 0.0) - cpu0
            main_cpu = (node.main_thread_cpu_seconds() or 0.0) - main0
            push_cpu = time.process_time() - own0
            after = verify_limit(rounds=10)
            limit = max(before, after)
            log(
                f"ingest: one-core ed25519 verify limit {before:,.0f}/s before, "
                f"{after:,.0f}/s after the phase"
            )
            rate = counts["accepted"] / elapsed if elapsed else 0.0
            cpu_per_pdu = (node_cpu + push_cpu) / max(1, counts["accepted"])
            results.append(
                IngestResult(
                    variant=variant,
                    cpu_ceiling_ratio=(os.cpu_count() or 1) / cpu_per_pdu / limit
                    if cpu_per_pdu
                    else 0.0,
                    origins=origins,
                    pdus=total,
                    accepted=counts["accepted"],
                    errors=counts["errors"],
                    seconds=elapsed,
                    pdus_per_s=rate,
                    verify_per_s_one_core=limit,
                    ratio=rate / limit,
                    peak_rss_mib=(node.peak_rss_kib() or 0) / 1024,
                    node_cpu_us_per_pdu=node_cpu * 1e6 / max(1, counts["accepted"]),
                    reactor_cpu_us_per_pdu=main_cpu * 1e6 / max(1, counts["accepted"]),
                    push_cpu_us_per_pdu=push_cpu * 1e6 / max(1, total),
                )
            )
            log(
                f"ingest: {origins} origin(s){'' if not bound else ', ' + variant}: "
                f"{rate:,.0f} PDUs/s "
                f"({rate / limit:.0%} of the verify limit), errors {counts['errors']}; "
                f"node CPU {results[-1].node_cpu_us_per_pdu:.0f} us/PDU (reactor thread "
                f"{results[-1].reactor_cpu_us_per_pdu:.0f}), pushing "
                f"{results[-1].push_cpu_us_per_pdu:.0f} us/PDU; all {os.cpu_count()} cores "
                f"busy at this cost: {results[-1].cpu_ceiling_ratio:.0%}"
            )
        return results
    finally:
        for f in fakes:
            f.stop()
            shutil.rmtree(f.workdir, ignore_errors=True)
        node.stop()
        shutil.rmtree(node.workdir, ignore_errors=True)


async def _ingest_rooms(
    node: FederatedParta,
    origins: int,
    ca: TestCA,
    fakes: list[FakeServer],
    args: argparse.Namespace,
) -> list[FakeRoom]:
    owner = await register(node.base_url, f"ingestowner{int(time.time() * 1000) % 10**7}")
    rooms = []
    try:
        for _ in range(origins):
            created = await owner.room_create(preset=RoomPreset.public_chat, name="Ingest")
            if not isinstance(created, RoomCreateResponse):
                raise RuntimeError(f"createRoom failed: {created}")
            fake = FakeServer(ca, tempfile.mkdtemp(prefix="fake-", dir=BENCH_ROOT)).start()
            fakes.append(fake)
            room = await asyncio.to_thread(
                FakeRoom.join,
                fake,
                node.server_name,
                created.room_id,
                f"@ingest:{fake.server_name}",
            )
            rooms.append(room)
    finally:
        await owner.close()
    return rooms


# --- output ------------------------------------------------------------------------------------
def _parta_version() -> str:
    try:
        from importlib.metadata import version

        return version("parta")
    except Exception:  # noqa: BLE001 - not installed: a source checkout
        return "dev"


def pair_medians(pairs: list[PairResult]) -> list[PairResult]:
    out = []
    for name in dict.fromkeys(r.server for r in pairs):
        runs = [r for r in pairs if r.server == name]
        nums = {
            f: statistics.median(getattr(r, f) for r in runs)
            for f in (
                "steady_rate",
                "delivery_p50_ms",
                "delivery_p99_ms",
                "delivery_max_ms",
                "tp_send_rate",
                "tp_federated_rate",
                "tp_delivery_p50_ms",
                "tp_delivery_p99_ms",
            )
        }
        counts = {
            f: sum(getattr(r, f) for r in runs)
            for f in (
                "steady_sent",
                "steady_delivered",
                "tp_sent",
                "tp_delivered",
                "stored_on_b",
                "errors",
            )
        }
        rss = [statistics.median(r.peak_rss_mib[i] for r in runs) for i in (0, 1)]
        out.append(
            PairResult(
                server=name,
                version=f"median of {len(runs)}",
                tp_senders=runs[0].tp_senders,
                peak_rss_mib=rss,
                **nums,
                **counts,
            )
        )
    return out


def ingest_medians(results: list[IngestResult]) -> list[IngestResult]:
    out = []
    for variant, origins in dict.fromkeys((r.variant, r.origins) for r in results):
        runs = [r for r in results if r.origins == origins and r.variant == variant]
        if len(runs) < 2:
            continue
        med = {
            f: statistics.median(getattr(r, f) for r in runs)
            for f in (
                "seconds",
                "pdus_per_s",
                "verify_per_s_one_core",
                "ratio",
                "peak_rss_mib",
                "node_cpu_us_per_pdu",
                "reactor_cpu_us_per_pdu",
                "push_cpu_us_per_pdu",
                "cpu_ceiling_ratio",
            )
        }
        out.append(
            IngestResult(
                origins=origins,
                variant=variant,
                pdus=sum(r.pdus for r in runs),
                accepted=sum(r.accepted for r in runs),
                errors=sum(r.errors for r in runs),
                **med,
            )
        )
    return out


def _totals(r: PairResult) -> str:
    """The report's sent/delivered/stored/errors column."""
    return (
        f"{r.steady_sent + r.tp_sent}/{r.steady_delivered + r.tp_delivered}/"
        f"{r.stored_on_b}/{r.errors}"
    )


def print_report(pairs: list[PairResult], ingest: list[IngestResult]) -> None:
    if pairs:
        print()
        print(
            f"{'':22}{'steady msgs/s':>14}{'deliv p50 ms':>14}{'deliv p99 ms':>14}"
            f"{'deliv max ms':>14}{'tp send/s':>11}{'tp fed/s':>10}{'tp p99 ms':>11}"
            f"{'sent/deliv/stored/err':>24}{'peak RSS MiB A,B':>18}"
        )
        for r in pairs:
            print(
                f"{r.server + ' ' + r.version:22}{r.steady_rate:>14.1f}"
                f"{r.delivery_p50_ms:>14.1f}{r.delivery_p99_ms:>14.1f}"
                f"{r.delivery_max_ms:>14.1f}{r.tp_send_rate:>11.1f}"
                f"{r.tp_federated_rate:>10.1f}{r.tp_delivery_p99_ms:>11.1f}"
                f"{_totals(r):>24}"
                f"{', '.join(f'{x:.0f}' for x in r.peak_rss_mib):>18}"
            )
        by = {r.server: r for r in pairs}
        if "parta" in by and "synapse" in by:
            p, s = by["parta"], by["synapse"]
            print(
                "\nParta/Synapse: federated throughput "
                f"x{p.tp_federated_rate / s.tp_federated_rate:.1f}, "
                f"steady delivery p99 x{p.delivery_p99_ms / s.delivery_p99_ms:.3f}"
            )
    for r in ingest:
        what = "" if r.variant == "node" else f" ({r.variant})"
        print(
            f"\nIngest{what}, {r.origins} origin(s): {r.accepted}/{r.pdus} PDUs in "
            f"{r.seconds:.1f}s "
            f"= {r.pdus_per_s:,.0f} PDUs/s; "
            f"one-core verify limit {r.verify_per_s_one_core:,.0f}/s "
            f"-> {r.ratio:.0%}; errors {r.errors}; node CPU {r.node_cpu_us_per_pdu:.0f} us/PDU "
            f"(reactor thread {r.reactor_cpu_us_per_pdu:.0f}), pushing "
            f"{r.push_cpu_us_per_pdu:.0f}; all cores busy at this cost: "
            f"{r.cpu_ceiling_ratio:.0%}; node peak RSS {r.peak_rss_mib:.0f} MiB"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--rate",
        type=float,
        default=10.0,
        help="steady load, messages/s (below Synapse's saturation on 2 cores)",
    )
    ap.add_argument("--duration", type=float, default=30.0, help="steady load, seconds")
    ap.add_argument("--tp-senders", type=int, default=4)
    ap.add_argument("--tp-messages", type=int, default=200, help="per throughput sender")
    ap.add_argument("--ingest-pdus", type=int, default=5000)
    ap.add_argument("--ingest-origins", type=int, default=2)
    ap.add_argument(
        "--ingest-bound",
        action="store_true",
        help="also run the ingest phases on a node that skips PDU checks 1-3 "
        "(bench/ingest_bound_node.py): the most faster checks could give",
    )
    ap.add_argument("--only", choices=["parta", "synapse", "ingest"])
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--deadline", type=float, default=900, help="seconds per server pair")
    ap.add_argument("--synapse-spec", default="matrix-synapse")
    ap.add_argument(
        "--runs",
        type=int,
        default=1,
        help="repeat everything with fresh servers; the report adds medians",
    )
    ap.add_argument("--json", help="also write the results as JSON to this file")
    args = ap.parse_args()

    print(
        f"Parta federation benchmark {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()}: "
        f"Python {platform.python_version()}, {os.cpu_count()} cores"
    )
    os.makedirs(BENCH_ROOT, exist_ok=True)
    ca_dir = tempfile.mkdtemp(prefix="fed-ca-", dir=BENCH_ROOT)
    ca = TestCA(ca_dir)
    pairs: list[PairResult] = []
    ingest: list[IngestResult] = []
    try:
        order = [] if args.only == "ingest" else [args.only] if args.only else ["synapse", "parta"]
        for _run in range(args.runs):
            for which in order:
                pairs.append(bench_pair(which, args, ca))
            if not args.skip_ingest and args.only != "synapse":
                ingest += bench_ingest(args, ca)
                if args.ingest_bound:
                    ingest += bench_ingest(args, ca, bound=True)
    finally:
        shutil.rmtree(ca_dir, ignore_errors=True)
    if args.runs > 1:
        pairs += pair_medians(pairs)
        ingest += ingest_medians(ingest)
    print_report(pairs, ingest)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {"pairs": [asdict(r) for r in pairs], "ingest": [asdict(r) for r in ingest]},
                fh,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
