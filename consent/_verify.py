"""`dmp history verify`: every patient's history against its chain (see ``consent._history``)."""

from __future__ import annotations

from consent import _history
from consent._history import Problem
from registry import Store


def verify_history(store: Store) -> list[Problem]:
    """Every place where an access history does not verify; [] when all do."""
    with store.read() as conn:
        return _history.verify(conn)
