"""A response's head goes out with the first piece of its body, in one write on the connection (server._http,
issue 13), and every kind of response still arrives whole: a plain one, a streamed one, one without a body
(HEAD), one that closes the connection. A real server on 127.0.0.1 (uvicorn with the protocol of `dmp serve`)
and a real client socket; the connection's own transport records what it is asked to write."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from server._http import GuardedHttpToolsProtocol


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for piece in (b"first,", b"second,", b"last"):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    body = b"hello, world"
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    if path == "/close":
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _exchange(requests: bytes, *, until_closed: bool = False) -> tuple[list[bytes], bytes]:
    """Send ``requests`` on one connection; the writes the server's transport was asked for, and what the
    client received (everything, or until the server closed the connection)."""
    writes: list[bytes] = []

    class Recording(GuardedHttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            write = transport.write

            def recorded(data: bytes) -> None:
                writes.append(bytes(data))
                write(data)

            transport.write = recorded  # type: ignore[method-assign]
            super().connection_made(transport)

    config = uvicorn.Config(_app, http=Recording, log_level="warning", lifespan="off")
    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Recording(config, state, {}), "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(requests)
        received = b""
        if until_closed:
            received = await asyncio.wait_for(reader.read(), 10)
        else:
            while received.count(b"HTTP/1.1 ") < requests.count(b" HTTP/1.1\r\n") or not (
                    received.endswith(b"hello, world") or received.endswith(b"\r\n\r\n")):
                chunk = await asyncio.wait_for(reader.read(65536), 10)
                assert chunk, f"connection closed after {received!r}"
                received += chunk
        writer.close()
        await writer.wait_closed()
        return writes, received
    finally:
        server.close()
        for protocol in list(state.connections):
            protocol.shutdown()
        await server.wait_closed()


def _run(exchange: Coroutine[Any, Any, tuple[list[bytes], bytes]]) -> tuple[list[bytes], bytes]:
    """``asyncio.run`` in a thread of its own: other tests of the session (Playwright's synchronous API) may
    leave an event loop set in this one."""
    result: list[tuple[list[bytes], bytes]] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(exchange))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    if errors:
        raise errors[0]
    assert result, "the exchange did not finish in 30 s"
    return result[0]


def test_a_response_head_and_its_body_are_one_write() -> None:
    writes, received = _run(_exchange(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"\r\n\r\nhello, world")
    assert received == writes[0]


def test_a_streamed_response_sends_its_head_with_the_first_piece() -> None:
    writes, received = _run(_exchange(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"\r\n\r\n6\r\nfirst,\r\n")
    assert writes[1:] == [b"7\r\nsecond,\r\n", b"4\r\nlast\r\n", b"0\r\n\r\n"]
    assert received == b"".join(writes)


def test_a_head_request_gets_its_head_although_no_body_is_written() -> None:
    writes, received = _run(_exchange(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
                                             b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert len(writes) == 2
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"content-length: 12\r\n\r\n")
    assert writes[1].endswith(b"\r\n\r\nhello, world")   # the next request on the connection is answered
    assert received == b"".join(writes)


def test_a_response_that_closes_the_connection_arrives_whole() -> None:
    writes, received = _run(_exchange(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n", until_closed=True))
    assert len(writes) == 1
    assert received == writes[0]
    assert received.endswith(b"connection: close\r\n\r\nhello, world")
