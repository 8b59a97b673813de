"""SQL statements and commits per ITI-41 document: the app of `dmp serve` run in this process (Starlette's
TestClient, the same routes and pipeline), one request at a time, each with a fresh signed VIHF, every statement
the node's engine executes counted by its first word (SQLAlchemy ``before_cursor_execute``; PostgreSQL's COPY
goes around it and is counted apart by the registry, so it is not in these figures).

    .venv/bin/python benchmarks/iti41_statements.py [--requests 200] [--database sqlite|postgresql]

Concurrency is left out on purpose: these are the statements of one submission alone. Under concurrent load
group commit (``registry.Store.grouped_write``) shares BEGIN/COMMIT between requests; count the fsyncs there
with ``strace -f -c -e trace=fsync,fdatasync -p PID`` on the server of ``iti41_throughput.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _harness import durable_postgres, machine
from iti41_throughput import encode_requests
from nodes import make_node
from sqlalchemy import event
from starlette.testclient import TestClient
from xds_client import parse_reply

from server._app import create_app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--list", action="store_true", help="print each distinct statement (150 characters) per document")
    args = ap.parse_args()
    print(f"ITI-41 statements; {machine()}")
    requests = encode_requests(args.warmup + args.requests)
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(durable_postgres()) if args.database == "postgresql" else None
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dmp-bench-")))
        cfg = make_node(tmp / "node", database_url=url)
        app = create_app(cfg)
        store = app.state.node.store
        statements: Counter[str] = Counter()
        texts: Counter[str] = Counter()
        counting = [False]

        def _count(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
            if counting[0]:
                statements[statement.split(None, 1)[0].upper()] += 1
                texts[" ".join(statement.split())[:150]] += 1

        def _commit(_conn: Any) -> None:
            if counting[0]:
                statements["(commit)"] += 1

        for engine in {store.engine, store.keyed_engine}:   # PostgreSQL: the writes have an engine of their own
            event.listen(engine, "before_cursor_execute", _count)
            event.listen(engine, "commit", _commit)

        with TestClient(app) as http:
            failures = 0
            cpu0 = wall0 = 0.0
            for n, req in enumerate(requests):
                if n == args.warmup:
                    counting[0] = True
                    cpu0, wall0 = time.process_time(), time.perf_counter()
                r = http.post("/xds/repository", content=req.body, headers={"Content-Type": req.content_type})
                reply = parse_reply(r.status_code, r.headers.get("content-type", ""), r.content, tmp)
                if reply.mime is not None:
                    reply.mime.discard()
                failures += reply.status != "Success"
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        per = {k: v / args.requests for k, v in sorted(statements.items())}
        print(f"database: {args.database}; {args.requests} ITI-41 requests one at a time, {failures} failures")
        print("per document: " + ", ".join(f"{k} {v:.2f}" for k, v in per.items())
              + f"; total statements {sum(v for k, v in per.items() if k != '(commit)'):.2f}")
        if args.list:
            for text, count in sorted(texts.items(), key=lambda kv: -kv[1]):
                print(f"  {count / args.requests:5.2f}  {text}")
        print(f"CPU of this process (client + server) {1000 * cpu / args.requests:.2f} ms/doc, "
              f"{1000 * wall / args.requests:.2f} ms/doc wall")


if __name__ == "__main__":
    main()
