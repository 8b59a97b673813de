"""CPU per ITI-41 document of the whole server pipeline in this process, without HTTP: the app of `dmp serve`
(``create_app``: the same routes, MTOM decoder, VIHF verification, consent checker, registry, repository,
fsyncs) called straight through ASGI, one request at a time, each with a fresh signed VIHF; the same request
bytes as ``iti41_throughput.py``. CPU time of this process per document (user + system, and user alone: the
kernel's share, file creations and fsyncs, varies with the other processes' disk activity), best and median of
``--rounds`` batches: load from other processes moves these far less than HTTP rates (issue 13).

    .venv/bin/python benchmarks/iti41_cpu.py [--rounds 5] [--batch 200] [--database sqlite|postgresql]
                                             [--profile OUT.pstats]

``--profile`` runs one more batch under cProfile (the worker-thread hop made a plain call, so that the whole
pipeline is in the profiled thread) and writes its statistics (``python -m pstats OUT``).
SQL execution is in these figures (a SQLite file, FULL synchronous): compare two versions of the code on the
same database kind, alternating the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import tempfile
from pathlib import Path
from typing import Any

from _harness import durable_postgres, machine
from iti41_throughput import Request, encode_requests
from nodes import make_node

import server._app
from server._app import create_app


async def _post(app: Any, req: Request) -> tuple[int, bytes]:
    """One POST /xds/repository through the ASGI interface; the status and the whole answer body."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/xds/repository", "raw_path": b"/xds/repository", "root_path": "",
             "query_string": b"", "headers": [(b"host", b"127.0.0.1"), (b"content-type", req.content_type.encode()),
                                              (b"content-length", str(len(req.body)).encode())],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080)}
    sent = False
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)   # the app asks again only to watch for a disconnect
        sent = True
        return {"type": "http.request", "body": req.body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def _batch(app: Any, requests: list[Request]) -> int:
    failures = 0
    for req in requests:
        status, answer = await _post(app, req)
        failures += status != 200 or b'ResponseStatusType:Success"' not in answer
    return failures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--profile", type=Path, metavar="OUT", help="one more batch under cProfile, stats to OUT")
    args = ap.parse_args()
    print(f"ITI-41 CPU per document in-process (no HTTP); {machine()}")
    extra = args.batch if args.profile else 0
    requests = encode_requests(args.warmup + args.rounds * args.batch + extra)
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(durable_postgres()) if args.database == "postgresql" else None
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dmp-bench-")))
        app = create_app(make_node(tmp / "node", database_url=url))
        loop = asyncio.new_event_loop()
        failures = loop.run_until_complete(_batch(app, requests[: args.warmup]))
        per_doc, user_per_doc = [], []
        start = args.warmup
        for _ in range(args.rounds):
            batch = requests[start : start + args.batch]
            start += args.batch
            t0 = os.times()
            failures += loop.run_until_complete(_batch(app, batch))
            t1 = os.times()
            per_doc.append(1000 * (t1.user + t1.system - t0.user - t0.system) / len(batch))
            user_per_doc.append(1000 * (t1.user - t0.user) / len(batch))
        if args.profile:
            # cProfile sees only its own thread: the worker-thread hop becomes a plain call for this batch
            async def inline(fn: Any, *fn_args: Any) -> Any:
                return fn(*fn_args)

            server._app.run_in_worker = inline  # type: ignore[assignment]
            profile = cProfile.Profile()
            profile.enable()
            failures += loop.run_until_complete(_batch(app, requests[start:]))
            profile.disable()
            profile.dump_stats(args.profile)
        loop.close()
    print(f"database: {args.database}; {args.rounds} x {args.batch} ITI-41 one at a time; failures: {failures}")
    for name, values in (("CPU (user + system)", per_doc), ("user CPU alone", user_per_doc)):
        print(f"{name} ms/doc: best {min(values):.2f}, median {sorted(values)[len(values) // 2]:.2f} "
              f"(rounds: {', '.join(f'{x:.2f}' for x in values)})")
    if args.profile:
        calls = pstats.Stats(str(args.profile)).total_calls  # type: ignore[attr-defined]
        print(f"cProfile of one more batch: {args.profile}; Python function calls per document "
              f"{calls / args.batch:.0f} (deterministic, unlike the CPU figures)")


if __name__ == "__main__":
    main()
