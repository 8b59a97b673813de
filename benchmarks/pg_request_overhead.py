"""What the replay check and the consent checker cost per ITI-41 on PostgreSQL, apart from the rest of the request:
N replay checks (``server._security.replay_store``: the node's own store and engine), and N consent admissions of an
ITI-41 (``Guard.dossier`` + ``Guard.admit``) each followed by its access-history trace in a registry write
(``Store.grouped_write``, as the registry runs it), against a throwaway durable PostgreSQL
(``_harness.durable_postgres_server`` with pg_stat_statements). Prints, per operation: the node's CPU (this
process), PostgreSQL's CPU (every process of the cluster) and the statements PostgreSQL ran (pg_stat_statements
calls, BEGIN and COMMIT included; a pool's pre-ping, an empty statement, is not counted).

Old against new: ``--old DIR`` runs the same measurements with the code of DIR (e.g. a detached worktree of main:
``git worktree add --detach /tmp/main-old main``) in a subprocess, alternating with the code of this checkout, round
by round, on the same server (the machine's speed drifts):

    .venv/bin/python benchmarks/pg_request_overhead.py [--operations 3000] [--rounds 3] [--patients 200] [--old DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROFESSIONAL, STRUCTURE = "899700012349", "499700012349012"


def _statements(conninfo: str) -> int:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute("SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements WHERE dbid = "
                           "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                           "AND query NOT LIKE '%pg_stat_%'").fetchone()
    return int(row[0]) if row else 0


def _measure(url: str, data: Path, operations: int, run: Any) -> dict[str, float]:
    from _harness import postgres_cpu_seconds

    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    run(min(200, operations), warm=True)
    statements, pg = _statements(conninfo), postgres_cpu_seconds(data)
    node, wall = time.process_time(), time.perf_counter()
    run(operations, warm=False)
    wall, node = time.perf_counter() - wall, time.process_time() - node
    pg = postgres_cpu_seconds(data) - pg
    statements = _statements(conninfo) - statements   # the snapshots themselves are left out (NOT LIKE)
    return {"node_ms": node * 1000 / operations, "pg_ms": pg * 1000 / operations,
            "statements": statements / operations, "wall_ms": wall * 1000 / operations}


def worker(url: str, data: Path, operations: int, patients: int, tag: str) -> None:
    """The measurements with the code on sys.path (this checkout, or --old's): JSON on stdout."""
    from consent import Action, Guard
    from pki import AuthMode, CodedValue, PatientIns, Principal, PurposeOfUse, Software
    from registry import Store
    from server._security import replay_store

    now = datetime.now(UTC)
    replay = replay_store(SimpleNamespace(shared_database=True, database_url=url))   # type: ignore[arg-type]
    counter = iter(range(10**9))

    def checks(n: int, *, warm: bool) -> None:
        for _ in range(n):
            assert replay.remember(f"_{tag}_{next(counter)}", now + timedelta(minutes=5), now)

    store = Store(url)
    guard = Guard(store)
    principals = [Principal(
        assertion_id="_a", professional_id=PROFESSIONAL, name="Dr Bench",
        profession=CodedValue("10", "1.2.250.1.71.1.2.7"), specialty=None, roles=(),
        structure_id=STRUCTURE, sector="SA07", auth_mode=AuthMode.DIRECT,
        purpose_of_use=PurposeOfUse.NORMAL, patient=PatientIns(f"1{i:012d}", "1.2.250.1.213.1.4.10"),
        software=Software("LPS", "1"), vihf_version="3.0", authn_context=None, secret_connection=False,
        signer_subject="CN=x", issued_at=now, valid_until=now + timedelta(minutes=5)) for i in range(patients)]

    def admissions(n: int, *, warm: bool) -> None:
        for i in range(n):
            key = _key(i % patients)
            principal = principals[i % patients]
            dossier = guard.dossier(key, principal)
            trace = guard.admit(principal, Action.FEED, key, transaction="ITI-41", dossier=dossier)
            store.grouped_write(trace)

    print(json.dumps({"replay": _measure(url, data, operations, checks),
                      "consent": _measure(url, data, operations, admissions)}))
    store.dispose()


def _key(i: int) -> str:
    return f"1{i:012d}^^^&1.2.250.1.213.1.4.10&ISO"


def _prepare(url: str, patients: int) -> None:
    from sqlalchemy import insert

    from consent._schema import dossier
    from registry import Store

    store = Store(url)
    store.migrate()
    with store.write() as conn:
        conn.execute(insert(dossier), [dict(
            patient_key=_key(i), created_at="2026-12-01T09:00:00.000Z", consent_by="patient",
            consent_channel="operator", minor=False, treating_doctor=PROFESSIONAL, allow_break_glass=True,
            allow_centre_15=True,
            masked_visible_in_emergency=False, feeding_opposed=False, email=None, mobile=None, trusted_email=None,
            notify_trusted=False, notify_new_document=False, closed_at=None, purge_after=None, history_seq=0,
            history_head="0" * 64) for i in range(patients)])
    store.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operations", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--old", type=Path, help="a checkout of the code to compare with (e.g. main)")
    parser.add_argument("--worker", nargs=3, metavar=("URL", "DATA", "TAG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], Path(args.worker[1]), args.operations, args.patients, args.worker[2])
        return
    from _harness import durable_postgres_server, machine
    from _pg_stats import SETTINGS, PgStats

    codes = {"new": ROOT} | ({"old": args.old.resolve()} if args.old else {})
    results: dict[str, list[dict[str, dict[str, float]]]] = {name: [] for name in codes}
    print(f"{machine()}; {args.operations} operations per measurement, {args.patients} patients, {args.rounds} rounds")
    with durable_postgres_server(*SETTINGS) as server:
        _prepare(server.url, args.patients)
        PgStats(server.url)   # creates the extension
        for r in range(args.rounds):
            for name in (list(codes) if r % 2 == 0 else list(reversed(codes))):
                env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                    [str(codes[name]), str(ROOT / "benchmarks"), str(ROOT / "tests" / "support")]))
                done = subprocess.run(
                    [sys.executable, __file__, "--worker", server.url, str(server.data), f"{name}{r}",
                     "--operations", str(args.operations), "--patients", str(args.patients)],
                    env=env, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    raise SystemExit(f"{name} round {r} failed:\n{done.stderr}")
                results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    for part in ("replay", "consent"):
        print(f"\n{part}: per operation, median of {args.rounds} rounds (min-max)")
        for name in codes:
            line = [f"  {name:>3}:"]
            for metric, unit in (("node_ms", "ms node CPU"), ("pg_ms", "ms PostgreSQL CPU"),
                                 ("statements", "statements"), ("wall_ms", "ms wall")):
                values = [res[part][metric] for res in results[name]]
                line.append(f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f}) {unit}")
            print("  ".join(line))


if __name__ == "__main__":
    main()
