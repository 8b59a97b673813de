"""Receiving a request body without letting the sender decide how much memory, disk or time it takes.

- Size: a body larger than its limit is refused from its ``Content-Length`` before a byte of it is read (HTTP
  413), and cut as soon as the limit is passed when it has none (chunked transfer).
- Time: the body must advance by ``body_min_progress_bytes`` every ``body_timeout_s`` (a silent or trickling
  sender is cut: HTTP 408, connection closed). Request headers have their own deadline
  (:mod:`server._http`).
- Memory: what is held in memory while a request is received and processed (a plain SOAP body, the root part
  of an MTOM package; attachments go to disk) is reserved from one :class:`MemoryBudget` per process; a
  request that would exceed it is refused (HTTP 503, retry later) instead of growing the process.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.requests import ClientDisconnect, Request

from soap_wsdl import FaultCode, SoapFault


class RequestRefused(Exception):
    """The request is answered with ``fault`` and HTTP ``status``, and the connection closed: its body was not
    (completely) read, so the connection cannot carry another request."""

    def __init__(self, status: int, fault: SoapFault) -> None:
        super().__init__(fault.reason)
        self.status = status
        self.fault = fault


@dataclass(frozen=True)
class Limits:
    max_bytes: int                 # the whole body
    timeout_s: float               # the body must advance by min_progress bytes within each such period
    min_progress: int


def too_large(limit: int, what: str) -> RequestRefused:
    return RequestRefused(413, SoapFault(FaultCode.SENDER, f"{what} larger than {limit} bytes: refused"))


def declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None   # the HTTP parser (llhttp) refuses a malformed Content-Length before the app sees it


async def body_chunks(request: Request, limits: Limits, what: str) -> AsyncIterator[bytes]:
    """The body's chunks, refused with 413 past ``limits.max_bytes`` and with 408 when it stalls."""
    length = declared_length(request)
    if length is not None and length > limits.max_bytes:
        raise too_large(limits.max_bytes, what)
    received = 0
    window_start, window_bytes = time.monotonic(), 0
    while True:
        remaining = window_start + limits.timeout_s - time.monotonic()
        try:
            # asyncio.timeout rather than wait_for: no task created per chunk (Python 3.11's wait_for wraps the
            # coroutine in one), the same deadline.
            async with asyncio.timeout(max(remaining, 0.001)):
                message = await request.receive()
        except TimeoutError:
            raise RequestRefused(408, SoapFault(
                FaultCode.SENDER, f"request body too slow: less than {limits.min_progress} bytes in "
                f"{limits.timeout_s:g} s (after {received} bytes)")) from None
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        if chunk:
            received += len(chunk)
            if received > limits.max_bytes:
                raise too_large(limits.max_bytes, what)
            window_bytes += len(chunk)
            if window_bytes >= limits.min_progress:
                window_start, window_bytes = time.monotonic(), 0
            yield chunk
        if not message.get("more_body", False):
            return


class MemoryBudget:
    """Bytes of request data held in memory by this process, all requests together (thread-safe)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self._used

    def reservation(self) -> Reservation:
        return Reservation(self)

    def _change(self, delta: int) -> bool:
        with self._lock:
            if delta > 0 and self._used + delta > self.limit:
                return False
            self._used += delta
            return True


class Reservation:
    """One request's share of a :class:`MemoryBudget`; :meth:`release` it when the request is answered."""

    def __init__(self, budget: MemoryBudget) -> None:
        self._budget = budget
        self.size = 0

    def resize(self, size: int) -> None:
        """Hold ``size`` bytes; RequestRefused (503) if the budget cannot grant them."""
        if size > self.size and not self._budget._change(size - self.size):
            raise RequestRefused(503, SoapFault(
                FaultCode.RECEIVER, "the server is receiving too many large messages at once: retry later"))
        if size < self.size:
            self._budget._change(size - self.size)
        self.size = size

    def release(self) -> None:
        self.resize(0)
