"""The HTTP/1.1 connection: uvicorn's h11 protocol with a deadline for the request headers.

uvicorn arms no timer while a connection waits for a request's headers (only between requests, and any byte
cancels that one): a client that connects and stays silent, or sends its headers a byte at a time, holds the
connection for ever. Here the headers of each request must be complete within ``header_timeout_s`` of the
connection (or of the previous response); otherwise the connection is closed. The body has its own deadline
(:mod:`server._intake`)."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class GuardedH11Protocol(H11Protocol):
    #: Set by ``create_app`` from ``Config.header_timeout_s`` (each worker process builds its app).
    header_timeout_s: ClassVar[float] = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info("request headers not received within %g s: connection closed", self.header_timeout_s)
            self.transport.close()
