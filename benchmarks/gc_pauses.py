"""The cyclic garbage collector's pauses under ITI-41: the app of `dmp serve` in this process (Starlette's
TestClient, one request at a time, each with a fresh signed VIHF), every collection timed through
``gc.callbacks``. Prints, per generation, the number of collections, their total and longest pause, and the
CPU per document, with the node's objects left in the collector's reach or frozen as `dmp serve` does
(``server._supervisor.frozen``). A collection holds the GIL: its pause is every in-flight request's.

    .venv/bin/python benchmarks/gc_pauses.py [--requests 2000] [--rounds 2] [--threshold0 700]

Each variant runs in a fresh process (a full collection's timing depends on the whole history of the heap),
the variants alternated ``--rounds`` times.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import machine
from iti41_throughput import encode_requests
from nodes import make_node
from starlette.testclient import TestClient
from xds_client import parse_reply

from server._app import create_app
from server._supervisor import frozen


def run(requests: list[Any], warmup: int, freeze: bool) -> None:
    pauses: list[list[float]] = [[], [], []]
    started = [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses[info["generation"]].append(time.perf_counter() - started[0])

    with tempfile.TemporaryDirectory(prefix="dmp-bench-") as tmp:
        app = create_app(make_node(Path(tmp) / "node"))
        if freeze:
            frozen(app)
        with TestClient(app) as http:
            cpu0 = 0.0
            for n, req in enumerate(requests):
                if n == warmup:
                    gc.callbacks.append(timed)
                    cpu0 = time.process_time()
                r = http.post("/xds/repository", content=req.body, headers={"Content-Type": req.content_type})
                reply = parse_reply(r.status_code, r.headers.get("content-type", ""), r.content, Path(tmp))
                if reply.status != "Success":
                    raise SystemExit(f"request {n}: {reply.status} {reply.errors or reply.fault_reason}")
            cpu = time.process_time() - cpu0
            gc.callbacks.remove(timed)
    count = len(requests) - warmup
    print(f"{'frozen' if freeze else 'not frozen':>10}: CPU {1000 * cpu / count:.2f} ms/doc, GC "
          f"{1000 * sum(map(sum, pauses)) / count:.3f} ms/doc; " + "; ".join(
              f"gen{g} {len(p)} x, {1000 * sum(p):.1f} ms, longest {1000 * max(p, default=0):.2f} ms"
              for g, p in enumerate(pauses)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threshold0", type=int, default=gc.get_threshold()[0])
    ap.add_argument("--variant", choices=["frozen", "not-frozen"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    gc.set_threshold(args.threshold0, *gc.get_threshold()[1:])
    if args.variant:
        run(encode_requests(args.warmup + args.requests), args.warmup, args.variant == "frozen")
        return
    print(f"GC pauses under ITI-41; {machine()}; thresholds {gc.get_threshold()}", flush=True)
    for _ in range(args.rounds):   # alternated: the machine's load moves between runs
        for variant in ("not-frozen", "frozen"):
            subprocess.run([sys.executable, __file__, "--variant", variant, "--requests", str(args.requests),
                            "--warmup", str(args.warmup), "--threshold0", str(args.threshold0)], check=True)


if __name__ == "__main__":
    main()
