"""`dmp serve` freezes the node it built before serving (server._supervisor.frozen): the cyclic collector's
full collections then walk only what was made since, instead of pausing every request for the whole heap
(benchmarks/gc_pauses.py)."""

from __future__ import annotations

import gc

from server._supervisor import frozen


class _App:
    def __init__(self) -> None:
        self.me = self   # a cycle: an object the collector tracks


def test_frozen_moves_the_app_and_everything_alive_out_of_the_collectors_reach():
    app = _App()
    assert any(o is app for o in gc.get_objects())
    before = gc.get_freeze_count()
    try:
        assert frozen(app) is app
        assert gc.get_freeze_count() > before
        assert not any(o is app for o in gc.get_objects())   # in no generation: never walked again
        later = _App()
        assert any(o is later for o in gc.get_objects())       # what is made afterwards is collected as usual
    finally:
        gc.unfreeze()
