"""Benchmark the motion server: ``python server/bench/service.py [--checkpoint NAME] [--device cpu]``.

Starts ``serve.py`` as a child process (fresh data folder, ephemeral loopback port) and
prints one JSON line per measurement on stdout (progress goes to stderr):

- ``concurrency``: throughput and p50/p99 latency for 1, 4 and 8 concurrent clients, each
  asking for ``--n`` candidates of ``--seconds`` seconds;
- ``batching``: 8 clients with batching on vs. a server started with ``--max-batch 1``;
- ``fuzz``: ``--fuzz`` malformed messages; every one must be answered with an ``error``
  and the server must survive (``crashes`` counts server deaths);
- ``durability``: clients stream picks, the server is killed with SIGKILL, restarted, and
  every acknowledged pick is looked up (``lost`` must be 0, ``duplicates`` must be 0).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository root, not server/
    sys.path[0] = str(Path(__file__).resolve().parents[2])

import numpy as np

from server.service.client import MotionClient, ServerUnavailable
from server.service.models_folder import default_models_dir, locate_checkpoint
from server.service.picks import PicksStore
from server.service.server_process import ServerProcess


def progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def run_clients(endpoint: str, clients: int, requests: int, n: int, seconds: float, steps: int | None) -> dict:
    """``clients`` threads, each sending ``requests`` generates back to back; latency and throughput."""
    latencies: list[float] = []
    failures: list[str] = []
    barrier = threading.Barrier(clients + 1)

    def one(c: int) -> None:
        with MotionClient(endpoint, timeout=600, retries=0) as client:
            barrier.wait()
            for r in range(requests):
                started = time.perf_counter()
                try:
                    client.generate(f"a person walks forward then turns around ({c}.{r})", n=n, seconds=seconds,
                                    seed=c * 1000 + r, steps=steps)
                except Exception as exc:  # counted and reported, the benchmark goes on
                    failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=one, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    done = len(latencies)
    return {"clients": clients, "requests": done, "failed": len(failures), "n": n, "seconds": seconds,
            "wall_s": round(wall, 3), "requests_per_s": round(done / wall, 4),
            "candidates_per_s": round(done * n / wall, 3),
            "motion_seconds_per_s": round(done * n * seconds / wall, 2),
            "p50_s": round(_percentile(latencies, 50), 3), "p99_s": round(_percentile(latencies, 99), 3),
            "errors": failures[:3]}


def malformed_message(rng: np.random.Generator, i: int) -> list[bytes]:
    """One message the server must refuse with exactly one ``error`` (and cheaply: no generation)."""
    mid = f"fuzz-{i}"

    def head(**fields) -> bytes:
        base = {"v": 1, "type": "generate", "id": mid, "prompt": "walk"}
        base.update(fields)
        return json.dumps(base).encode()

    kind = i % 16
    if kind == 0:
        return [rng.bytes(int(rng.integers(0, 2000)))]
    if kind == 1:
        not_an_object = [[int(x) for x in rng.integers(0, 9, 3)], "text", float(rng.random()), None, True]
        return [json.dumps(not_an_object[i // 16 % len(not_an_object)]).encode()]
    if kind == 2:
        return [head(v=int(rng.integers(2, 10**6)))]
    if kind == 3:
        return [head(type="".join(chr(c) for c in rng.integers(97, 123, 8)))]
    if kind == 4:
        return [head()] + [rng.bytes(8) for _ in range(int(rng.integers(1, 4)))]
    if kind == 5:
        frames = [{"name": f"a{j}", "dtype": "float32", "shape": [2]} for j in range(int(rng.integers(1, 4)))]
        return [head(frames=frames)]
    if kind == 6:
        return [head(frames=[{"name": "x", "dtype": str(rng.choice(["complex64", "object", "<U4", "f2"])),
                              "shape": [1]}]), b"\x00" * 8]
    if kind == 7:
        return [head(frames=[{"name": "x", "dtype": "float32", "shape": [int(rng.integers(2, 100))]}]),
                rng.bytes(4)]
    if kind == 8:
        return [head(frames=[{"name": "x", "dtype": "float64", "shape": [2**31, 2**31]}]), b""]
    if kind == 9:
        return [head(frames=[{"name": "x", "dtype": "float32", "shape": [2]}]),
                np.array([np.nan, np.inf], np.float32).tobytes()]
    if kind == 10:
        return [head(n=int(rng.integers(9, 10**9)))]
    if kind == 11:
        return [head(prompt="x" * int(rng.integers(301, 20000)))]
    if kind == 12:
        return [head(seconds=str(rng.random()))]
    if kind == 13:
        return [json.dumps({"v": 1, "type": "pick", "id": mid, "request_id": f"unknown-{i}", "chosen": 0,
                            "idempotency_key": mid}).encode()]
    if kind == 14:
        return [json.dumps({"v": 1, "type": "reload", "id": mid,
                            "checkpoint": str(rng.choice(["../etc", "/abs", "missing", "a/b"]))}).encode()]
    return [json.dumps({"v": 1, "type": "result", "id": mid, "request_id": "r"}).encode()]


def fuzz(server: ServerProcess, count: int, seed: int = 0, window: int = 200) -> dict:
    """Send ``count`` malformed messages (at most ``window`` unanswered at a time); count the answers."""
    rng = np.random.default_rng(seed)
    sent = answered = errors = 0
    started = time.perf_counter()
    with MotionClient(server.endpoint, timeout=30, retries=0) as client:
        while answered < count:
            while sent < count and sent - answered < window:
                client.send_frames(malformed_message(rng, sent))
                sent += 1
            reply = client.receive(30)
            if reply is None:
                break
            answered += 1
            errors += reply.type == "error"
        alive = server.alive()
        hello_ok = alive and client.hello().type == "hello_ok"
    return {"messages": count, "answered": answered, "errors": errors, "crashes": 0 if alive else 1,
            "hello_after": bool(hello_ok), "wall_s": round(time.perf_counter() - started, 2)}


def durability(data: Path, args: argparse.Namespace, clients: int = 4, kill_after_s: float = 2.0) -> dict:
    """Stream picks from several clients, SIGKILL the server, restart, check every acknowledged pick."""
    server = ServerProcess(data, *args.server_args, device=args.device)
    with MotionClient(server.endpoint, timeout=600) as client:
        request_id = client.generate("a person jumps", n=4, seconds=1.0, steps=args.steps).request_id
    acked: list[str] = []
    sent: list[str] = []
    lock = threading.Lock()

    def stream(c: int) -> None:
        with MotionClient(server.endpoint, timeout=3, retries=0) as client:
            for i in range(10**9):
                key = f"durability-{c}-{i}"
                with lock:
                    sent.append(key)
                try:
                    client.pick(request_id, i % 4, idempotency_key=key)
                except ServerUnavailable:
                    return
                with lock:
                    acked.append(key)

    threads = [threading.Thread(target=stream, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    time.sleep(kill_after_s)
    status = server.kill9()
    for t in threads:
        t.join()
    with PicksStore(data / "picks.db") as store:   # what a restarted server opens
        keys = store.pick_keys()
    restarted = ServerProcess(data, *args.server_args, device=args.device)
    with MotionClient(restarted.endpoint, timeout=60) as client:
        resent_ok = all(client.pick(request_id, int(k.rsplit("-", 1)[1]) % 4, idempotency_key=k)
                        .fields["duplicate"] for k in acked[:20])
    restarted.stop()
    found = set(keys)
    return {"kill_signal_status": status, "acknowledged": len(acked), "found": len(found & set(acked)),
            "lost": len(set(acked) - found), "duplicates": len(keys) - len(found),
            "unacknowledged_but_stored": len(found - set(acked)), "resent_acknowledged_once": resent_ok}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a checkpoint name, 'default' or folder (default: the bundled default)")
    parser.add_argument("--models", type=Path, default=None, help="models folder for --checkpoint (serve.py --models)")
    parser.add_argument("--device", default=None, help="server device (default: cuda when present)")
    parser.add_argument("--n", type=int, default=4, help="candidates per request")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per candidate (capped by the model)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    parser.add_argument("--requests", type=int, default=4, help="requests per client")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--fuzz", type=int, default=10_000, help="malformed messages to send")
    parser.add_argument("--skip", nargs="*", default=[], choices=["concurrency", "batching", "fuzz", "durability"])
    args = parser.parse_args(argv)
    args.server_args = ["--checkpoint", str(locate_checkpoint(args.checkpoint, args.models or default_models_dir()))
                        ] if args.checkpoint else []   # a folder: serve.py runs in a temporary data folder
    if args.models:
        args.server_args += ["--models", str(args.models.resolve())]
    device = args.device
    if device is None:
        import torch
        device = "cuda" if torch.cuda.is_available() else "cpu"
    args.device = device

    with tempfile.TemporaryDirectory(prefix="sopo-bench-") as tmp:
        root = Path(tmp)
        progress(f"starting serve.py on {device}")
        server = ServerProcess(root / "main", *args.server_args, device=args.device)
        try:
            with MotionClient(server.endpoint, timeout=600) as client:
                hello = client.hello("bench").fields
                seconds = min(args.seconds, hello["limits"]["max_seconds"])
                progress(f"model {hello['model']}; warming up")
                client.generate("warm up", n=args.n, seconds=seconds, steps=args.steps)
            base = {"model": hello["model"], "device": device, "cpu_count": os.cpu_count()}
            rows = {}
            if "concurrency" not in args.skip:
                for clients in args.clients:
                    progress(f"{clients} concurrent clients x {args.requests} requests")
                    rows[clients] = run_clients(server.endpoint, clients, args.requests, args.n, seconds, args.steps)
                    emit({"bench": "concurrency", **base, **rows[clients]})
            if "fuzz" not in args.skip:
                progress(f"fuzz: {args.fuzz} malformed messages")
                emit({"bench": "fuzz", **base, **fuzz(server, args.fuzz)})
        finally:
            server.stop()
        if "batching" not in args.skip:
            clients = max(args.clients)
            batched = rows.get(clients) or None
            if batched is None:
                server = ServerProcess(root / "batched", *args.server_args, device=args.device)
                try:
                    batched = run_clients(server.endpoint, clients, args.requests, args.n, seconds, args.steps)
                finally:
                    server.stop()
            progress(f"batching off: {clients} clients against --max-batch 1")
            server = ServerProcess(root / "serial", *args.server_args, "--max-batch", "1", device=args.device)
            try:
                with MotionClient(server.endpoint, timeout=600) as client:
                    client.generate("warm up", n=args.n, seconds=seconds, steps=args.steps)
                serial = run_clients(server.endpoint, clients, args.requests, args.n, seconds, args.steps)
            finally:
                server.stop()
            emit({"bench": "batching", **base, "clients": clients,
                  "batched_requests_per_s": batched["requests_per_s"], "serial_requests_per_s": serial["requests_per_s"],
                  "batched_p50_s": batched["p50_s"], "serial_p50_s": serial["p50_s"],
                  "speedup": round(batched["requests_per_s"] / max(serial["requests_per_s"], 1e-9), 2)})
        if "durability" not in args.skip:
            progress("durability: kill -9 during a stream of picks")
            emit({"bench": "durability", **base, **durability(root / "durability", args)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
