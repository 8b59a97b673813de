"""Registry at scale: load DocumentEntries through the bulk path (``Registry.bulk_register``) into one database
per stage, then measure stored-query latency through the Registry API on every stage side by side.

Default: 10,000 patients x 100 DocumentEntries = 1,000,000 (in ITI-42 submissions of 1-4 entries, 2.0 on
average, each with its SubmissionSet and HasMember associations; see ``_registry_data``), with a first stage of
100,000 (the first 1,000 patients). Each stage is a database of its own (SQLite: a file; PostgreSQL: a
``CREATE DATABASE`` in the one server of the backend), loaded from zero to its size, then VACUUM ANALYZE and a
CHECKPOINT; only then are the queries measured, **interleaved**: each query of a kind runs on every stage in
turn, first stage to last, then last to first, and so on. Why: this VM's CPU speed drifts by +-25 % over
minutes, and measuring the first stage, loading 900,000 more entries (~10 min) and then measuring the last
stage put the two stages' figures under different machine speeds (every kind of query, even a single uniqueId
look-up, came out 1.5-3x slower at one stage in some runs). Interleaved, a slow moment falls on all stages
alike, so the growth from the first stage to the last is the registry's, not the machine's. A fixed
pure-Python loop (the yardstick) is timed before, between and after the kinds: a run made at a slow moment
shows there.

Per backend and stage it prints the load rate of that stage's load (DocumentEntries/s from an empty database;
the time spent generating the submissions is measured and left out), the CPU used per entry, the database size,
and the p50/p99 latency of 500 random queries of each kind:

- FindDocuments, one patient, status Approved, LeafClass (100 documents);
- the same as ObjectRef: the SQL without the rendering of the stored XML;
- FindDocuments, one patient, with classCode + creationTime range, and with an eventCodeList (a multi-valued
  attribute, in ``object_value``): the filters apply to the patient's rows, found by the patient index;
- GetDocuments by 10 entryUUIDs of one patient, LeafClass;
- GetDocuments by 1 uniqueId, LeafClass.

A query is an ``AdhocQueryRequest`` element (as ``tests/support/xds_client.adhoc_query`` builds it) handed to
``Registry.stored_query``, and its answer serialized to bytes; the HTTP overhead is measured apart, on a smaller
set and on the last stage's database, with ``--http``.

``postgresql-partitioned`` is PostgreSQL with ``registry_object`` hash-partitioned by patient into
``--partitions`` partitions (migration 0008_scale, ``dmp init --partitions N``). On PostgreSQL each stage also
prints the bytes per million entries of every table (rows with TOAST, indexes, and the stored XML's share).

SQLite runs as a node does (WAL, synchronous=FULL). PostgreSQL is a throwaway server (Debian's binaries, see
``tests/support/pg.py``) started with durable settings (fsync, synchronous_commit, full_page_writes on) and
shared_buffers=6GB (``--pg-shared-buffers``: a quarter of this machine's RAM, the usual sizing; this VM hands
idle page cache back to its host, buff/cache stays near 1 GiB, so PostgreSQL's own buffers are the only cache
that holds the registry: with 1GB, FindDocuments at 1M entries read most rows from disk) and
max_wal_size=4GB. The buffers must hold **every stage** at once, since all are measured together: 100k + 1M
entries are ~3.4 GB (3.06 GiB per million), so 5GB is enough; each ``--stages`` value adds a database of that
size (and its load time: each stage is loaded from zero). VACUUM ANALYZE and a CHECKPOINT run after each load
(as after an import; autovacuum and the checkpointer would otherwise work through the load's pages during the
measurement). Servers are ended and every file removed at the end.

    .venv/bin/python benchmarks/registry_scale.py [--patients 10000] [--per-patient 100] [--first 1000]
        [--stages 3000,6000] [--backends sqlite,postgresql,postgresql-partitioned] [--partitions 16]
        [--queries 500] [--batch 500] [--workers 0] [--explain] [--http]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from _harness import (  # also puts tests/ and tests/support/ on sys.path
    machine,
    node_in,
    postgres_cpu_seconds,
    yardstick,
)
from _registry_data import Corpus, patient_id
from lxml import etree
from pg import PostgresServer
from xds_client import ITI18, adhoc_query, envelope

from registry import Registry, RimSubmission, Store
from soap_wsdl import ns, parse_xml

PARTITIONED = "postgresql-partitioned"  # PostgreSQL, registry_object hash-partitioned by patient (--partitions)
TARGET_LOAD = 5000  # DocumentEntries/s
TARGET_FIND_P99_MS = 10  # FindDocuments, one patient, 100 documents, LeafClass, PostgreSQL, at 1M entries
TARGET_FIND_P50_GROWTH = 0.20  # from the first stage (100k) to the last (1M)
TARGET_GIB_PER_MILLION = 3.5
FIND = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
GET = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"


class DurablePostgres(PostgresServer):
    """The test server, started with production durability (the tests' one turns fsync off)."""

    shared_buffers = "6GB"

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start", "-o",
                  f"-c listen_addresses='' -k {self.root} -c shared_buffers={self.shared_buffers} -c max_wal_size=4GB "
                  "-c fsync=on -c synchronous_commit=on -c full_page_writes=on")

    def cpu_seconds(self) -> float:
        """CPU used so far by every process of this server (postmaster, backends, checkpointer, ...)."""
        return postgres_cpu_seconds(self.data)


