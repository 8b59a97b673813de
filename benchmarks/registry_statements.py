"""Statement by statement: what one stored query costs PostgreSQL, on an unpartitioned and on a partitioned
registry side by side.

Loads ``--patients`` x 100 DocumentEntries (registry_scale's corpus and bulk load) into two databases of one
PostgreSQL server, one unpartitioned and one with ``registry_object`` in ``--partitions`` hash partitions by
patient, then runs ``--queries`` random queries of each kind through ``Registry.stored_query`` on each (after
20 as warm-up, so that psycopg has prepared the statements it prepares: those run 5 times on a connection).
The server runs with ``pg_stat_statements`` (``track_planning`` on). Printed per kind and layout: PostgreSQL's
CPU and this process's CPU per query, then each statement the query ran, with the number run per query, its
mean planning time (and how many times it was planned: a prepared statement on a generic plan is planned
once), its mean execution time and the shared buffers it touched.

    .venv/bin/python benchmarks/registry_statements.py [--patients 200] [--partitions 16] [--queries 300]

(the code measured is the one ``benchmarks/`` sits beside, as for registry_query_cpu.py). The server is a
throwaway one with fsync off (the queries do not write) and shared_buffers=1GB; it is removed at the end.
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

KINDS = ("FindDocuments (100 docs)", "GetDocuments 10 entryUUIDs", "GetDocuments 1 uniqueId")
WARM = 20


class StatementsPostgres(scale.DurablePostgres):
    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start", "-o",
                  f"-c listen_addresses='' -k {self.root} -c shared_buffers=1GB -c fsync=off "
                  "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    corpus = Corpus(per_patient=100)
    scale.DurablePostgres = StatementsPostgres  # type: ignore[misc]  # the server databases() starts
    print(f"registry_statements: {scale.machine()}", flush=True)
    with tempfile.TemporaryDirectory() as workdir, scale.databases("postgresql", Path(workdir)) as dbs:
        registries = {}
        for name, partitions in (("unpartitioned", 0), (f"{args.partitions} partitions", args.partitions)):
            store = Store(dbs.create(f"layout_{partitions}"))
            store.migrate(partitions=partitions)
            registry = Registry(store)
            registry.create_patients(scale.patient_id(p) for p in range(args.patients))
            scale.load(registry, corpus, 0, args.patients, 500, 0, dbs.server_cpu)
            dbs.after_load(store)
            with store.engine.connect() as conn:
                conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                conn.commit()
            registries[name] = registry
        for kind in KINDS:
            for name, registry in registries.items():
                make = scale.query_kinds(corpus, args.patients, random.Random(5))[kind]
                requests = [make()[0] for _ in range(args.queries + WARM)]
                for request in requests[:WARM]:
                    registry.stored_query(request)
                with registry.store.engine.connect() as conn:
                    conn.exec_driver_sql("SELECT pg_stat_statements_reset()")
                    conn.commit()
                server0, own0 = dbs.server_cpu(), time.process_time()
                for request in requests[WARM:]:
                    registry.stored_query(request)
                server, own = dbs.server_cpu() - server0, time.process_time() - own0
                with registry.store.engine.connect() as conn:
                    rows = conn.exec_driver_sql(
                        "SELECT calls, plans, total_plan_time, total_exec_time, shared_blks_hit, query "
                        "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
                        "WHERE datname = current_database()) AND query NOT LIKE '%%pg_stat_statements%%' "
                        "ORDER BY total_exec_time DESC").all()
                n = args.queries
                print(f"{kind} on {name}: PostgreSQL CPU {server / n * 1e3:.2f} ms, this process "
                      f"{own / n * 1e3:.2f} ms per query", flush=True)
                for calls, plans, plan_ms, exec_ms, hits, query in rows:
                    print(f"  {calls / n:4.1f}/query  planned {plans:4}x {plan_ms / max(plans, 1):.3f} ms  "
                          f"exec {exec_ms / calls:.3f} ms  {hits / calls:4.0f} buffers  "
                          f"{' '.join(query.split())[:90]}", flush=True)
        for registry in registries.values():
            registry.store.dispose()


if __name__ == "__main__":
    main()
