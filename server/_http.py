"""The HTTP/1.1 connection: uvicorn's httptools protocol (llhttp, in C) with a deadline and a size limit for
the request headers.

uvicorn arms no timer while a connection waits for a request's headers (only between requests, and any byte
cancels that one): a client that connects and stays silent, or sends its headers a byte at a time, holds the
connection for ever. Here the headers of each request must be complete within ``header_timeout_s`` of the
connection (or of the previous response); otherwise the connection is closed. llhttp itself does not bound the
size of the request line and headers (uvicorn's h11 protocol, used before, refused more than 16 KiB): past
``MAX_HEADER_BYTES`` the request is answered 431 and the connection closed. The body has its own deadline and
limits (:mod:`server._intake`).

httptools rather than h11: h11 parses in Python, and with 8 clients sending ITI-41 it took a large share of the
event loop's CPU (benchmarks/README.md, issue 13).

A response's head (status line and header fields) is sent with the first piece of its body, in one write
(:class:`_HeadWithBody`): uvicorn writes it alone as soon as the app starts the response, a separate ``send``
system call and TCP segment, and a separate wake-up of the client, for every answer (issue 13)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: The request line and header fields of one request, in bytes (names and values; h11's default bound).
MAX_HEADER_BYTES = 16 * 1024


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    #: Set by ``create_app`` from ``Config.header_timeout_s`` (each worker process builds its app).
    header_timeout_s: ClassVar[float] = 10.0
    _header_timer: asyncio.TimerHandle | None = None
    _header_bytes = 0
    #: Requests whose headers are complete and whose response is not: while there is one, no header deadline.
    _unanswered = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        if self._header_bytes_fit(len(url)):
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._header_bytes_fit(len(name) + len(value)):
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self.transport.is_closing():   # refused above: llhttp still calls back for the bytes it had
            return
        self._unanswered += 1
        self._cancel_header_timer()
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None:
            head = _HeadWithBody(self.transport, cycle, cycle.on_response)
            cycle.transport = head   # type: ignore[assignment]
            cycle.on_response = head.response_complete

    def on_body(self, body: bytes) -> None:
        if not self.transport.is_closing():
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self.transport.is_closing():
            super().on_message_complete()

    def on_response_complete(self) -> None:
        self._unanswered -= 1
        super().on_response_complete()
        if not self.transport.is_closing() and self._unanswered == 0:
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _header_bytes_fit(self, n: int) -> bool:
        if self.transport.is_closing():
            return False
        self._header_bytes += n
        if self._header_bytes <= MAX_HEADER_BYTES:
            return True
        self.logger.info("request headers larger than %d bytes: answered 431, connection closed", MAX_HEADER_BYTES)
        message = b"Request header fields too large."
        self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                             b"content-type: text/plain; charset=utf-8\r\n"
                             b"content-length: " + str(len(message)).encode("ascii") + b"\r\n"
                             b"connection: close\r\n\r\n" + message)
        self.transport.close()
        return False

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._unanswered == 0 and not self.transport.is_closing():
            self.logger.info("request headers not received within %g s: connection closed", self.header_timeout_s)
            self.transport.close()


class _HeadWithBody:
    """The transport as one request-response cycle of uvicorn sees it: the first write once the response has
    started (its head) is held and written together with the next one (the first piece of the body), or alone
    when the response completes or the connection is closed without one (a HEAD request). Everything else is
    the connection's transport."""

    __slots__ = ("_cycle", "_head", "_head_seen", "_on_response", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: Any, on_response: Callable[[], None]) -> None:
        self._transport, self._cycle, self._on_response = transport, cycle, on_response
        self._head: bytes | None = None
        self._head_seen = False

    def write(self, data: bytes) -> None:
        if self._head is not None:
            data, self._head = self._head + data, None
        elif not self._head_seen and self._cycle.response_started:
            self._head_seen, self._head = True, data   # the head: sent with what follows
            return
        self._transport.write(data)

    def flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)

    def response_complete(self) -> None:
        self.flush()
        self._on_response()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def http_protocol(*, tls: bool) -> type[GuardedHttpToolsProtocol]:
    """The protocol class of ``dmp serve`` (with ``--tls``: the one that hands the app the client certificate)."""
    if tls:
        from server._tls import MTLSProtocol

        return MTLSProtocol
    return GuardedHttpToolsProtocol