@dataclass
class Load:
    entries: int = 0
    seconds: float = 0.0  # bulk_register's wall time, generation excluded
    generation: float = 0.0
    client_cpu: float = 0.0  # this process and its workers, generation excluded
    server_cpu: float = 0.0  # PostgreSQL's processes
    refused: int = 0


@dataclass
class Stage:
    entries: int  # in the registry
    load: Load
    size_bytes: int
    tables: list[tuple[str, int, int, int]] = field(default_factory=list)  # (table, heap+TOAST, indexes, xml)
    latencies: dict[str, list[float]] = field(default_factory=dict)  # query kind -> seconds
    plans: dict[str, str] = field(default_factory=dict)


@dataclass
class Backend:
    name: str
    stages: list[Stage] = field(default_factory=list)
    http: dict[str, list[float]] = field(default_factory=dict)
    yardstick: list[float] = field(default_factory=list)  # seconds of yardstick() during the measurement


# --- loading -------------------------------------------------------------------------------------------


class Timed:
    """Wraps the submission generator and adds up the time (and CPU) spent inside it."""

    def __init__(self, subs: Iterable[RimSubmission]) -> None:
        self._it, self.seconds, self.cpu, self.entries = iter(subs), 0.0, 0.0, 0

    def __iter__(self) -> Iterator[RimSubmission]:
        return self

    def __next__(self) -> RimSubmission:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            sub = next(self._it)
            self.entries += sum(1 for o in sub.objects if o.kind.value == "ExtrinsicObject")
            return sub
        finally:
            self.seconds += time.perf_counter() - t0
            self.cpu += time.process_time() - c0


def load(registry: Registry, corpus: Corpus, first: int, last: int, batch: int, workers: int,
         server_cpu: Callable[[], float]) -> Load:
    subs = Timed(corpus.submissions(first, last))
    t0, c0, s0 = time.perf_counter(), _own_cpu(), server_cpu()
    report = registry.bulk_register(subs, batch=batch, workers=workers)
    wall, cpu, server = time.perf_counter() - t0, _own_cpu() - c0, server_cpu() - s0
    if report.refused or report.stopped:
        print(f"  !! {len(report.refused)} refused, first: {report.refused[0] if report.refused else None}; "
              f"stopped: {report.stopped}", flush=True)
    return Load(report.document_entries, wall - subs.seconds, subs.seconds, cpu - subs.cpu, server,
                len(report.refused))


