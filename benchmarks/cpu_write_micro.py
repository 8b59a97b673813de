"""Each of this session's write-path cuts (issue 13) on its own, former against current implementation, alternated
pair by pair (``--pairs``) so that the machine's drift falls on both: CPU µs per call (thread CPU time, best and
median over the pairs) of exactly the code that changed, on the inputs an ITI-41 of ``iti41_throughput.py`` gives
it (one DocumentEntry of the benchmark's submission, its patient id, its history entry, a SQLite registry with
the patient's dossier). ``cpu_write_path.py`` measures the whole pipeline; there these changes are each below
its noise (±0.2 ms per document).

    .venv/bin/python benchmarks/cpu_write_micro.py [--pairs 7] [--calls 2000] [--database sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cpu_write_path as former
from _harness import durable_postgres, machine
from notify_servers import add_dossier
from sqlalchemy import bindparam, select
from xds_factory import PATIENT, Doc, registry_object_list

import consent._dossiers as dossiers
import consent._notices
from consent import utc_now
from consent._history import HistoryEntry
from registry import Origin, Store, _hl7, patient_key, read_registry_object_list, submitted_documents

PROFESSIONAL = "810000000011"


def _cpu_us(fn: Callable[[], Any], calls: int) -> float:
    t0 = time.thread_time_ns()
    for _ in range(calls):
        fn()
    return (time.thread_time_ns() - t0) / calls / 1000


def ab(name: str, before: Callable[[], Any], after: Callable[[], Any], pairs: int, calls: int) -> None:
    assert before() == after() or name in _DIFFERENT_RESULTS, name
    a, b = [], []
    for i in range(pairs):
        for side in ((before, a), (after, b)) if i % 2 == 0 else ((after, b), (before, a)):
            side[1].append(_cpu_us(side[0], calls))
    print(f"{name:34s} before {min(a):7.2f} (median {statistics.median(a):7.2f}) us, "
          f"after {min(b):7.2f} (median {statistics.median(b):7.2f}) us, "
          f"saved {statistics.median(a) - statistics.median(b):+7.2f} us per call")


_DIFFERENT_RESULTS = {"first access (sqlite)", "first access (postgresql)"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite",
                    help="where the first-access comparison runs (PostgreSQL: a throwaway durable cluster)")
    args = ap.parse_args()
    print(f"write-path cuts one by one, alternated; {machine()}")
    sub = read_registry_object_list(registry_object_list([Doc(b"x" * 100, "Document01", mime_type="text/xml")]))
    origin = Origin(PROFESSIONAL, "499700012349012")
    key = patient_key(PATIENT)
    p, c = args.pairs, args.calls
    ab("submitted documents", lambda: former._submitted_before(sub, key, origin),
       lambda: submitted_documents(sub, key, origin), p, c)
    entry = HistoryEntry(action="FEED", transaction="ITI-41", allowed=True, reason="OK", actor_id=PROFESSIONAL,
                         actor_name="Dr Claire MARTIN", actor_kind="PS", profession="10", structure="499700012349012",
                         auth_mode="DIRECTE", purpose="normal", documents=("1.2.250.1.999.1.1.8121.1.42",))
    ab("history entry JSON", lambda: former._to_json_before(entry), entry.to_json, p, c)
    at = utc_now()
    ab("notice instant", lambda: former._moment_before(at), lambda: consent._notices._moment(at), p, c)
    ab("CX parse (patient id)", lambda: _hl7._read_cx(PATIENT), lambda: _hl7.CX.parse(PATIENT), p, c)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="dmp-bench-"))
        url = stack.enter_context(durable_postgres()) if args.database == "postgresql" else None
        store = Store(url or f"sqlite:///{Path(tmp) / 'registry.db'}")
        store.migrate()
        add_dossier(store, key)
        with store.write() as conn:
            dossiers.first_access(conn, key, PROFESSIONAL, utc_now())
        d, a = dossiers.d, dossiers.a
        old_statement = dossiers.DirectStatement(
            select(*dossiers._DECIDING, a.state.label("only_state"))
            .select_from(dossiers.dossier.outerjoin(dossiers.ps_authorization, (a.patient_key == d.patient_key)
                                                    & (a.professional_id == bindparam("only"))))
            .where(d.patient_key == bindparam("patient_key")))

        def before() -> Any:
            # The former request: the dossier read without professional_access, then the insert in the trace's
            # transaction (here a write transaction of its own, as the trace's is shared with the registration).
            with store.read() as conn:
                old_statement.first(conn, {"patient_key": key, "only": PROFESSIONAL})
            with store.write() as conn:
                return dossiers.first_access(conn, key, PROFESSIONAL, "2026-12-07T00:00:00.000Z")

        def after() -> Any:
            with store.read() as conn:
                dossier = dossiers.load(conn, key, only=PROFESSIONAL)
            assert dossier is not None
            assert PROFESSIONAL in dossier.accessed_by
            with store.write():
                return False

        ab(f"first access ({args.database})", before, after, p, max(c // 10, 50))
        store.dispose()
    print("zstd level: benchmarks/cpu_stored_form.py (inside the pipeline: cold caches)")


if __name__ == "__main__":
    main()
