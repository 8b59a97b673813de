"""The registry's part of an ITI-41 on PostgreSQL, old way against new way: what registering one one-document
submission costs this process (node CPU), PostgreSQL (its CPU) and the connection (statements, round trips).

Each registration is the registry's transaction of ``register_prepared`` (the checks against the registry, the
rows, who filed it), committed on its own, against a throwaway durable PostgreSQL (fsync on) with
``pg_stat_statements``; the submissions are made (validated, rows built) beforehand, outside the figures.

- ``copy``: the checks' look-ups one statement each (patients, uniqueIds), the rows with one COPY per table and
  the origin with an INSERT (the registry before issue 13's write path);
- ``one``: the look-ups in one statement and the rows and origin in one statement (``registry._pg_rows``).

Rounds alternate the two ways (``--rounds`` x ``--registrations`` each), on a registry that grows in between,
because the machine is shared and its speed drifts; the figures are per registration, per round and their
median. Round trips count each statement once and each COPY twice (its start and its end wait for the server).

    .venv/bin/python benchmarks/pg_write_path.py [--registrations 400] [--rounds 3] [--partitions 0] [--patients 50]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from _harness import durable_postgres_server, machine, postgres_cpu_seconds
from _pg_stats import SETTINGS, PgStats, Snapshot, print_per_document
from _registry_data import patient_id
from xds_factory import Doc, submission_set, submit_objects_request  # tests/support: on sys.path through _harness

from registry import Origin, Registry, RegistryResponse, Store
from registry._checks import Known, check
from registry._submission import Prepared, apply_lifecycle, insert_rows, lock_new_ids, prepare, refuses, write_origin

WAYS = ("copy", "one")
WARM = 20   # registrations per way before measuring: psycopg prepares a statement run 5 times on a connection


def submissions(registry: Registry, patients: list[str], count: int, start: int, now: str) -> list[Prepared]:
    made = []
    for n in range(start, start + count):
        patient = patients[n % len(patients)]
        doc = Doc(b"document %d" % n, f"Document{n}", patient_id=patient)
        sub = registry.read_request(submit_objects_request([doc], ss=submission_set(patient),
                                                             repository_attributes=True))
        assert not isinstance(sub, RegistryResponse), sub
        made.append(prepare(sub, require_repository_attributes=True, now=now))
    return made


def register(store: Store, p: Prepared, now: str, origin: Origin, way: str) -> None:
    """``register_prepared`` in its transaction, the old way (``copy``) or the new (``one``)."""
    one = way == "one"
    assert p.rows is not None
    assert p.claims is not None
    with store.write() as conn:
        lock_new_ids(conn, [o["id"] for o in p.rows.objects])
        findings = p.findings + check(p.claims, Known.load(conn, [p.claims], one_statement=one))
        if refuses(findings):
            raise AssertionError(findings)
        insert_rows(conn, [p.rows], origin if one else None, one_statement=one)
        apply_lifecycle(conn, p.rows, now)
        if not one:
            write_origin(conn, p.rows.submission_set_id, origin)


def statements(before: Snapshot, after: Snapshot) -> tuple[int, int]:
    """(statements, of which COPYs) run between two snapshots."""
    total = copies = 0
    for query, (calls, _, _) in after.statements.items():
        n = calls - before.statements.get(query, (0, 0.0, 0.0))[0]
        total += n
        copies += n if query.lstrip().upper().startswith("COPY") else 0
    return total, copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registrations", type=int, default=400, help="per way and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=0, help="hash partitions of registry_object (0: none)")
    parser.add_argument("--patients", type=int, default=50)
    parser.add_argument("--statements", action="store_true",
                        help="print each way's statements of the last round (pg_stat_statements: calls, plan + exec)")
    args = parser.parse_args()
    print(f"pg_write_path: {machine()}", flush=True)
    print(f"{args.registrations} one-document registrations per way and round, {args.rounds} rounds, "
          f"registry_object {f'in {args.partitions} partitions' if args.partitions else 'not partitioned'}, "
          f"{args.patients} patients; PostgreSQL durable (fsync on)", flush=True)
    now = "20250101120000"
    origin = Origin("899700000001", "10B0152872", by_patient=False)
    with durable_postgres_server(*SETTINGS) as server:
        store = Store(server.url)
        store.migrate(partitions=args.partitions)
        registry = Registry(store)
        patients = [patient_id(n) for n in range(args.patients)]
        registry.create_patients(patients)
        stats = PgStats(server.url)
        made = 0

        def batch(count: int) -> list[Prepared]:
            nonlocal made
            subs = submissions(registry, patients, count, made, now)
            made += count
            return subs

        for way in WAYS:
            for p in batch(WARM):
                register(store, p, now, origin, way)
        figures: dict[str, list[tuple[float, float, float, float, float]]] = {w: [] for w in WAYS}
        print(f"{'round':>5} {'way':>4} {'node CPU ms/reg':>15} {'pg CPU ms/reg':>13} {'statements/reg':>14} "
              f"{'round trips/reg':>15} {'wall ms/reg':>11}", flush=True)
        last: dict[str, tuple[Snapshot, Snapshot]] = {}
        for r in range(1, args.rounds + 1):
            for way in WAYS if r % 2 else reversed(WAYS):
                subs = batch(args.registrations)
                before = stats.snapshot()
                cpu0, pg0, wall0 = time.process_time(), postgres_cpu_seconds(server.data), time.perf_counter()
                for p in subs:
                    register(store, p, now, origin, way)
                cpu, pg = time.process_time() - cpu0, postgres_cpu_seconds(server.data) - pg0
                wall = time.perf_counter() - wall0
                after = stats.snapshot()
                total, copies = statements(before, after)
                if args.statements and r == args.rounds:
                    last[way] = (before, after)
                n = len(subs)
                row = (cpu * 1000 / n, pg * 1000 / n, total / n, (total + copies) / n, wall * 1000 / n)
                figures[way].append(row)
                print(f"{r:>5} {way:>4} {row[0]:>15.3f} {row[1]:>13.3f} {row[2]:>14.2f} {row[3]:>15.2f} "
                      f"{row[4]:>11.2f}", flush=True)
        median: Callable[[str, int], float] = lambda way, i: statistics.median(x[i] for x in figures[way])  # noqa: E731
        for way, (before, after) in last.items():
            print(f"{way}: ", end="")
            print_per_document(before, after, args.registrations)
        for way in WAYS:
            print(f"median {way:>4} {median(way, 0):>15.3f} {median(way, 1):>13.3f} {median(way, 2):>14.2f} "
                  f"{median(way, 3):>15.2f} {median(way, 4):>11.2f}")
        print(f"one vs copy: node CPU {median('one', 0) - median('copy', 0):+.3f} ms/registration, PostgreSQL CPU "
              f"{median('one', 1) - median('copy', 1):+.3f} ms/registration, round trips "
              f"{median('one', 3) - median('copy', 3):+.2f} per registration")
        store.dispose()


if __name__ == "__main__":
    main()
