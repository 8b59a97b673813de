"""Least-connections accept for the workers of ``dmp serve --workers N`` (docs/architecture.md).

Every worker listens on the one socket of the port, which the supervisor opened before forking them. A worker
accepts a waiting connection only if it holds no more open connections than the least busy other worker;
otherwise it leaves the connection in the queue for that one, and takes it itself if it is still waiting
after :data:`DEFER_S` (a worker that is not accepting — busy in the GIL, stopping, dead and not yet reaped —
delays a connection by that much at most, never loses it). Each worker's count of open connections is in a
small shared-memory board (:class:`Board`, a memfd) that the supervisor creates before the fork and clears
when it reaps a worker.

Why: the clients of a node — a load balancer, desktop software, the benchmark's 8 clients — hold a few
long-lived keep-alive connections, and the work of a worker is that of its connections. With one
SO_REUSEPORT socket per worker the kernel spread them by a hash of their addresses: 5/3 and 6/2 splits of 8
connections, one worker saturated while the other idled, 100 to 192 ITI-41/s from one run to the next on two
cores; with one shared socket and nothing more, asyncio's accept loop (up to its backlog per wake-up) gave
every connection waiting to the first worker awake (benchmarks/README.md, issue 13 session 7)."""

from __future__ import annotations

import errno
import mmap
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable

DEFER_S = 0.010
"""How long a worker leaves a waiting connection to a less busy one before taking it itself."""
_PAUSE_S = 0.00025
"""The sleep of a worker that leaves a connection to another, before asyncio polls the socket again (the
socket stays readable until the other accepts: without it, the event loop would spin at full speed)."""
_SLOT = struct.Struct("qq")   # (pid of the worker, its open connections); pid 0 = free slot
_COUNT = struct.Struct("q")


class Board:
    """The open connections of each worker, in memory shared by the supervisor and its workers. One slot per
    worker; each worker writes only its own count, the supervisor writes a slot only when no live worker
    owns it (before the fork, after reaping)."""

    def __init__(self, fd: int, slots: int) -> None:
        self.fd, self.slots = fd, slots
        self._map = mmap.mmap(fd, _SLOT.size * slots)

    @classmethod
    def create(cls, slots: int) -> Board:
        """A new, empty board whose file descriptor is inherited by children and across ``execv``."""
        fd = os.memfd_create("dmp-serve-workers", 0)   # no MFD_CLOEXEC: the next images map it again
        os.set_inheritable(fd, True)
        os.ftruncate(fd, _SLOT.size * slots)
        return cls(fd, slots)

    def _read(self, slot: int) -> tuple[int, int]:
        pid, count = _SLOT.unpack_from(self._map, _SLOT.size * slot)
        return pid, count

    def free_slot(self) -> int:
        """A slot no worker holds. ValueError if there is none."""
        for slot in range(self.slots):
            if self._read(slot)[0] == 0:
                return slot
        raise ValueError("every slot of the board is taken")

    def claim(self, slot: int, pid: int) -> None:
        _SLOT.pack_into(self._map, _SLOT.size * slot, pid, 0)

    def release(self, pid: int) -> None:
        """Clear the slot of ``pid`` (a worker that exited): its connections are gone with it."""
        for slot in range(self.slots):
            if self._read(slot)[0] == pid:
                _SLOT.pack_into(self._map, _SLOT.size * slot, 0, 0)

    def set_count(self, slot: int, count: int) -> None:
        _COUNT.pack_into(self._map, _SLOT.size * slot + 8, count)

    def others(self, slot: int) -> Iterable[int]:
        """The open connections of every other worker that holds a slot."""
        for other in range(self.slots):
            if other != slot:
                pid, count = self._read(other)
                if pid:
                    yield count

    def close(self) -> None:
        self._map.close()
        os.close(self.fd)


class _Connection(socket.socket):
    """An accepted connection that tells its listener when it is closed (asyncio's transport closes it)."""

    on_close: Callable[[], None] | None = None

    def _real_close(self) -> None:   # socket.socket's own (private): close() calls it once the fd is released
        super()._real_close()   # type: ignore[misc]
        done, self.on_close = self.on_close, None
        if done is not None:
            done()


class BalancedListener(socket.socket):
    """The shared listening socket as one worker sees it: asyncio's accept loop calls :meth:`accept`, which
    takes a connection only when this worker is no busier than the others (see the module's docstring)."""

    def __init__(self, board: Board, slot: int, fileno: int) -> None:
        super().__init__(fileno=fileno)
        self._board, self._slot = board, slot
        self._open = 0
        self._lock = threading.Lock()
        self._deferring_since: float | None = None
        self._last_deferral = 0.0

    def accept(self) -> tuple[socket.socket, object]:
        if self._defer():
            raise BlockingIOError(errno.EAGAIN, "left to a less busy worker")
        fd, address = self._accept()   # type: ignore[attr-defined]  # BlockingIOError when none is waiting
        conn = _Connection(self.family, self.type, self.proto, fileno=fd)
        conn.on_close = self._closed_one
        self._add(1)
        return conn, address

    def _defer(self) -> bool:
        others = list(self._board.others(self._slot))
        if not others or self._open <= min(others):
            self._deferring_since = None
            return False
        now = time.monotonic()
        if self._deferring_since is None or now - self._last_deferral > 10 * _PAUSE_S + DEFER_S:
            self._deferring_since = now   # not called back at once: the last connection was taken by another
        if now - self._deferring_since >= DEFER_S:
            self._deferring_since = None
            return False
        self._last_deferral = now
        time.sleep(_PAUSE_S)   # the GIL is released: this worker's requests go on meanwhile
        return True

    def _closed_one(self) -> None:
        self._add(-1)

    def _add(self, n: int) -> None:
        with self._lock:
            self._open += n
            self._board.set_count(self._slot, self._open)
