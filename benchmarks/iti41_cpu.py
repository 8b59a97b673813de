"""CPU time per ITI-41 document of the in-process pipeline: the app of `dmp serve` in this process (Starlette's
TestClient, the same routes and pipeline, consent checker on, a fresh signed VIHF per request), one request at a
time, no event listener on the engine (unlike ``iti41_statements.py``, whose statement counter makes every
statement dispatch events).

    .venv/bin/python benchmarks/iti41_cpu.py [--requests 400] [--rounds 3] [--database sqlite|postgresql]

Printed per round: CPU (user + system, all threads of this process: the client's reply parsing included) per
document, the median of the rounds, and the failures (must be 0). CPU time, not wall-clock rates: on a shared
machine it moves far less with the load of others. To compare two revisions, run this same file from each
checkout in turn (``ROOT`` is this file's checkout), alternating, e.g. with a second worktree of the old commit.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from _harness import durable_postgres, machine
from iti41_throughput import encode_requests
from nodes import make_node

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient
from xds_client import parse_reply

from server._app import create_app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=400, help="per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = ap.parse_args()
    print(f"ITI-41 CPU per document, in process; {machine()}")
    requests = encode_requests(args.warmup + args.rounds * args.requests)
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(durable_postgres()) if args.database == "postgresql" else None
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dmp-bench-")))
        app = create_app(make_node(tmp / "node", database_url=url))
        per_doc: list[float] = []
        failures = 0
        with TestClient(app) as http:
            def send(req: object) -> int:
                r = http.post("/xds/repository", content=req.body,  # type: ignore[attr-defined]
                              headers={"Content-Type": req.content_type})  # type: ignore[attr-defined]
                reply = parse_reply(r.status_code, r.headers.get("content-type", ""), r.content, tmp)
                if reply.mime is not None:
                    reply.mime.discard()
                return int(reply.status != "Success")

            for req in requests[:args.warmup]:
                failures += send(req)
            for n in range(args.rounds):
                batch = requests[args.warmup + n * args.requests: args.warmup + (n + 1) * args.requests]
                cpu0 = time.process_time()
                for req in batch:
                    failures += send(req)
                per_doc.append(1000 * (time.process_time() - cpu0) / len(batch))
                print(f"  round {n + 1}: {per_doc[-1]:.2f} ms CPU/doc")
    print(f"database: {args.database}; {args.rounds} x {args.requests} ITI-41 one at a time, {failures} failures; "
          f"median {statistics.median(per_doc):.2f} ms CPU/doc")


if __name__ == "__main__":
    main()
