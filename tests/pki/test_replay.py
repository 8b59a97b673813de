"""ReplayCache: one use per assertion ID until its window ends; bounded, and full means refuse (never forget)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from pki import ReplayCache, ReplayCacheFull

T0 = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)


def test_second_use_within_the_window_is_refused() -> None:
    cache = ReplayCache()
    assert cache.remember("_a", T0 + timedelta(minutes=5), T0)
    assert not cache.remember("_a", T0 + timedelta(minutes=5), T0 + timedelta(minutes=4))
    assert cache.remember("_b", T0 + timedelta(minutes=5), T0)


def test_entries_expire_at_the_end_of_their_window() -> None:
    cache = ReplayCache()
    cache.remember("_a", T0 + timedelta(minutes=5), T0)
    cache.remember("_b", T0 + timedelta(minutes=10), T0)
    assert len(cache) == 2
    assert cache.remember("_c", T0 + timedelta(minutes=15), T0 + timedelta(minutes=5))
    assert len(cache) == 2   # _a is gone
    assert cache.remember("_a", T0 + timedelta(minutes=15), T0 + timedelta(minutes=6))


def test_full_cache_refuses_rather_than_forgets() -> None:
    cache = ReplayCache(max_entries=2)
    cache.remember("_a", T0 + timedelta(minutes=5), T0)
    cache.remember("_b", T0 + timedelta(minutes=5), T0)
    with pytest.raises(ReplayCacheFull):
        cache.remember("_c", T0 + timedelta(minutes=5), T0)
    assert not cache.remember("_a", T0 + timedelta(minutes=5), T0)   # still remembered
    # Once the window has passed there is room again.
    assert cache.remember("_c", T0 + timedelta(minutes=10), T0 + timedelta(minutes=5))


def test_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ReplayCache(max_entries=0)


def test_concurrent_first_use_is_granted_once() -> None:
    cache = ReplayCache()
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def use() -> None:
        barrier.wait()
        results.append(cache.remember("_same", T0 + timedelta(minutes=5), T0))

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
