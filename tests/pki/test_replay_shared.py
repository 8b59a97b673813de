"""SharedReplayStore: the replay rule of ReplayCache, held in a SQLite file that every process of a node sees
(``dmp serve --workers N``); unwritable means refuse."""

from __future__ import annotations

import multiprocessing
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from pki import ReplayCacheFull, SharedReplayStore
from pki._replay_shared import PurgeSchedule

T0 = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)


def test_second_use_within_the_window_is_refused_by_another_store_on_the_file(tmp_path: Path) -> None:
    first, second = SharedReplayStore(tmp_path / "replay.db"), SharedReplayStore(tmp_path / "replay.db")
    assert first.remember("_a", T0 + timedelta(minutes=5), T0)
    assert not second.remember("_a", T0 + timedelta(minutes=5), T0 + timedelta(minutes=4))
    assert not first.remember("_a", T0 + timedelta(minutes=5), T0 + timedelta(minutes=4))
    assert second.remember("_b", T0 + timedelta(minutes=5), T0)


def test_entries_expire_at_the_end_of_their_window_and_survive_a_restart(tmp_path: Path) -> None:
    store = SharedReplayStore(tmp_path / "replay.db")
    store.remember("_a", T0 + timedelta(minutes=5), T0)
    store.remember("_b", T0 + timedelta(minutes=10), T0)
    restarted = SharedReplayStore(tmp_path / "replay.db")
    assert len(restarted) == 2
    assert not restarted.remember("_b", T0 + timedelta(minutes=10), T0 + timedelta(minutes=1))
    assert restarted.remember("_c", T0 + timedelta(minutes=15), T0 + timedelta(minutes=5))
    assert len(restarted) == 2   # _a is gone at the end of its window, not before
    assert restarted.remember("_a", T0 + timedelta(minutes=15), T0 + timedelta(minutes=6))


def test_an_expired_entry_is_not_a_use_even_before_it_is_deleted(tmp_path: Path) -> None:
    """Expired entries are deleted at most once a second; until then the check itself ignores them."""
    store = SharedReplayStore(tmp_path / "replay.db")
    store.remember("_old", T0 + timedelta(milliseconds=100), T0)   # deletes expired entries: none yet
    later = T0 + timedelta(milliseconds=500)                        # within the second: no deletion
    assert len(store) == 1
    assert store.remember("_old", T0 + timedelta(minutes=5), later)   # a new assertion reusing the ID
    assert not store.remember("_old", T0 + timedelta(minutes=5), later + timedelta(milliseconds=1))
    assert not SharedReplayStore(tmp_path / "replay.db").remember("_old", T0 + timedelta(minutes=5), later)


def test_instants_compare_across_time_zones(tmp_path: Path) -> None:
    store = SharedReplayStore(tmp_path / "replay.db")
    paris = timezone(timedelta(hours=1))
    # Expires at 09:20 UTC, written as 10:20+01:00: still remembered at 09:19:59 UTC, gone at 09:20 UTC.
    store.remember("_a", datetime(2026, 3, 2, 10, 20, tzinfo=paris), T0)
    assert not store.remember("_a", T0 + timedelta(minutes=6), T0 + timedelta(minutes=4, seconds=59))
    assert store.remember("_a", T0 + timedelta(minutes=10), T0 + timedelta(minutes=5))


def _use(path: str) -> bool:
    return SharedReplayStore(Path(path)).remember("_same", T0 + timedelta(minutes=5), T0)


def test_concurrent_first_use_from_several_processes_is_granted_once(tmp_path: Path) -> None:
    path = str(tmp_path / "replay.db")
    SharedReplayStore(Path(path))
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_use, [path] * 12))
    assert sorted(results) == [False] * 11 + [True]


def test_a_store_it_cannot_write_refuses(tmp_path: Path) -> None:
    store = SharedReplayStore(tmp_path / "replay.db", busy_timeout_s=0.1)
    blocker = sqlite3.connect(tmp_path / "replay.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ReplayCacheFull, match="cannot record the assertion"):
            store.remember("_a", T0 + timedelta(minutes=5), T0)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.remember("_a", T0 + timedelta(minutes=5), T0)   # recorded once the file is writable again


def test_expired_entries_are_purged_once_per_period_on_the_checks_clock() -> None:
    schedule = PurgeSchedule(timedelta(seconds=60))
    assert schedule.due(T0)                                   # the first check purges
    assert not schedule.due(T0 + timedelta(seconds=59))
    assert schedule.due(T0 + timedelta(seconds=60))
    assert not schedule.due(T0 + timedelta(seconds=61))
    assert schedule.due(T0 - timedelta(hours=1))              # a clock set back: purge rather than never
    always = PurgeSchedule(timedelta(0))                      # purge_every_s=0: at every check
    assert always.due(T0)
    assert always.due(T0)


def test_the_file_store_deletes_expired_entries_at_a_later_check(tmp_path: Path) -> None:
    store = SharedReplayStore(tmp_path / "seen.sqlite3")
    assert store.remember("_a", T0 + timedelta(minutes=5), T0)
    assert store.remember("_b", T0 + timedelta(minutes=10), T0 + timedelta(seconds=0.5))
    assert len(store) == 2                                    # no purge within the second
    assert store.remember("_c", T0 + timedelta(minutes=15), T0 + timedelta(minutes=6))
    assert len(store) == 2                                    # _a expired and went at this check
