"""Server-side search benchmark: ``POST /search`` latency on a 200,000-event corpus (not a
test).

Run: ``.venv/bin/python bench/bench_search.py [--events 200000] [--rooms 4]
[--queries 40] [--send-cost] [--synapse-events 20000] [--json FILE]``.

1. A fresh Parta node data directory (``parta node init``, SQLite, migrations at head).
2. The corpus is written in-process through the node's own storage path: a
   ``RoomService`` on the node's database creates the rooms and sends every message
   (events built, signed, checked and persisted like a client's), ``--batch`` events per
   persister transaction, with the search index writer hooked in as the node does.  Message
   texts are 4-20 words drawn from a synthetic Zipf-distributed vocabulary, plus a few
   marker words at known frequencies, so the terms below match from one event to ~10 %.
3. The node is started; one user (a member of every room) runs ``--queries`` searches per
   term and order over HTTP (one persistent connection, one request at a time) and the
   p50/p99 request latency per term is printed.

``--send-cost``: additionally run ``bench_node.drive`` (the school-node send benchmark)
against two fresh nodes, with and without the search index writer, and print the send
rate and latency of both, to show what indexing costs the send path.

``--synapse-events N``: Synapse side by side (the venv of ``make test``'s
``.venv-synapse``, or ``--synapse-python``), on a corpus of N events with the same texts.
Synapse's storage is its own, so its corpus can only go in through the client API, one
request per event (8 writers at once); at Synapse's send rate on a small machine that is
practical for tens of thousands of events, not 200,000.  Parta is then measured again on
the same N events, so the two columns compare like with like.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

import yaml
from support.db import InlineDB
from support.deferreds import result_of
from twisted.internet import defer

from synapse_env import BENCH_ROOT, PartaServer, log

TERMS = [
    ("frequent word", "w0"),
    ("medium word", "w40"),
    ("rare word", "photosynthesis"),
    ("single event", "xylophonequartet"),
    ("two words", "w0 w1"),
    ("prefix", "photo"),
    ("no match", "nothingmatchesthis"),
]
MARKERS = [("photosynthesis", 0.001), ("xylophonequartet", 0.0)]


class _Timer:
    def active(self) -> bool:
        return False

    def cancel(self) -> None:
        pass


class BenchClock:
    def time_ms(self) -> int:
        return int(time.time() * 1000)

    def call_later(self, seconds, fn, *args):
        return _Timer()  # the bench releases its holds itself


class Profiles:
    async def get_profile(self, user_id):
        return {}

    async def user_exists(self, user_id):
        return True

    def add_profile_listener(self, cb):
        pass


def vocabulary(n: int = 20000) -> tuple[list[str], list[float]]:
    words = [f"w{i}" for i in range(n)]
    weights = [1.0 / (i + 1) for i in range(n)]
    return words, weights


def corpus_texts(events: int):
    """The message bodies, in order (the same for every server)."""
    rng = random.Random(42)
    words, weights = vocabulary()
    for k in range(events):
        text = rng.choices(words, weights, k=rng.randint(4, 20))
        for marker, p in MARKERS:
            if rng.random() < p:
                text.insert(rng.randrange(len(text)), marker)
        if k == events // 2:
            text.append("xylophonequartet")
        yield " ".join(text)


def build_corpus(workdir: str, server_name: str, events: int, rooms: int, batch: int) -> str:
    """Write the corpus into the node's database; returns the searching user's ID."""
    import schema.search  # noqa: F401 - the tables
    from federation.keys import read_signing_keys
    from node.rooms.service import RoomService
    from node.search.index import ensure_fts, write_index
    from node.storage.database import make_engine
    from schema.migrations import upgrade

    with open(os.path.join(workdir, "config.yaml")) as fh:
        cfg = yaml.safe_load(fh)
    url = cfg.get("database_url") or f"sqlite:///{os.path.join(workdir, 'node.db')}"
    key_path = cfg.get("signing_key_path") or os.path.join(workdir, "signing.key")
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    with open(key_path) as fh:
        key = read_signing_keys(fh.read())[0]
    db = InlineDB(url)
    svc = RoomService(
        db=db, clock=BenchClock(), server_name=server_name, signing_key=key, accounts=Profiles()
    )
    svc.persister.start_sync()
    svc.state_store.start_sync()
    db.run_sync(ensure_fts)
    svc.persister.in_transaction.append(write_index)
    db.run_sync(lambda conn: conn.exec_driver_sql("DELETE FROM event_search_backfill"))

    reader = f"@reader:{server_name}"
    writers = [f"@pupil{i}:{server_name}" for i in range(8)]
    room_ids = []
    for r in range(rooms):
        room_id = result_of(svc.create_room(reader, {"preset": "public_chat", "name": f"R{r}"}))
        for w in writers:
            result_of(svc.update_membership(w, room_id, w, "join"))
        room_ids.append(room_id)

    texts = corpus_texts(events)
    t0 = time.perf_counter()
    done = 0
    while done < events:
        n = min(batch, events - done)
        svc.persister.hold()
        pending = []
        for i in range(n):
            k = done + i
            pending.append(
                defer.ensureDeferred(
                    svc.send_event(
                        writers[k % len(writers)],
                        room_ids[k % rooms],
                        "m.room.message",
                        {"msgtype": "m.text", "body": next(texts)},
                    )
                )
            )
        svc.persister.release()
        for d in pending:
            result_of(d)
        done += n
        if done % (batch * 20) == 0 or done == events:
            rate = done / (time.perf_counter() - t0)
            log(f"corpus: {done}/{events} events ({rate:.0f}/s)")
    db.engine.dispose()
    return reader


def register(base_url: str, localpart: str) -> str:
    import urllib.request

    body = json.dumps(
        {"username": localpart, "password": "bench-password-123", "auth": {"type": "m.login.dummy"}}
    ).encode()
    req = urllib.request.Request(
        base_url + "/_matrix/client/v3/register",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback
        return json.loads(resp.read())["access_token"]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def measure(base_url: str, token: str, queries: int) -> list[dict]:
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    out = []
    for order in ("rank", "recent"):
        for label, term in TERMS:
            body = json.dumps(
                {"search_categories": {"room_events": {"search_term": term, "order_by": order}}}
            )
            times, count = [], 0
            for i in range(queries + 2):
                t = time.perf_counter()
                conn.request("POST", "/_matrix/client/v3/search", body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                elapsed = (time.perf_counter() - t) * 1000
                if resp.status != 200:
                    raise RuntimeError(f"search {term!r}: {resp.status} {data[:200]!r}")
                if i >= 2:  # the first two warm caches
                    times.append(elapsed)
                count = json.loads(data)["search_categories"]["room_events"]["count"]
            out.append(
                {
                    "order": order,
                    "term": label,
                    "search_term": term,
                    "count": count,
                    "p50_ms": statistics.median(times),
                    "p99_ms": percentile(times, 99),
                }
            )
    conn.close()
    return out


async def feed_over_http(base_url: str, events: int, rooms: int, concurrency: int = 8) -> str:
    """Register a reader and ``concurrency`` writers, make ``rooms`` rooms and send the
    corpus through the client API (for a server whose storage we cannot write); returns
    the reader's access token."""
    import aiohttp

    async with aiohttp.ClientSession() as http:

        async def call(method, path, token=None, body=None):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with http.request(
                method, base_url + path, json=body if body is not None else {}, headers=headers
            ) as resp:
                data = await resp.json()
                if resp.status != 200:
                    raise RuntimeError(f"{method} {path}: {resp.status} {data}")
                return data

        async def new_user(name):
            reg = await call(
                "POST",
                "/_matrix/client/v3/register",
                body={
                    "username": name,
                    "password": "bench-password-123",
                    "auth": {"type": "m.login.dummy"},
                },
            )
            return reg["access_token"]

        reader = await new_user("reader")
        writers = [await new_user(f"pupil{i}") for i in range(concurrency)]
        room_ids = []
        for r in range(rooms):
            created = await call(
                "POST",
                "/_matrix/client/v3/createRoom",
                reader,
                {"preset": "public_chat", "name": f"R{r}"},
            )
            room_ids.append(created["room_id"])
            for w in writers:
                await call("POST", f"/_matrix/client/v3/rooms/{created['room_id']}/join", w)
        texts = list(corpus_texts(events))
        t0 = time.perf_counter()
        progress = [0]

        async def writer(i):
            for k in range(i, events, concurrency):
                room_id = room_ids[k % rooms]
                await call(
                    "PUT",
                    f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/t{k}",
                    writers[i],
                    {"msgtype": "m.text", "body": texts[k]},
                )
                progress[0] += 1
                if progress[0] % 5000 == 0:
                    rate = progress[0] / (time.perf_counter() - t0)
                    log(f"http corpus: {progress[0]}/{events} ({rate:.0f}/s)")

        await asyncio.gather(*(writer(i) for i in range(concurrency)))
        return reader


