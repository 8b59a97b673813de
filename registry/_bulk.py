"""Registering many ITI-42 submissions in few transactions: the import of an existing registry, a load test.

Contract: ``bulk_register(subs)`` gives every submission the outcome ``register()`` would give it if the
submissions were registered one after the other, in order — same structural validation, same checks against
the registry's content (each submission sees the ones accepted before it, in the same batch too), same rows,
same effects on registered objects — but with set-based checks (``_checks.Known``: a few queries per batch)
and bulk writes per batch (``_submission.insert_rows``: on PostgreSQL one statement for every table, or one
COPY per table for a batch of over ``ONE_STATEMENT_ROWS`` rows; executemany per table on SQLite).

- A submission that breaks a rule is left out of its batch and reported with exactly register()'s errors; the
  others of the batch are registered (chosen over refusing the whole batch: an import then only has to fix and
  resend what was refused, and the outcome does not depend on the batch size).
- A batch is one transaction. If the database refuses it (a concurrent writer took an id or a uniqueId, a
  value too wide for a PostgreSQL column) it is rolled back whole and its submissions are replayed one per
  transaction, so that the one at fault is refused alone, with register()'s answer.
- If the database is unavailable, the batch is rolled back whole and the load stops: the report accounts for
  the submissions up to the failed batch (``submissions``); nothing after it was registered, and at most one
  more batch was read from the input (prepared while the failed one was being written).

Batches are pipelined: one thread checks and writes batch N (waiting on the database most of that time, the
GIL released) while the calling thread prepares batch N+1 — the database's work overlaps Python's.
``workers`` > 0 prepares (validates and builds rows: the CPU-heavy, database-free part) in that many
processes instead; the checks and writes stay in order in the writer thread. The submissions and rows then
cross process boundaries (pickled): worth it only with cores to spare."""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import exc

from registry._catalogue import Problem
from registry._checks import Known, check
from registry._errors import RegistryError
from registry._profile import MetadataProfile
from registry._rim import RimSubmission
from registry._store import Store, failure_summary
from registry._submission import (
    Prepared,
    apply_lifecycle,
    database_refusal,
    insert_rows,
    lock_new_ids,
    prepare,
    refuses,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubmissionOutcome:
    """The findings of one submission, by its position in the input (0-based)."""

    index: int
    errors: tuple[RegistryError, ...]


@dataclass
class BulkReport:
    submissions: int = 0  # read from the input (and accounted for: registered or refused)
    registered: int = 0
    document_entries: int = 0  # in the registered submissions
    transactions: int = 0  # committed
    refused: list[SubmissionOutcome] = field(default_factory=list)
    warnings: list[SubmissionOutcome] = field(default_factory=list)  # registered, with warnings
    stopped: RegistryError | None = None  # the database failed: nothing after ``submissions`` was read

    @property
    def ok(self) -> bool:
        return not self.refused and self.stopped is None


@dataclass
class _Item:
    index: int
    prepared: Prepared


class _Unavailable(Exception):
    def __init__(self, error: RegistryError) -> None:
        super().__init__(error.context)
        self.error = error


def bulk_register(store: Store, submissions: Iterable[RimSubmission], *, clock: Callable[[], str], batch: int,
                  workers: int = 0, require_repository_attributes: bool = True,
                  profile: MetadataProfile = MetadataProfile.DMP) -> BulkReport:
    """Register ``submissions`` (see the module's contract), ``batch`` of them per transaction."""
    if batch < 1 or workers < 0:
        raise ValueError("batch must be at least 1 and workers at least 0")
    report = BulkReport()
    batches = _prepared(submissions, clock, batch, workers, require_repository_attributes, profile)
    writing: Future[bool] | None = None
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="bulk-writer") as writer:
            for now, items in batches:
                if writing is not None and not writing.result():
                    break
                writing = writer.submit(_commit_or_stop, store, items, now, report)
            if writing is not None:
                writing.result()
    finally:
        batches.close()
    return report


def _commit_or_stop(store: Store, items: list[_Item], now: str, report: BulkReport) -> bool:
    """Commit one batch (in the writer thread, batches in order); False once the database has failed."""
    try:
        _commit(store, items, now, report)
        return True
    except _Unavailable as down:
        # Submissions are accounted for in order: those not yet are the failed transaction's.
        report.stopped = down.error
        report.refused += [SubmissionOutcome(i.index, (down.error,)) for i in items
                           if i.index >= report.submissions]
        report.submissions = items[-1].index + 1
        return False


