"""CPU per stored query on a small PostgreSQL registry: the figure to compare two versions of the code on a
loaded machine, where registry_scale's latencies move with the other processes' load.

Loads ``--patients`` x 100 DocumentEntries (registry_scale's corpus and bulk load, ``--partitions`` as
``dmp init --partitions``), then runs ``--queries`` random queries of four kinds through
``Registry.stored_query`` (after a tenth as warm-up) and prints, per kind, p50/p99 latency, this process's CPU
and PostgreSQL's CPU per query. To compare two versions, run it from each checkout in turn, alternating:

    .venv/bin/python benchmarks/registry_query_cpu.py [--patients 100] [--partitions 0] [--queries 350]

(the code measured is the one ``benchmarks/`` sits beside: ``_harness`` puts its repository first on sys.path).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import registry_scale as scale  # also puts tests/ and the repository on sys.path (through _harness)
from _registry_data import Corpus

from registry import Registry, Store

KINDS = ("FindDocuments (100 docs)", "FindDocuments ObjectRef", "GetDocuments 10 entryUUIDs", "GetDocuments 1 uniqueId")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=0)
    parser.add_argument("--queries", type=int, default=350)
    args = parser.parse_args()
    corpus = Corpus(per_patient=100)
    print(f"registry_query_cpu: {scale.machine()}", flush=True)
    with tempfile.TemporaryDirectory() as workdir, \
            scale.database("postgresql", Path(workdir)) as (url, _size, server_cpu, analyze):
        store = Store(url)
        store.migrate(partitions=args.partitions)
        registry = Registry(store, clock=lambda: "20240101000000")
        registry.create_patients([scale.patient_id(p) for p in range(args.patients)])
        scale.load(registry, corpus, 0, args.patients, 500, 0, server_cpu)
        analyze(store)
        kinds = scale.query_kinds(corpus, args.patients, random.Random(1))
        warm = args.queries // 10
        for kind in KINDS:
            requests = [kinds[kind]()[0] for _ in range(args.queries + warm)]
            for request in requests[:warm]:
                registry.stored_query(request)
            latencies = []
            cpu0, server0 = time.process_time(), server_cpu()
            for request in requests[warm:]:
                t0 = time.perf_counter()
                registry.stored_query(request)
                latencies.append(time.perf_counter() - t0)
            cpu, server = time.process_time() - cpu0, server_cpu() - server0
            n = len(latencies)
            print(f"{kind:28} p50 {scale.pct(latencies, 50):6.2f} p99 {scale.pct(latencies, 99):6.2f} ms"
                  f"  CPU per query: this process {cpu / n * 1e3:.2f} ms, PostgreSQL {server / n * 1e3:.2f} ms",
                  flush=True)
        store.dispose()


if __name__ == "__main__":
    main()
