"""The worker threads that process SOAP requests (docs/architecture.md, data flow).

One hop per request from the event loop to a worker thread and back. Starlette's ``run_in_threadpool`` goes
through anyio (a cancel scope, the current task and async library looked up, a capacity limiter, a
contextvars copy): ~0.3 ms of the server's CPU per ITI-41 under 8 clients (issue 13, py-spy). asyncio's
``run_in_executor`` on a pool of our own does the same hop for a fraction of that.

What anyio's non-cancellable ``run_sync`` guaranteed is kept: the awaiting task does not resume while the
function still runs in its thread, even if the task is cancelled meanwhile (the request's memory reservation
and spool files are released by the caller only afterwards); the cancellation is re-raised once it is done.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
MAX_THREADS = 40
"""As many as anyio's default limiter: requests waiting on the database (group commit) hold a thread each."""

_executor = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="dmp-request")


async def run_in_worker(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in a worker thread; its result or exception. Not cancellable while it runs (see above)."""
    future = asyncio.get_running_loop().run_in_executor(_executor, fn, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():          # the thread runs on: wait for it, however often we are cancelled
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([future])
        if not future.cancelled():
            future.exception()            # retrieved: the cancellation is what the caller hears
        raise
