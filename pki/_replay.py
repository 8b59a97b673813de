"""Replay protection: an assertion ID is accepted once within its validity window (docs/vihf.md §7 step 10)."""

from __future__ import annotations

import heapq
import threading
from datetime import datetime
from typing import Protocol


class ReplayCacheFull(Exception):
    """No room to remember one more assertion ID: refusing is the only safe answer (fail closed)."""


class ReplayStore(Protocol):
    """Where seen assertion IDs live. :class:`ReplayCache` keeps them in this process; a node that runs
    several processes needs a shared implementation (e.g. a database table with a unique key)."""

    def remember(self, assertion_id: str, expires_at: datetime, now: datetime) -> bool:
        """Record ``assertion_id`` until ``expires_at``; False if it is already recorded and not expired.
        Raises :class:`ReplayCacheFull` when it cannot record it."""
        ...


class ReplayCache:
    """In-memory, thread-safe, bounded: entries are dropped when they expire (the assertion's own
    NotOnOrAfter/window end), never before, so a full cache refuses instead of forgetting."""

    def __init__(self, max_entries: int = 1_000_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._max = max_entries
        self._expiry: dict[str, datetime] = {}
        self._heap: list[tuple[datetime, str]] = []
        self._lock = threading.Lock()

    def remember(self, assertion_id: str, expires_at: datetime, now: datetime) -> bool:
        with self._lock:
            self._purge(now)
            if assertion_id in self._expiry:
                return False
            if len(self._expiry) >= self._max:
                raise ReplayCacheFull(f"{self._max} assertion IDs are still within their validity window")
            self._expiry[assertion_id] = expires_at
            heapq.heappush(self._heap, (expires_at, assertion_id))
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def _purge(self, now: datetime) -> None:
        while self._heap and self._heap[0][0] <= now:
            expires_at, assertion_id = heapq.heappop(self._heap)
            if self._expiry.get(assertion_id) == expires_at:
                del self._expiry[assertion_id]