def _own_cpu() -> float:
    """CPU seconds of this process and of its ended children (bulk_register's worker processes end with it)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


# --- queries ---------------------------------------------------------------------------------------------


def query_kinds(corpus: Corpus, patients: int, rng: random.Random) -> dict[str, Callable[[], tuple[etree._Element,
                                                                                                   int]]]:
    """Query kind -> a maker of (request, expected number of ExtrinsicObjects) on a random patient."""
    def quoted(values: list[str]) -> str:
        return "(" + ",".join(f"'{v}'" for v in values) + ")"

    def find() -> tuple[etree._Element, int]:
        p = rng.randrange(patients)
        return adhoc_query(FIND, [("$XDSDocumentEntryPatientId", [f"'{patient_id(p)}'"]),
                                  ("$XDSDocumentEntryStatus", [quoted([APPROVED])])]), corpus.per_patient

    def find_filtered() -> tuple[etree._Element, int]:
        p = rng.randrange(patients)
        return adhoc_query(FIND, [("$XDSDocumentEntryPatientId", [f"'{patient_id(p)}'"]),
                                  ("$XDSDocumentEntryStatus", [quoted([APPROVED])]),
                                  ("$XDSDocumentEntryClassCode", [quoted(["10^^1.2.250.1.213.1.1.4.1",
                                                                          "14^^1.2.250.1.213.1.1.4.1"])]),
                                  ("$XDSDocumentEntryCreationTimeFrom", ["2016"]),
                                  ("$XDSDocumentEntryCreationTimeTo", ["2022"])]), -1

    def find_event() -> tuple[etree._Element, int]:
        p = rng.randrange(patients)
        return adhoc_query(FIND, [("$XDSDocumentEntryPatientId", [f"'{patient_id(p)}'"]),
                                  ("$XDSDocumentEntryStatus", [quoted([APPROVED])]),
                                  ("$XDSDocumentEntryEventCodeList", [quoted(["E001^^1.2.250.1.213.2.12",
                                                                              "E002^^1.2.250.1.213.2.12"])])]), -1

    def find_refs() -> tuple[etree._Element, int]:
        request, expected = find()
        request.find(f"{{{ns.QUERY}}}ResponseOption").set("returnType", "ObjectRef")
        return request, expected

    def by_uuid() -> tuple[etree._Element, int]:
        p = rng.randrange(patients)
        docs = rng.sample(range(corpus.per_patient), min(10, corpus.per_patient))
        return adhoc_query(GET, [("$XDSDocumentEntryEntryUUID", [quoted([corpus.entry_uuid(p, d) for d in docs])])]
                           ), len(docs)

    def by_unique_id() -> tuple[etree._Element, int]:
        p, d = rng.randrange(patients), rng.randrange(corpus.per_patient)
        return adhoc_query(GET, [("$XDSDocumentEntryUniqueId", [quoted([corpus.unique_id(p, d)])])]), 1

    return {"FindDocuments (100 docs)": find, "FindDocuments ObjectRef": find_refs,
            "FindDocuments + class/time": find_filtered, "FindDocuments + eventCode": find_event,
            "GetDocuments 10 entryUUIDs": by_uuid, "GetDocuments 1 uniqueId": by_unique_id}


def measure(registries: list[Registry], makers: list[Callable[[], tuple[etree._Element, int]]], count: int,
            kind: str) -> list[list[float]]:
    """Latencies of ``count`` queries of one kind on each registry (after a tenth more as warm-up), the
    registries taken in turn for each query, in alternating order (first to last, then last to first), so that
    a change in the machine's speed falls on every stage alike."""
    requests = [[make() for _ in range(count + count // 10)] for make in makers]
    out: list[list[float]] = [[] for _ in registries]
    order = list(range(len(registries)))
    for i in range(count + count // 10):
        for r in order if i % 2 == 0 else order[::-1]:
            req, expected = requests[r][i]
            t0 = time.perf_counter()
            body = registries[r].stored_query(req).data  # the bytes the server sends (in its SOAP envelope)
            elapsed = time.perf_counter() - t0
            check_answer(kind, req, expected, body)
            if i >= count // 10:  # the first tenth warms the caches
                out[r].append(elapsed)
    return out


def check_answer(kind: str, request: etree._Element, expected: int, body: bytes) -> None:
    answer = parse_xml(body)
    returned = "ObjectRef" if request.find(f"{{{ns.QUERY}}}ResponseOption").get("returnType") == "ObjectRef" \
        else "ExtrinsicObject"
    found = sum(1 for _ in answer.iter(f"{{{ns.RIM}}}{returned}"))
    if not answer.get("status", "").endswith(":Success") or (expected >= 0 and found != expected):
        raise RuntimeError(f"{kind}: {found} documents instead of {expected}: {body[:600]!r}")


def measure_http(url: str, kinds: dict[str, Callable[[], tuple[etree._Element, int]]], count: int,
                 data_dir: Path) -> dict[str, list[float]]:
    """The same queries through a `dmp serve` process on the same database (ITI-18 over HTTP, SOAP 1.2)."""
    out: dict[str, list[float]] = {}
    # VIHF verification off: this measures the query path, not the security layer (README.md, Security).
    with node_in(data_dir, database_url=url, require_vihf=False) as node, httpx.Client(timeout=60) as http:
        for kind, make in kinds.items():
            bodies = [envelope(ITI18, make()[0]) for _ in range(count + count // 10)]
            latencies = []
            for i, body in enumerate(bodies):
                t0 = time.perf_counter()
                r = http.post(node.registry, content=body, headers={
                    "Content-Type": f'application/soap+xml; charset=UTF-8; action="{ITI18}"'})
                elapsed = time.perf_counter() - t0
                if r.status_code != 200 or b"ResponseStatusType:Success" not in r.content:
                    raise RuntimeError(f"HTTP {kind}: {r.status_code} {r.content[:400]!r}")
                if i >= count // 10:
                    latencies.append(elapsed)
            out[kind] = latencies
    return out


# --- plans -----------------------------------------------------------------------------------------------


def plans(registry: Registry, kinds: dict[str, Callable[[], tuple[etree._Element, int]]]) -> dict[str, str]:
    """EXPLAIN (PostgreSQL: ANALYZE) of every SELECT one query of each kind runs."""
    from sqlalchemy import event

    store, out = registry.store, {}
    for kind, make in kinds.items():
        statements: list[tuple[str, object]] = []

        def capture(_conn, _cur, statement, parameters, _ctx, _many, seen=statements):  # type: ignore[no-untyped-def]
            if statement.lstrip().upper().startswith("SELECT"):
                seen.append((statement, parameters))

        event.listen(store.engine, "before_cursor_execute", capture)
        registry.stored_query(make()[0])
        event.remove(store.engine, "before_cursor_execute", capture)
        lines = []
        with store.engine.connect() as conn:
            for statement, parameters in statements:
                prefix = "EXPLAIN QUERY PLAN " if store.is_sqlite else "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "
                rows = conn.exec_driver_sql(prefix + statement, parameters).all()  # type: ignore[arg-type]
                text = "\n".join("    " + (str(r[-1]) if store.is_sqlite else str(r[0]))[:200] for r in rows)
                lines.append("  " + " ".join(statement.split())[:160] + "\n" + text)
        out[kind] = "\n".join(lines)
    return out


# --- one backend -----------------------------------------------------------------------------------------


@dataclass
class Databases:
    """Where one backend's stages go: an empty database of its own for each stage, made by :meth:`create`
    (SQLite: a file; PostgreSQL: ``CREATE DATABASE`` in one server, so that all stages share its
    shared_buffers and are measured side by side)."""

    create: Callable[[str], str]  # stage name -> SQLAlchemy URL of a new empty database
    size: Callable[[str], int]  # stage name -> bytes of its database
    server_cpu: Callable[[], float]  # CPU seconds of the server's processes so far (0 for SQLite)
    after_load: Callable[[Store], None]  # what an operator runs after an import


@contextlib.contextmanager
def databases(backend: str, workdir: Path) -> Iterator[Databases]:
    """The databases of ``backend`` under ``workdir`` (PostgreSQL: one throwaway server); all removed at the end."""
    if backend == "sqlite":
        def sqlite_size(name: str) -> int:
            return sum(p.stat().st_size for p in workdir.glob(f"{name}.db*"))

        yield Databases(lambda name: f"sqlite:///{workdir / name}.db", sqlite_size, lambda: 0.0, lambda store: None)
        return
    if backend not in ("postgresql", PARTITIONED):
        raise ValueError(f"unknown backend {backend!r}: sqlite, postgresql or {PARTITIONED}")
    server = DurablePostgres()
    try:
        server.start()

        def admin() -> psycopg.Connection[tuple[Any, ...]]:
            return psycopg.connect(f"host={server.root} user=app dbname=postgres", autocommit=True)

        def create(name: str) -> str:
            if name != "postgres":
                with admin() as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
            return server.url.replace("/postgres?", f"/{name}?")

        def pg_size(name: str) -> int:
            with admin() as conn:
                row = conn.execute("SELECT pg_database_size(%s)", (name,)).fetchone()
                return int(row[0]) if row else 0

        def analyze(store: Store) -> None:
            # What an operator runs after an import; otherwise autovacuum does it during the measurement (it
            # reads the whole of a freshly loaded table: minutes of I/O and CPU at 1M entries).
            # Then a checkpoint: the load leaves up to max_wal_size of dirty pages that the checkpointer would
            # otherwise flush (and fsync) during the measurement.
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
                conn.exec_driver_sql("CHECKPOINT")

        yield Databases(create, pg_size, server.cpu_seconds, analyze)
    finally:
        server.remove()


@contextlib.contextmanager
def database(backend: str, workdir: Path) -> Iterator[tuple[str, Callable[[], int], Callable[[], float],
                                                           Callable[[Store], None]]]:
    """(url, size in bytes, server CPU seconds, after-load step) of one fresh database; removed at the end."""
    with databases(backend, workdir) as dbs:
        name = "registry" if backend == "sqlite" else "postgres"
        yield dbs.create(name), lambda: dbs.size(name), dbs.server_cpu, dbs.after_load


@dataclass
class Loaded:
    """One stage's registry, loaded and ready to measure."""

    stage: Stage
    registry: Registry
    patients: int


def load_stage(backend: str, args: argparse.Namespace, corpus: Corpus, dbs: Databases, patients: int) -> Loaded:
    """A new database holding patients 0 .. ``patients`` - 1, loaded from zero, analysed and checkpointed."""
    name = f"stage_{patients}"
    store = Store(dbs.create(name))
    store.migrate(partitions=args.partitions if backend == PARTITIONED else 0)
    if backend == PARTITIONED:
        print(f"[{backend}] {name}: registry_object in {store.partitions()} hash partitions by patient", flush=True)
    registry = Registry(store)
    registry.create_patients(patient_id(p) for p in range(patients))
    print(f"[{backend}] {name}: loading patients 0..{patients - 1} ...", flush=True)
    done = load(registry, corpus, 0, patients, args.batch, args.workers, dbs.server_cpu)
    dbs.after_load(store)
    stage = Stage(patients * corpus.per_patient, done, dbs.size(name))
    print(f"[{backend}] {stage.entries:,} entries: {done.entries / done.seconds:,.0f} entries/s, "
          f"{stage.size_bytes / 2**30:.2f} GiB", flush=True)
    if not store.is_sqlite:
        stage.tables = table_sizes(store)
        print_table_sizes(backend, stage)
    return Loaded(stage, registry, patients)


def run_backend(backend: str, args: argparse.Namespace, corpus: Corpus) -> Backend:
    result = Backend(backend)
    workdir = Path(tempfile.mkdtemp(prefix="regscale-", dir=args.dir))
    try:
        with databases(backend, workdir) as dbs:
            sizes = {min(args.first, args.patients), args.patients}
            sizes |= {min(int(n), args.patients) for n in args.stages.split(",") if n}
            loaded = [load_stage(backend, args, corpus, dbs, n) for n in sorted(sizes)]
            result.stages = [st.stage for st in loaded]
            rng = random.Random(7)
            kinds = [query_kinds(corpus, st.patients, rng) for st in loaded]
            print(f"[{backend}] measuring the {len(loaded)} stages interleaved, load average "
                  f"{os.getloadavg()[0]:.2f}", flush=True)
            result.yardstick.append(yardstick())
            for kind in kinds[0]:
                latencies = measure([st.registry for st in loaded], [k[kind] for k in kinds], args.queries, kind)
                for st, lat in zip(result.stages, latencies, strict=True):
                    st.latencies[kind] = lat
                print(f"[{backend}]   {kind:28} " + "  ".join(
                    f"{st.entries:,}: p50 {pct(lat, 50):6.2f} p99 {pct(lat, 99):6.2f} ms"
                    for st, lat in zip(result.stages, latencies, strict=True)), flush=True)
                result.yardstick.append(yardstick())
            print(f"[{backend}] yardstick (a fixed pure-Python loop) before, between and after the kinds: "
                  + " ".join(f"{y:.3f}" for y in result.yardstick) + " s", flush=True)
            if args.explain:
                for one, stage_kinds in zip(loaded, kinds, strict=True):
                    one.stage.plans = plans(one.registry, stage_kinds)
                    for kind, plan in one.stage.plans.items():
                        print(f"[{backend}] {one.stage.entries:,} entries, plan of {kind}:\n{plan}", flush=True)
            for one in loaded:
                one.registry.store.dispose()
            if args.http:
                last = loaded[-1]
                try:
                    result.http = measure_http(last.registry.store.url, query_kinds(corpus, last.patients, rng),
                                               args.http_queries, workdir / "node")
                except Exception as failed:  # a long run must still print what it measured
                    print(f"[{backend}] HTTP measurement failed: {failed}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def table_sizes(store: Store) -> list[tuple[str, int, int, int]]:
    """(table, bytes of its rows with TOAST, bytes of its indexes, bytes of its stored XML as stored) of every
    registry table; a partitioned table adds up its partitions."""
    tables = ("registry_object", "document_entry", "submission_set", "folder", "association", "object_value",
              "patient", "dossier", "submission_origin")
    out = []
    with store.engine.connect() as conn:
        for table in tables:
            row = conn.exec_driver_sql(
                "SELECT coalesce(sum(pg_table_size(r)), 0), coalesce(sum(pg_indexes_size(r)), 0) FROM "
                "(SELECT %(t)s::regclass AS r UNION ALL SELECT inhrelid::regclass FROM pg_inherits "
                "WHERE inhparent = %(t)s::regclass) AS parts", {"t": table}).one()
            xml = conn.exec_driver_sql("SELECT coalesce(sum(pg_column_size(xml)), 0) FROM registry_object"
                                       ).scalar() if table == "registry_object" else 0
            out.append((table, int(row[0]), int(row[1]), int(xml or 0)))
    return out


def print_table_sizes(backend: str, stage: Stage) -> None:
    per = 1e6 / stage.entries / 2**30
    for table, rows, indexes, xml in stage.tables:
        print(f"[{backend}]   {table:18} rows {rows * per:6.3f} GiB/M  indexes {indexes * per:6.3f} GiB/M"
              + (f"  (stored XML {xml * per:.3f} GiB/M)" if xml else ""), flush=True)


def pct(seconds: list[float], p: float) -> float:
    """Percentile in milliseconds (nearest rank)."""
    s = sorted(seconds)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))] * 1000 if s else float("nan")


def report(results: list[Backend], args: argparse.Namespace) -> None:
    print(f"\nregistry_scale: {args.patients:,} patients x {args.per_patient} entries, batch {args.batch}, "
          f"workers {args.workers}; {machine()}")
    print(f"{'backend':22} {'entries':>9} {'load/s':>7} {'cpu µs/entry':>13} {'DB size':>9} {'per 1M':>8}  "
          "query                        p50 ms  p99 ms")
    for b in results:
        for st in b.stages:
            ld = st.load
            cpu = f"{ld.client_cpu / ld.entries * 1e6:.0f}" + (f"+{ld.server_cpu / ld.entries * 1e6:.0f}"
                                                              if ld.server_cpu else "")
            head = (f"{b.name:22} {st.entries:>9,} {ld.entries / ld.seconds:>7,.0f} {cpu:>13} "
                    f"{st.size_bytes / 2**30:>7.2f}Gi {st.size_bytes / st.entries * 1e6 / 2**30:>6.2f}Gi")
            for i, (kind, lat) in enumerate(st.latencies.items()):
                print(f"{head if i == 0 else '':{len(head)}}  {kind:28} {pct(lat, 50):6.2f}  {pct(lat, 99):6.2f}")
        for kind, lat in b.http.items():
            print(f"{b.name + ' HTTP':22} {b.stages[-1].entries:>9,} {'':46}  {kind:28} {pct(lat, 50):6.2f}  "
                  f"{pct(lat, 99):6.2f}")
    print(f"load rate: entries/s of bulk_register's wall time, generation of the submissions left out "
          f"(target {TARGET_LOAD:,}/s); cpu µs/entry: this process and its workers (+ PostgreSQL's processes).")
    cores = os.cpu_count() or 1
    budget = cores / TARGET_LOAD * 1e6
    for b in results:
        for st in b.stages:
            used = (st.load.client_cpu + st.load.server_cpu) / st.load.entries * 1e6
            print(f"{b.name} {st.entries:,}: {used:,.0f} µs of CPU per entry; {TARGET_LOAD:,}/s on {cores} cores "
                  f"allows {budget:,.0f} (every core busy with nothing else)")
    for b in results:
        find = [st.latencies["FindDocuments (100 docs)"] for st in b.stages]
        rates = [st.load.entries / st.load.seconds for st in b.stages]
        growth = pct(find[-1], 50) / pct(find[0], 50) - 1 if len(find) > 1 else 0.0
        size = b.stages[-1].size_bytes / b.stages[-1].entries * 1e6 / 2**30
        if b.yardstick:
            print(f"{b.name}: yardstick {min(b.yardstick):.3f}-{max(b.yardstick):.3f} s during the measurement "
                  "(the same loop: a slow machine shows as a larger figure)")
        print(f"{b.name}: FindDocuments p99 {' -> '.join(f'{pct(x, 99):.2f}' for x in find)} ms "
              f"(target < {TARGET_FIND_P99_MS} ms at 1M on PostgreSQL), p50 "
              f"{' -> '.join(f'{pct(x, 50):.2f}' for x in find)} ms ({growth:+.0%}, target <= "
              f"+{TARGET_FIND_P50_GROWTH:.0%}); {size:.2f} GiB per 1M entries (target <= {TARGET_GIB_PER_MILLION} "
              f"on PostgreSQL); load {' / '.join(f'{r:,.0f}' for r in rates)} entries/s per stage")


def main() -> None:
    # SIGTERM ends the run like Ctrl-C: the finally blocks stop the PostgreSQL server and remove the files.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--per-patient", type=int, default=100)
    ap.add_argument("--first", type=int, default=1_000, help="patients loaded before the first measurement")
    ap.add_argument("--stages", default="", help="more patient counts at which to measure (comma-separated)")
    ap.add_argument("--backends", default=f"sqlite,postgresql,{PARTITIONED}")
    ap.add_argument("--partitions", type=int, default=16, help=f"partitions of the {PARTITIONED} backend")
    ap.add_argument("--queries", type=int, default=500, help="measured queries of each kind per stage")
    ap.add_argument("--batch", type=int, default=500, help="submissions per transaction")
    ap.add_argument("--workers", type=int, default=0, help="processes preparing submissions (0: this one)")
    ap.add_argument("--explain", action="store_true", help="print the query plans at each stage")
    ap.add_argument("--http", action="store_true", help="also measure the queries through `dmp serve` (ITI-18)")
    ap.add_argument("--http-queries", type=int, default=200)
    ap.add_argument("--pg-shared-buffers", default=DurablePostgres.shared_buffers)
    ap.add_argument("--dir", default=None, help="where the databases go (default: the temp dir)")
    args = ap.parse_args()
    corpus = Corpus(per_patient=args.per_patient)
    DurablePostgres.shared_buffers = args.pg_shared_buffers
    print(f"registry_scale on {machine()}", flush=True)
    results = [run_backend(b, args, corpus) for b in args.backends.split(",")]
    report(results, args)


if __name__ == "__main__":
    sys.exit(main())
