"""School-node benchmark: Parta against Synapse under the same matrix-nio load (not a test).

Run: ``.venv/bin/python bench/bench_node.py [--senders 7] [--messages 100] [--runs 3]
[--only parta|synapse] [--json FILE]``.

For each server (a fresh Synapse from PyPI in ``/tmp/parta-bench/synapse-venv`` and a fresh Parta
node, both on 127.0.0.1 with SQLite, rate limits off, see ``synapse_env.py``):

1. register ``senders`` users and one observer with matrix-nio, the first sender creates a
   public room and everyone joins;
2. warm-up: each sender sends a few messages, the observer waits until it has seen them;
3. the observer long-polls ``/sync`` continuously while the ``senders`` send ``messages`` each,
   concurrently, each sender one request at a time (closed loop);
4. measured: send rate (all messages / wall time from first send to last response), send
   latency p50/p99 (request -> response), delivery p50/p99 (send request start -> the observer's
   ``/sync`` returning that event), and the server's peak RSS (``VmHWM`` of its process).

The whole run is bounded (``--deadline`` seconds per server); servers are stopped (SIGTERM) and
their temp dirs removed at the end, also on errors or Ctrl-C.
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
import time
from dataclasses import asdict, dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from nio import (
    AsyncClient,
    JoinResponse,
    RegisterResponse,
    RoomCreateResponse,
    RoomPreset,
    RoomSendResponse,
    RoomVisibility,
    SyncResponse,
)

from synapse_env import (
    BENCH_ROOT,
    PartaServer,
    SynapseServer,
    ensure_synapse_venv,
    log,
    synapse_version,
)

PASSWORD = "bench-password-123"
WARMUP_MESSAGES = 3
SYNC_FILTER = {
    "presence": {"types": []},
    "account_data": {"types": []},
    "room": {
        "timeline": {"limit": 1000},
        "state": {"lazy_load_members": True},
        "ephemeral": {"types": []},
        "account_data": {"types": []},
    },
}


@dataclass
class Result:
    server: str
    version: str
    senders: int
    messages_per_sender: int
    sent: int
    delivered: int
    send_rate: float  # msgs/s
    send_p50_ms: float
    send_p99_ms: float
    delivery_p50_ms: float
    delivery_p99_ms: float
    peak_rss_mib: float
    errors: int


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def register(base_url: str, name: str) -> AsyncClient:
    client = AsyncClient(base_url, "")
    resp = await client.register(name, PASSWORD, device_name="bench")
    if not isinstance(resp, RegisterResponse):
        await client.close()
        raise RuntimeError(f"register {name} failed: {resp}")
    return client


class Observer:
    """Long-polls /sync and stamps the arrival time of every bench message."""

    def __init__(self, client: AsyncClient, room_id: str) -> None:
        self.client = client
        self.room_id = room_id
        self.arrivals: dict[str, float] = {}
        self._stop = False
        self.errors = 0

    async def catch_up(self) -> None:
        resp = await self.client.sync(timeout=0, sync_filter=SYNC_FILTER)
        if not isinstance(resp, SyncResponse):
            raise RuntimeError(f"observer sync failed: {resp}")

    async def run(self) -> None:
        while not self._stop:
            resp = await self.client.sync(timeout=5000, sync_filter=SYNC_FILTER)
            now = time.perf_counter()
            if not isinstance(resp, SyncResponse):
                self.errors += 1
                await asyncio.sleep(0.05)
                continue
            room = resp.rooms.join.get(self.room_id)
            if room is None:
                continue
            for event in room.timeline.events:
                bench_id = event.source.get("content", {}).get("bench_id")
                if bench_id is not None and bench_id not in self.arrivals:
                    self.arrivals[bench_id] = now

    def stop(self) -> None:
        self._stop = True


async def sender(
    client: AsyncClient,
    room_id: str,
    index: int,
    count: int,
    prefix: str,
    starts: dict[str, float],
    latencies: list[float],
    deadline: float,
    progress: list[int],
) -> int:
    errors = 0
    for i in range(count):
        if time.perf_counter() > deadline:
            break
        bench_id = f"{prefix}-{index}-{i}"
        t0 = time.perf_counter()
        starts[bench_id] = t0
        resp = await client.room_send(
            room_id,
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": f"Nachricht {i} von Sender {index}",
                "bench_id": bench_id,
            },
        )
        if isinstance(resp, RoomSendResponse):
            latencies.append(time.perf_counter() - t0)
            progress[0] += 1
        else:
            errors += 1
            del starts[bench_id]
    return errors


async def drive(base_url: str, label: str, senders: int, messages: int, deadline_s: float) -> dict:
    deadline = time.perf_counter() + deadline_s
    log(f"{label}: registering {senders} senders and an observer")
    tag = f"{int(time.time()) % 100000}"
    clients = [await register(base_url, f"sender{tag}x{i}") for i in range(senders)]
    observer_client = await register(base_url, f"observer{tag}")
    try:
        created = await clients[0].room_create(
            visibility=RoomVisibility.public, preset=RoomPreset.public_chat, name="Bench room"
        )
        if not isinstance(created, RoomCreateResponse):
            raise RuntimeError(f"createRoom failed: {created}")
        room_id = created.room_id
        for c in clients[1:] + [observer_client]:
            joined = await c.join(room_id)
            if not isinstance(joined, JoinResponse):
                raise RuntimeError(f"join failed: {joined}")

        observer = Observer(observer_client, room_id)
        await observer.catch_up()
        watcher = asyncio.create_task(observer.run())
        await asyncio.sleep(0.2)

        # Warm-up (not measured): connections, caches, JIT-free Python paths.
        log(f"{label}: warm-up ({WARMUP_MESSAGES} messages per sender)")
        warm_starts: dict[str, float] = {}
        await asyncio.gather(
            *(
                sender(c, room_id, i, WARMUP_MESSAGES, "warm", warm_starts, [], deadline, [0])
                for i, c in enumerate(clients)
            )
        )
        while not set(warm_starts) <= set(observer.arrivals):
            if time.perf_counter() > deadline:
                raise RuntimeError("warm-up messages never reached the observer")
            await asyncio.sleep(0.05)

        log(f"{label}: {senders} senders x {messages} messages")
        starts: dict[str, float] = {}
        latencies: list[float] = []
        progress = [0]
        total = senders * messages

        async def report() -> None:
            while True:
                await asyncio.sleep(2)
                log(
                    f"{label}: sent {progress[0]}/{total}, "
                    f"delivered {sum(1 for k in starts if k in observer.arrivals)}"
                )

        reporter = asyncio.create_task(report())
        t_start = time.perf_counter()
        errors = await asyncio.gather(
            *(
                sender(c, room_id, i, messages, "run", starts, latencies, deadline, progress)
                for i, c in enumerate(clients)
            )
        )
        t_end = time.perf_counter()
        # Wait (bounded) for the observer to see everything that was sent.
        settle = min(deadline, time.perf_counter() + 30)
        while not set(starts) <= set(observer.arrivals) and time.perf_counter() < settle:
            await asyncio.sleep(0.05)
        reporter.cancel()
        observer.stop()
        try:
            await asyncio.wait_for(watcher, 10)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            watcher.cancel()
        deliveries = [
            observer.arrivals[k] - t0 for k, t0 in starts.items() if k in observer.arrivals
        ]
        return {
            "sent": len(latencies),
            "delivered": len(deliveries),
            "send_rate": len(latencies) / (t_end - t_start) if t_end > t_start else 0.0,
            "send_p50_ms": percentile(latencies, 50) * 1000,
            "send_p99_ms": percentile(latencies, 99) * 1000,
            "delivery_p50_ms": percentile(deliveries, 50) * 1000,
            "delivery_p99_ms": percentile(deliveries, 99) * 1000,
            "errors": sum(errors) + observer.errors,
        }
    finally:
        for c in clients + [observer_client]:
            await c.close()


def bench_server(server, label: str, version: str, args: argparse.Namespace) -> Result:
    log(f"{label}: starting")
    server.start()
    log(
        f"{label}: up at {server.base_url} (pid {server.pid}, RSS "
        f"{(server.rss_kib() or 0) / 1024:.0f} MiB)"
    )
    figures = asyncio.run(drive(server.base_url, label, args.senders, args.messages, args.deadline))
    peak = (server.peak_rss_kib() or 0) / 1024
    return Result(
        server=label,
        version=version,
        senders=args.senders,
        messages_per_sender=args.messages,
        peak_rss_mib=peak,
        **figures,
    )


def parta_version() -> str:
    try:
        from importlib.metadata import version

        return version("parta")
    except Exception:  # noqa: BLE001 - not installed: a source checkout
        return "dev"


def medians(results: list[Result]) -> list[Result]:
    out = []
    for name in dict.fromkeys(r.server for r in results):
        runs = [r for r in results if r.server == name]
        fields = {
            k: statistics.median(getattr(r, k) for r in runs)
            for k in (
                "send_rate",
                "send_p50_ms",
                "send_p99_ms",
                "delivery_p50_ms",
                "delivery_p99_ms",
                "peak_rss_mib",
            )
        }
        out.append(
            Result(
                server=name,
                version=f"median of {len(runs)}",
                senders=runs[0].senders,
                messages_per_sender=runs[0].messages_per_sender,
                sent=sum(r.sent for r in runs),
                delivered=sum(r.delivered for r in runs),
                errors=sum(r.errors for r in runs),
                **fields,
            )
        )
    return out


def print_table(results: list[Result]) -> None:
    cols = [
        ("send msgs/s", "send_rate", "{:.1f}"),
        ("send p50 ms", "send_p50_ms", "{:.1f}"),
        ("send p99 ms", "send_p99_ms", "{:.1f}"),
        ("delivery p50 ms", "delivery_p50_ms", "{:.1f}"),
        ("delivery p99 ms", "delivery_p99_ms", "{:.1f}"),
        ("peak RSS MiB", "peak_rss_mib", "{:.0f}"),
        ("sent/delivered/errors", None, None),
    ]
    print()
    print(f"{'':28}" + "".join(f"{c[0]:>22}" for c in cols))
    for r in results:
        cells = [fmt.format(getattr(r, key)) for _, key, fmt in cols if key]
        cells.append(f"{r.sent}/{r.delivered}/{r.errors}")
        print(f"{r.server + ' ' + r.version:28}" + "".join(f"{c:>22}" for c in cells))
    by = {r.server: r for r in results}  # the last row per server: the median if any
    if "parta" in by and "synapse" in by:
        p, s = by["parta"], by["synapse"]
        print()
        print(
            f"Parta/Synapse: send rate x{p.send_rate / s.send_rate:.1f}, "
            f"send p99 x{p.send_p99_ms / s.send_p99_ms:.2f}, "
            f"delivery p99 x{p.delivery_p99_ms / s.delivery_p99_ms:.2f}, "
            f"peak RSS x{p.peak_rss_mib / s.peak_rss_mib:.2f}"
        )
    if "parta" in by and "parta-nopush" in by:
        on, off = by["parta"], by["parta-nopush"]
        print(
            f"Push evaluation on/off: send rate x{on.send_rate / off.send_rate:.2f}, "
            f"delivery p99 x{on.delivery_p99_ms / off.delivery_p99_ms:.2f}"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--senders", type=int, default=7)
    ap.add_argument("--messages", type=int, default=100, help="messages per sender")
    ap.add_argument("--only", choices=["parta", "synapse"])
    ap.add_argument(
        "--deadline",
        type=float,
        default=300,
        help="seconds per server for the whole load (bounds the run)",
    )
    ap.add_argument(
        "--synapse-spec",
        default="matrix-synapse",
        help="pip requirement for Synapse (default: latest)",
    )
    ap.add_argument(
        "--runs",
        type=int,
        default=1,
        help="repeat the whole measurement (fresh servers each time); the table "
        "shows every run and the per-server median",
    )
    ap.add_argument(
        "--push-off",
        action="store_true",
        help="also run Parta with push evaluation off (push.enabled: false), labelled "
        "'parta-nopush', to measure what evaluating every member's push rules costs",
    )
    ap.add_argument("--json", help="also write the results as JSON to this file")
    args = ap.parse_args()

    print(
        f"Parta node benchmark {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()}: "
        f"Python {platform.python_version()}, {os.cpu_count()} cores; "
        f"{args.senders} senders x {args.messages} messages, one observer"
    )
    os.makedirs(BENCH_ROOT, exist_ok=True)
    results: list[Result] = []
    order = [args.only] if args.only else ["synapse", "parta"]
    if args.push_off:
        order.append("parta-nopush")
    for which in order * args.runs:
        workdir = tempfile.mkdtemp(prefix=f"{which}-", dir=BENCH_ROOT)
        server = None
        try:
            if which == "synapse":
                python = ensure_synapse_venv(args.synapse_spec)
                server = SynapseServer(workdir, python)
                results.append(bench_server(server, "synapse", synapse_version(python), args))
            else:
                os.rmdir(workdir)  # parta node init creates it
                overrides = {"push": {"enabled": False}} if which == "parta-nopush" else None
                server = PartaServer(workdir, overrides=overrides)
                results.append(bench_server(server, which, parta_version(), args))
        finally:
            if server is not None:
                server.stop()
                log(f"{which}: stopped")
            shutil.rmtree(workdir, ignore_errors=True)
    if args.runs > 1:
        results += medians(results)
    print_table(results)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([asdict(r) for r in results], fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
