"""Patient notifications: what ``enqueue_notice`` adds to a write transaction, and how fast the
NotificationWorker drains the outbox into a real SMTP server (aiosmtpd on 127.0.0.1).

    .venv/bin/python benchmarks/notifications.py [--transactions 2000] [--messages 3000]
                                                  [--database-url postgresql+psycopg://...]

Default database: a fresh SQLite file (synchronous=FULL, as a node) in a temporary directory."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent / p) for p in ("tests/support", "")]

from notify_servers import SmtpRecorder, add_dossier  # noqa: E402
from sqlalchemy import select, update  # noqa: E402

from consent import ChannelKind, Notice, NoticeDetails, NotificationWorker, SmtpChannel, enqueue_notice  # noqa: E402
from consent._schema import dossier, notification_outbox  # noqa: E402
from registry import Store  # noqa: E402

DETAILS = NoticeDetails(professional="Dr Jeanne Martin", structure="Cabinet du Parc", document_class="10")


def transaction_ms(store: Store, count: int, *, notify: bool) -> list[float]:
    """Write transactions like an access: bump the dossier's history head, with or without the notice."""
    times = []
    for i in range(count):
        key = f"P{i % 50}"
        start = time.perf_counter()
        with store.write() as conn:
            conn.execute(update(dossier).where(dossier.c.patient_key == key)
                         .values(history_seq=dossier.c.history_seq + 1))
            if notify:
                enqueue_notice(conn, key, Notice.FIRST_ACCESS, DETAILS, now=datetime.now(UTC))
        times.append((time.perf_counter() - start) * 1000)
    return times


def drain(store: Store, workers: int, expected: int) -> float:
    """Seconds for ``workers`` workers (each its own engine, like processes) to send every pending message."""
    server = SmtpRecorder()
    server.start()
    stores = [Store(store.url) for _ in range(workers)]
    channel = {ChannelKind.EMAIL: SmtpChannel("127.0.0.1", server.port, "DMP <bench@dmp.example>")}
    start = time.perf_counter()
    running = [NotificationWorker(s, channel, poll_interval=0.05, batch=50) for s in stores]
    for w in running:
        w.start()
    try:
        while _unsent(store):
            time.sleep(0.02)
        elapsed = time.perf_counter() - start
    finally:
        for w in running:
            w.stop()
        for s in stores:
            s.dispose()
        server.stop()
    if len(server.received) != expected:
        raise SystemExit(f"{len(server.received)} e-mails received for {expected} messages")
    return elapsed


def _unsent(store: Store) -> int:
    with store.read() as conn:
        return len(conn.execute(select(notification_outbox.c.id)
                                .where(notification_outbox.c.sent_at.is_(None))).all())


def percentile(values: list[float], p: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * p))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transactions", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=3000, help="e-mails per drain run")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(args.database_url or f"sqlite:///{Path(tmp) / 'registry.db'}")
        store.migrate()
        print(f"database: {store.engine.dialect.name}")
        for i in range(50):
            add_dossier(store, f"P{i}", email=f"patient{i}@example.fr", trusted_email=f"proche{i}@example.fr",
                        notify_trusted=True)
        transaction_ms(store, 200, notify=True)   # warm-up
        for notify in (False, True):
            t = transaction_ms(store, args.transactions, notify=notify)
            label = "with enqueue_notice (2 rows)" if notify else "without a notice            "
            print(f"write transaction {label}: p50 {statistics.median(t):.2f} ms  p99 {percentile(t, 0.99):.2f} ms"
                  f"  max {max(t):.2f} ms")
        for workers in (1, 2):
            with store.write() as conn:
                conn.execute(notification_outbox.delete())
                for i in range(args.messages // 2):
                    enqueue_notice(conn, f"P{i % 50}", Notice.FIRST_ACCESS, DETAILS, now=datetime.now(UTC))
            seconds = drain(store, workers, args.messages // 2 * 2)
            print(f"drain {args.messages // 2 * 2} e-mails, {workers} worker(s): {seconds:.2f} s, "
                  f"{args.messages // 2 * 2 / seconds:.0f} messages/s")
        store.dispose()


if __name__ == "__main__":
    main()
