"""Does the heap order of a patient's rows matter to FindDocuments on PostgreSQL? The bulk load interleaves
patients (``_registry_data.Corpus.submissions``: one patient's 100 entries arrive in ~50 submissions spread over
the whole load), so each patient's rows sit on ~100 different heap pages of ``registry_object`` and of
``document_entry``. This loads ``--patients`` x 100 DocumentEntries (registry_scale's corpus and bulk load),
then, as loaded and again after ``CLUSTER registry_object`` on its patient index (``document_entry`` has no
patient column and stays as loaded), prints:

- the heap pages holding one patient's rows, and ``EXPLAIN (ANALYZE, BUFFERS)`` of the FindDocuments
  LeafClass statement for one patient;
- p50/p99 latency, this process's and PostgreSQL's CPU per query of ``--queries`` random FindDocuments
  (LeafClass and ObjectRef), measured in the process that made the load and again in a fresh one (started
  with ``--url``, measuring only): what the load left in the process (its heap, its objects) is told apart
  from what the database's size does.

    .venv/bin/python benchmarks/registry_heap_order.py [--patients 2500] [--queries 300]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import registry_scale as scale  # also puts tests/ and the repository on sys.path (through _harness)
from _registry_data import Corpus
from sqlalchemy import event

from registry import Registry, Store

KINDS = ("FindDocuments (100 docs)", "FindDocuments ObjectRef")


def explain(registry: Registry, request: object) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the statement that selects the DocumentEntries of ``request``."""
    seen: list[tuple[str, object]] = []

    def capture(_conn, _cur, statement, parameters, _ctx, _many):  # type: ignore[no-untyped-def]
        if "document_entry" in statement:
            seen.append((statement, parameters))

    store = registry.store
    event.listen(store.engine, "before_cursor_execute", capture)
    registry.stored_query(request)  # type: ignore[arg-type]
    event.remove(store.engine, "before_cursor_execute", capture)
    with store.engine.connect() as conn:
        statement, parameters = seen[0]
        rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters).all()  # type: ignore[arg-type]
    return "\n".join("    " + str(r[0]) for r in rows)


def pages(store: Store, patient: str) -> tuple[int, int]:
    """Heap pages of ``registry_object`` and of ``document_entry`` holding ``patient``'s DocumentEntries."""
    with store.engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT count(DISTINCT (ro.ctid::text::point)[0]), count(DISTINCT (de.ctid::text::point)[0]) "
            "FROM registry_object ro JOIN document_entry de ON de.id = ro.id "
            "WHERE ro.patient_key = %(p)s AND ro.kind = 'DE'", {"p": patient}).one()
    return int(row[0]), int(row[1])


def measure(registry: Registry, corpus: Corpus, patients: int, queries: int, server_cpu: object) -> None:
    kinds = scale.query_kinds(corpus, patients, random.Random(3))
    requests = {k: [kinds[k]()[0] for _ in range(queries)] for k in KINDS}
    for k in KINDS:
        for r in requests[k][: queries // 10]:
            registry.stored_query(r)
    for k in KINDS:
        latencies = []
        cpu0, server0 = time.process_time(), server_cpu()  # type: ignore[operator]
        for r in requests[k]:
            t0 = time.perf_counter()
            registry.stored_query(r)
            latencies.append(time.perf_counter() - t0)
        cpu, server = time.process_time() - cpu0, server_cpu() - server0  # type: ignore[operator]
        print(f"  {k:26} p50 {scale.pct(latencies, 50):6.2f} p99 {scale.pct(latencies, 99):6.2f} ms  CPU per "
              f"query: this process {cpu / queries * 1e3:.2f} ms, PostgreSQL {server / queries * 1e3:.2f} ms",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=2500)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--url", help="measure only, on this loaded registry (the fresh process)")
    args = parser.parse_args()
    corpus = Corpus(args.patients, 100)
    if args.url:
        store = Store(args.url)
        server = object.__new__(scale.DurablePostgres)  # the running server of ``--url``, for its CPU figure
        server.data = Path(args.url.split("host=", 1)[1]) / "data"
        measure(Registry(store), corpus, args.patients, args.queries, server.cpu_seconds)
        store.dispose()
        return
    print(f"registry_heap_order: {scale.machine()}", flush=True)
    with tempfile.TemporaryDirectory() as workdir, \
            scale.database("postgresql", Path(workdir)) as (url, _size, server_cpu, analyze):
        store = Store(url)
        store.migrate()
        registry = Registry(store, clock=lambda: "20240101000000")
        registry.create_patients([scale.patient_id(p) for p in range(args.patients)])
        t0 = time.perf_counter()
        scale.load(registry, corpus, 0, args.patients, 500, 0, server_cpu)
        analyze(store)
        print(f"{args.patients * 100:,} entries loaded in {time.perf_counter() - t0:.0f} s", flush=True)
        probe = scale.query_kinds(corpus, args.patients, random.Random(11))["FindDocuments (100 docs)"]
        patient = scale.patient_id(args.patients // 2)
        for order in ("as loaded", "clustered by patient"):
            if order != "as loaded":
                with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.exec_driver_sql("CLUSTER registry_object USING ix_object_patient_kind_status")
                analyze(store)
            ro_pages, de_pages = pages(store, patient)
            print(f"{order}: one patient's 100 DocumentEntries on {ro_pages} heap pages of registry_object, "
                  f"{de_pages} of document_entry", flush=True)
            print(explain(registry, probe()[0]), flush=True)
            print(" in the process that made the load:", flush=True)
            measure(registry, corpus, args.patients, args.queries, server_cpu)
            print(" in a fresh process:", flush=True)
            subprocess.run([sys.executable, __file__, "--url", url, "--patients", str(args.patients),
                            "--queries", str(args.queries)],
                           check=True)
        store.dispose()


if __name__ == "__main__":
    main()