def side_by_side(args: argparse.Namespace) -> dict:
    """Synapse and Parta on the same smaller corpus (Synapse fed over HTTP)."""
    from synapse_env import SynapseServer, synapse_version

    python = args.synapse_python
    out: dict = {"events": args.synapse_events}
    workdir = tempfile.mkdtemp(prefix="synapse-search-", dir=BENCH_ROOT)
    server = SynapseServer(workdir, python)
    try:
        server.start()
        t = time.perf_counter()
        token = asyncio.run(feed_over_http(server.base_url, args.synapse_events, args.rooms))
        out["synapse_version"] = synapse_version(python)
        out["synapse_corpus_seconds"] = time.perf_counter() - t
        out["synapse"] = measure(server.base_url, token, args.queries)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    out["parta"] = run_parta(args, args.synapse_events)["search"]
    return out


def run_parta(args: argparse.Namespace, events: int) -> dict:
    workdir = tempfile.mkdtemp(prefix="parta-search-", dir=BENCH_ROOT)
    os.rmdir(workdir)
    server = PartaServer(workdir)
    report: dict = {"events": events}
    try:
        server.configure()
        t = time.perf_counter()
        build_corpus(workdir, server.server_name, events, args.rooms, args.batch)
        report["corpus_seconds"] = time.perf_counter() - t
        db_path = os.path.join(workdir, "node.db")
        if os.path.exists(db_path):
            report["db_mib"] = os.path.getsize(db_path) / 2**20
        server.configure = lambda: None  # type: ignore[method-assign]  # keep the corpus
        server.start()
        token = register(server.base_url, "reader")
        report["search"] = measure(server.base_url, token, args.queries)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def print_search(rows: list[dict]) -> None:
    print(f"{'order':7} {'term':15} {'search_term':20} {'count':>6} {'p50 ms':>8} {'p99 ms':>8}")
    for r in rows:
        print(
            f"{r['order']:7} {r['term']:15} {r['search_term']:20} {r['count']:>6} "
            f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f}"
        )


