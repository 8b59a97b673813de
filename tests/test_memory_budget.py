"""The per-process budget of request bytes held in memory (server._intake)."""

from __future__ import annotations

import pytest

from server._intake import MemoryBudget, RequestRefused


def test_memory_budget_reservations():
    budget = MemoryBudget(100)
    a, b = budget.reservation(), budget.reservation()
    a.resize(60)
    with pytest.raises(RequestRefused) as refused:
        b.resize(41)
    assert refused.value.status == 503
    b.resize(40)
    a.resize(10)
    b.resize(90)
    a.release()
    b.release()
    assert budget.used == 0
