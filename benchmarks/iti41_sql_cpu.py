"""CPU time per ITI-41 document of the in-process pipeline: the app of `dmp serve` in this process (Starlette's
TestClient, the same routes and pipeline, consent checker on, a fresh signed VIHF per request), one request at a
time, no event listener on the engine (unlike ``iti41_statements.py``, whose statement counter makes every
statement dispatch events).

    .venv/bin/python benchmarks/iti41_sql_cpu.py [--requests 400] [--rounds 3] [--database sqlite|postgresql]

Printed per round: CPU (user + system, all threads of this process: the client's reply parsing included) per
document, the median of the rounds, and the failures (must be 0). CPU time, not wall-clock rates: on a shared
machine it moves far less with the load of others. To compare two revisions, run this same file from each
checkout in turn (``ROOT`` is this file's checkout), alternating, e.g. with a second worktree of the old commit.

``--compare``: the rounds alternate between ``registry.DirectStatement`` as it is and the same statements run
through SQLAlchemy's ``Connection.execute`` (what the code did before issue 13), in this one process; printed:
the median of each and their difference, and the CPU time the calling threads spent inside the statements' calls
(``time.thread_time`` around each call, the same wrapper in both modes: far less noisy than the whole process).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from _harness import durable_postgres, machine
from iti41_throughput import encode_requests
from nodes import make_node

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient
from sqlalchemy import Connection
from xds_client import parse_reply

from registry import DirectStatement
from server._app import create_app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=400, help="per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--compare", action="store_true", help="alternate rounds with SQLAlchemy's execution")
    args = ap.parse_args()
    direct = {name: getattr(DirectStatement, name) for name in ("rows", "run", "run_many")}
    print(f"ITI-41 CPU per document, in process; {machine()}")
    requests = encode_requests(args.warmup + args.rounds * args.requests)
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(durable_postgres()) if args.database == "postgresql" else None
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dmp-bench-")))
        app = create_app(make_node(tmp / "node", database_url=url))
        per_doc: list[float] = []
        per_mode: dict[str, list[float]] = {"direct": [], "sqlalchemy": []}
        in_statements: dict[str, list[float]] = {"direct": [], "sqlalchemy": []}
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
                mode = "sqlalchemy" if args.compare and n % 2 else "direct"
                for name, method in (_THROUGH_SQLALCHEMY if mode == "sqlalchemy" else direct).items():
                    setattr(DirectStatement, name, _timed(method) if args.compare else method)
                _SPENT[0] = 0.0
                cpu0 = time.process_time()
                for req in batch:
                    failures += send(req)
                per_doc.append(1000 * (time.process_time() - cpu0) / len(batch))
                per_mode[mode].append(per_doc[-1])
                in_statements[mode].append(1000 * _SPENT[0] / len(batch))
                print(f"  round {n + 1}: {per_doc[-1]:.2f} ms CPU/doc" + (
                    f" ({mode}; in the statements' calls {in_statements[mode][-1]:.3f} ms)" if args.compare else ""))
    print(f"database: {args.database}; {args.rounds} x {args.requests} ITI-41 one at a time, {failures} failures; "
          f"median {statistics.median(per_doc):.2f} ms CPU/doc")
    if args.compare and per_mode["sqlalchemy"]:
        d, a = statistics.median(per_mode["direct"]), statistics.median(per_mode["sqlalchemy"])
        print(f"median: DirectStatement {d:.2f}, SQLAlchemy execution {a:.2f} ms CPU/doc; difference {a - d:.2f} ms")
        d, a = statistics.median(in_statements["direct"]), statistics.median(in_statements["sqlalchemy"])
        print(f"CPU of the calling thread inside the statements' calls, median: DirectStatement {d:.3f}, "
              f"SQLAlchemy execution {a:.3f} ms/doc; difference {a - d:.3f} ms")


_SPENT = [0.0]


def _timed(method: Any) -> Any:
    """``method`` adding the CPU time of its thread inside it to ``_SPENT`` (the same wrapper in both modes)."""
    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.thread_time()
        try:
            return method(*args, **kwargs)
        finally:
            _SPENT[0] += time.thread_time() - t0
    return timed


def _rows(self: DirectStatement, conn: Connection, params: Mapping[str, Any] | None = None) -> list[Any]:
    return list(conn.execute(self.statement, dict(params or {})))  # type: ignore[call-overload]


def _run(self: DirectStatement, conn: Connection, params: Mapping[str, Any] | None = None) -> int:
    return int(conn.execute(self.statement, dict(params or {})).rowcount)  # type: ignore[call-overload]


def _run_many(self: DirectStatement, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        conn.execute(self.statement, [dict(r) for r in rows])  # type: ignore[call-overload]


_THROUGH_SQLALCHEMY = {"rows": _rows, "run": _run, "run_many": _run_many}


if __name__ == "__main__":
    main()
