"""What the consent checker costs: ITI-41 documents/s and ITI-18 FindDocuments latency with the DMP rules
applied (the default `dmp serve`) and without them (`dmp serve --no-consent`), on the same machine, the same
requests (each with its own freshly signed VIHF, verified in both cases), alternating the two nodes by round
so that drift of the machine falls on both.

    .venv/bin/python benchmarks/consent_overhead.py [--requests 600] [--queries 300] [--clients 1,8] [--rounds 2]

FindDocuments asks for a second patient's Approved documents as LeafClass: ``--documents`` (100) entries,
loaded first (the ITI-41 runs file for the first patient).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from _harness import RunningNode, cpu_seconds, machine, node_in
from iti41_throughput import Request, encode_requests, percentile, run
from xds_client import ITI18, adhoc_query, envelope, parse_reply
from xds_factory import OTHER_PATIENT

FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"


@dataclass
class Figures:
    docs_per_s: dict[int, list[float]] = field(default_factory=dict)       # clients -> one value per round
    iti41_cpu_ms: dict[int, list[float]] = field(default_factory=dict)
    query_ms: list[float] = field(default_factory=list)                    # every FindDocuments latency
    query_cpu_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def encode_queries(count: int) -> list[Request]:
    body = adhoc_query(FIND_DOCUMENTS, [("$XDSDocumentEntryPatientId", [f"'{OTHER_PATIENT}'"]),
                                        ("$XDSDocumentEntryStatus", [f"('{APPROVED}')"])])
    return [Request(f'application/soap+xml; charset=UTF-8; action="{ITI18}"', envelope(ITI18, body))
            for _ in range(count)]


def run_queries(node: RunningNode, queries: list[Request], figures: Figures, expected: int) -> None:
    pid = node.process.pid
    cpu0 = cpu_seconds(pid)
    with httpx.Client(timeout=60) as http:
        for q in queries:
            t0 = time.perf_counter()
            r = http.post(node.registry, content=q.body, headers={"Content-Type": q.content_type})
            figures.query_ms.append((time.perf_counter() - t0) * 1000)
            reply = parse_reply(r.status_code, r.headers.get("content-type", ""), r.content)
            found = len(reply.body.findall(".//{*}ExtrinsicObject")) if r.status_code == 200 else -1
            if r.status_code != 200 or reply.status != "Success" or found != expected:
                figures.failures.append(f"FindDocuments: HTTP {r.status_code}, {found} entries (expected {expected})")
    figures.query_cpu_ms.append(1000 * (cpu_seconds(pid) - cpu0) / len(queries))


@contextlib.contextmanager
def nodes(tmp: Path) -> Iterator[dict[str, RunningNode]]:
    with node_in(tmp / "on") as on, node_in(tmp / "off", "--no-consent") as off:
        yield {"consent on": on, "consent off": off}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=600, help="ITI-41 requests per node, run and round")
    ap.add_argument("--queries", type=int, default=300, help="FindDocuments per node and round")
    ap.add_argument("--documents", type=int, default=100, help="entries of the queried patient")
    ap.add_argument("--clients", default="1,8", help="ITI-41 concurrency levels")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    print(f"consent checker overhead; {machine()}")
    figures = {"consent on": Figures(), "consent off": Figures()}
    with tempfile.TemporaryDirectory(prefix="dmp-bench-") as tmp, nodes(Path(tmp)) as running:
        spool = Path(tmp) / "spool"
        spool.mkdir()
        for name, node in running.items():                   # the queried patient's documents, and a warm-up
            warm = run(node, encode_requests(args.documents, OTHER_PATIENT), 2, 300, spool)
            figures[name].failures += warm.failures
        for _ in range(args.rounds):
            for name, node in running.items():
                f = figures[name]
                for clients in levels:
                    res = run(node, encode_requests(args.requests), clients, 600, spool)
                    f.failures += res.failures
                    f.docs_per_s.setdefault(clients, []).append(len(res.latencies) / res.elapsed)
                    f.iti41_cpu_ms.setdefault(clients, []).append(1000 * res.server_cpu / max(1, res.sent))
                run_queries(node, encode_queries(args.queries), f, args.documents)
    print(f"{'node':<12} " + " ".join(f"{f'ITI-41 {c} cl. docs/s':>20} {'srv CPU ms/doc':>15}" for c in levels)
          + f" {'FindDocs p50 ms':>16} {'p99 ms':>8} {'srv CPU ms/query':>17} {'failures':>9}")
    for name, f in figures.items():
        q = sorted(f.query_ms)
        cols = " ".join(f"{statistics.mean(f.docs_per_s[c]):>20.1f} {statistics.mean(f.iti41_cpu_ms[c]):>15.2f}"
                        for c in levels)
        print(f"{name:<12} {cols} {percentile(q, 50):>16.2f} {percentile(q, 99):>8.2f} "
              f"{statistics.mean(f.query_cpu_ms):>17.2f} {len(f.failures):>9}")
        for problem in f.failures[:3]:
            print(f"  failure: {problem[:300]}")
    on, off = figures["consent on"], figures["consent off"]
    for c in levels:
        ratio = statistics.mean(on.docs_per_s[c]) / statistics.mean(off.docs_per_s[c])
        print(f"ITI-41 {c} client(s): consent on = {100 * ratio:.0f}% of consent off")
    q_on, q_off = sorted(on.query_ms), sorted(off.query_ms)
    print(f"FindDocuments p50: {percentile(q_on, 50) - percentile(q_off, 50):+.2f} ms with the consent checker; "
          f"p99 {percentile(q_on, 99) - percentile(q_off, 99):+.2f} ms")


if __name__ == "__main__":
    main()