def send_cost(args: argparse.Namespace) -> list[dict]:
    """bench_node's send load on a node with and without the index writer."""
    from bench_node import drive
    from synapse_env import parta_command

    without = [
        sys.executable,
        "-c",
        "import sys; import node.search.wiring as w; w.write_index = lambda conn, evs: None; "
        "from node.cli.main import main; sys.exit(main())",
    ]
    results = []
    for _ in range(args.runs):  # interleaved, so load on the machine hits both alike
        for label, command in (("with index", None), ("without index", without)):
            workdir = tempfile.mkdtemp(prefix="parta-send-", dir=BENCH_ROOT)
            os.rmdir(workdir)
            server = PartaServer(workdir, command=command or parta_command())
            try:
                server.start()
                figures = asyncio.run(drive(server.base_url, label, 7, 100, 300))
                results.append({"node": label, **figures})
            finally:
                server.stop()
                shutil.rmtree(workdir, ignore_errors=True)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rooms", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1000, help="events per persister write")
    ap.add_argument("--queries", type=int, default=40, help="searches per term and order")
    ap.add_argument("--send-cost", action="store_true")
    ap.add_argument(
        "--synapse-events",
        type=int,
        default=0,
        help="also compare with Synapse on a corpus of this many events (fed over HTTP)",
    )
    ap.add_argument(
        "--synapse-python",
        default=os.path.join(REPO, ".venv-synapse", "bin", "python"),
        help="the python of a venv with Synapse installed",
    )
    ap.add_argument("--runs", type=int, default=3, help="send-cost runs per node")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    args = ap.parse_args()
    print(
        f"Parta search benchmark {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()}: "
        f"Python {platform.python_version()}, {os.cpu_count()} cores; "
        f"{args.events} events in {args.rooms} rooms, SQLite"
    )
    os.makedirs(BENCH_ROOT, exist_ok=True)
    report: dict = {}
    if args.events:
        report = run_parta(args, args.events)
        seconds, mib = report["corpus_seconds"], report.get("db_mib", 0)
        print(f"corpus written in {seconds:.0f} s; database {mib:.0f} MiB")
        print_search(report["search"])
    if args.synapse_events:
        report["side_by_side"] = sbs = side_by_side(args)
        print(
            f"side by side, {sbs['events']} events (Synapse {sbs['synapse_version']}, "
            f"fed over HTTP in {sbs['synapse_corpus_seconds']:.0f} s):"
        )
        for name in ("synapse", "parta"):
            print(name)
            print_search(sbs[name])
    if args.send_cost:
        report["send_cost"] = send_cost(args)
        for r in report["send_cost"]:
            print(
                f"send: {r['node']:14} {r.get('send_rate', 0):7.1f} msg/s  "
                f"p50 {r.get('send_p50_ms', 0):6.1f} ms  p99 {r.get('send_p99_ms', 0):6.1f} ms"
            )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
