"""Which answers of ``sigtimedwait`` stop the supervisor of `dmp serve --workers N` (server._supervisor): SIGTERM
and SIGINT only. With py-spy attached to the supervisor under load, ``sigtimedwait`` once came back with a
siginfo naming no signal of the set (a large negative number), and the supervisor, which stopped on any signal
but SIGCHLD, shut the whole server down mid-run."""

from __future__ import annotations

import signal

import pytest

from server._supervisor import stop_requested


def _answer(signo: int) -> signal.struct_siginfo:
    # (si_signo, si_code, si_errno, si_pid, si_uid, si_status, si_band), as sigtimedwait returns it
    return signal.struct_siginfo((signo, 0, 0, 4321, 0, 0, 0))


@pytest.mark.parametrize(("signo", "stops"), [
    (signal.SIGTERM, True),
    (signal.SIGINT, True),
    (signal.SIGCHLD, False),          # a worker exited: reap it, start another
    (-1_421_859_328, False),          # a large negative number, as came back with py-spy attached
    (0, False),
    (signal.SIGTRAP, False),
])
def test_only_sigterm_and_sigint_stop_the_supervisor(signo: int, stops: bool) -> None:
    assert stop_requested(_answer(signo)) is stops


def test_a_time_out_does_not_stop_the_supervisor() -> None:
    assert stop_requested(None) is False
