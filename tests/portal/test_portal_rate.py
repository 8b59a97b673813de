"""The sign-in rate limit (portal._rate, docs/portal.md "Security") in a real database, SQLite file and
PostgreSQL: the counts are the database's, so two stores on one database (two worker processes, two nodes)
share them; a window ends at its first attempt plus its length; concurrent attempts are counted exactly; and
through HTTP, the two workers of `dmp serve --workers 2` refuse the attempt over the limit whichever serves it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from nodes import database_url
from portal_client import Client, csrf_of, start_portal_node
from sqlalchemy import func, select
from worker_procs import client_port, serving_process, workers_of

from portal import _rules
from portal._rate import RateLimit
from portal._schema import portal_rate
from registry import Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)


@pytest.fixture(params=["sqlite", "postgresql"])
def two_stores(request, tmp_path):
    """Two stores on one fresh database, as two processes of a node (or two nodes) have."""
    url = database_url(request.param, request) or f"sqlite:///{tmp_path / 'r.db'}"
    stores = [Store(url), Store(url)]
    stores[0].migrate()
    yield stores
    for store in stores:
        store.dispose()


def rows(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(portal_rate)).scalar_one())


def test_two_processes_count_the_same_attempts(two_stores):
    a, b = (RateLimit(store, limit=3, window=WINDOW) for store in two_stores)
    seen = [a.allow("192.0.2.1", T0), b.allow("192.0.2.1", T0 + timedelta(seconds=1)),
            a.allow("192.0.2.1", T0 + timedelta(seconds=2)), b.allow("192.0.2.1", T0 + timedelta(seconds=3))]
    assert seen == [True, True, True, False]
    assert a.allow("2001:db8::7", T0 + timedelta(seconds=4))   # another address has its own count


def test_the_window_ends_its_length_after_its_first_attempt(two_stores):
    a, b = (RateLimit(store, limit=2, window=WINDOW) for store in two_stores)
    assert a.allow("192.0.2.1", T0)
    assert b.allow("192.0.2.1", T0 + timedelta(minutes=4))
    assert not a.allow("192.0.2.1", T0 + WINDOW - timedelta(milliseconds=10))
    assert b.allow("192.0.2.1", T0 + WINDOW)   # a new window, whatever was refused in the last one
    assert b.allow("192.0.2.1", T0 + WINDOW + timedelta(minutes=1))
    assert not a.allow("192.0.2.1", T0 + WINDOW + timedelta(minutes=2))


def test_windows_that_are_over_are_deleted(two_stores):
    a = RateLimit(two_stores[0], limit=30, window=WINDOW)
    for n in range(20):
        assert a.allow(f"192.0.2.{n}", T0 + timedelta(seconds=n))
    assert rows(two_stores[0]) == 20
    assert a.allow("198.51.100.1", T0 + WINDOW + timedelta(seconds=9, milliseconds=500))
    assert rows(two_stores[0]) == 1 + 10   # the ten windows opened at T0+0..9 s are over


def test_concurrent_attempts_from_two_processes_are_counted_exactly(two_stores):
    limits = [RateLimit(store, limit=30, window=WINDOW) for store in two_stores]
    with ThreadPoolExecutor(8) as pool:
        allowed = list(pool.map(lambda n: limits[n % 2].allow("192.0.2.1", T0 + timedelta(milliseconds=n)),
                                range(45)))
    assert allowed.count(True) == 30


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_workers_of_a_node_share_the_limit(backend, request, tmp_path):
    """Two clients of one address on two workers: 30 wrong logins between them, alternating, are answered
    (400), the 31st is refused with 429 on either. Counted per process, each worker had seen 15 and let it in."""
    portal = start_portal_node(tmp_path / "node", database_url(backend, request), "--workers", "2")
    port = int(portal.node.url.rsplit(":", 1)[1])
    try:
        with ExitStack() as open_clients:
            def connected() -> tuple[Client, httpx.Response, int]:
                client = open_clients.enter_context(Client(portal.url))
                r = client.get("/connexion")
                return client, r, serving_process(portal.node.process.pid, port, client_port(r))

            # Connections kept open one after the other: the balancer gives the second worker one of them.
            opened = [connected() for _ in range(4)]
            other = next((o for o in opened if o[2] != opened[0][2]), None)
            assert other is not None, "four connections kept open all went to one worker"
            (a, first_a, worker_a), (b, first_b, worker_b) = opened[0], other
            assert {worker_a, worker_b} == workers_of(portal.node)
            first = [first_a, first_b]
            ports = [client_port(r) for r in first]
            tokens = [csrf_of(r.text) for r in first]

            def attempt(n: int):  # type: ignore[no-untyped-def]
                client = (a, b)[n % 2]
                return client.post("/connexion", data={"csrf": tokens[n % 2], "login": "1234abcd", "password": "x"})

            answers = [attempt(n) for n in range(_rules.RATE_LIMIT)]
            assert [r.status_code for r in answers] == [400] * _rules.RATE_LIMIT
            over = [attempt(0), attempt(1)]
            assert [r.status_code for r in over] == [429, 429]
            assert "Trop de tentatives" in over[1].text
            assert [client_port(r) for r in over] == ports   # still the two connections of the two workers
    finally:
        portal.node.stop()
        portal.smtp.stop()