def _prepared(submissions: Iterable[RimSubmission], clock: Callable[[], str], batch: int, workers: int,
              require: bool, profile: MetadataProfile) -> Generator[tuple[str, list[_Item]], None, None]:
    """(now, prepared submissions) per batch, in input order; with ``workers``, up to ``workers + 1`` batches
    are being prepared while the caller commits the previous one."""
    numbered = enumerate(submissions)

    def chunks() -> Iterator[list[tuple[int, RimSubmission]]]:
        while chunk := list(itertools.islice(numbered, batch)):
            yield chunk

    if workers == 0:
        for chunk in chunks():
            now = clock()
            yield now, [_Item(i, prepare(s, require_repository_attributes=require, now=now, profile=profile))
                        for i, s in chunk]
        return
    pending: deque[tuple[str, list[int], Future[list[Prepared]]]] = deque()

    def ready() -> tuple[str, list[_Item]]:
        now, indexes, future = pending.popleft()
        return now, [_Item(i, p) for i, p in zip(indexes, future.result(), strict=True)]

    import multiprocessing  # only for a bulk import, not in a serving process (~0.5 MB)
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            for chunk in chunks():
                now = clock()
                pending.append((now, [i for i, _ in chunk], pool.submit(_prepare_all, [s for _, s in chunk], require,
                                                                        now, profile)))
                if len(pending) > workers:
                    yield ready()
            while pending:
                yield ready()
        finally:
            for _, _, future in pending:
                future.cancel()


def _prepare_all(subs: list[RimSubmission], require: bool, now: str, profile: MetadataProfile) -> list[Prepared]:
    return [prepare(s, require_repository_attributes=require, now=now, profile=profile) for s in subs]


def _commit(store: Store, items: list[_Item], now: str, report: BulkReport) -> None:
    """One transaction for ``items``; on a refusal by the database, one transaction per submission."""
    try:
        outcomes = _transaction(store, items, now)
    except (exc.IntegrityError, exc.DataError) as refused:
        if len(items) == 1:
            report.submissions += 1
            report.refused.append(SubmissionOutcome(items[0].index, (database_refusal(refused),)))
            return
        log.warning("the database refused a batch of %d submissions (%s); registering them one by one",
                    len(items), failure_summary(refused))
        for item in items:
            _commit(store, [item], now, report)
        return
    except exc.SQLAlchemyError as failed:
        log.error("registry database error during a bulk registration: %s", failure_summary(failed))
        raise _Unavailable(Problem.DATABASE_UNAVAILABLE_IN_BATCH(None, failure=type(failed).__name__)) from failed
    report.transactions += 1
    for item, findings in outcomes:
        report.submissions += 1
        if refuses(findings):
            report.refused.append(SubmissionOutcome(item.index, tuple(findings)))
            continue
        report.registered += 1
        rows = item.prepared.rows
        report.document_entries += len(rows.documents) if rows else 0
        if findings:
            report.warnings.append(SubmissionOutcome(item.index, tuple(findings)))


def _transaction(store: Store, items: list[_Item], now: str) -> list[tuple[_Item, list[RegistryError]]]:
    """Check each submission against the registry plus the ones accepted before it, insert the accepted ones
    with one bulk write per table; a submission that changes registered objects (replacement, new member of
    an existing Folder) is written at its place in the order, as register() would."""
    outcomes: list[tuple[_Item, list[RegistryError]]] = []
    with store.write() as conn:
        lock_new_ids(conn, [o["id"] for i in items if i.prepared.rows for o in i.prepared.rows.objects])
        known = Known.load(conn, [i.prepared.claims for i in items if i.prepared.claims])
        waiting = []
        for item in items:
            p = item.prepared
            findings = p.findings + (check(p.claims, known) if p.claims else [])
            outcomes.append((item, findings))
            if refuses(findings) or p.rows is None:
                continue
            known.add(p.rows.objects, p.rows.documents)
            waiting.append(p.rows)
            if p.rows.affects_registered:
                insert_rows(conn, waiting)
                waiting = []
                known.deprecate(apply_lifecycle(conn, p.rows, now))
        insert_rows(conn, waiting)
    return outcomes

