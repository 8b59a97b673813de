"""Receiving requests (issue 13, "nothing read before the caller is known", defect 5): limits and deadlines
seen from a raw socket against a real `dmp serve`, with small limits set in the node's config.json.

What is asserted is what the server does (answers 413/408/503 or a fault before the body is sent, closes the
connection, keeps its memory); generous socket timeouts only bound how long a broken server would hang the
test."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from nodes import RunningNode, make_node, start_node
from xds_client import ITI41, envelope, parse_reply
from xds_factory import Doc, content_id, provide_and_register

from soap_wsdl import OutgoingAttachment, mtom_content_type, mtom_stream, new_boundary

MiB = 1024 * 1024
LIMITS = {"max_soap_bytes": 4 * MiB, "max_request_bytes": 32 * MiB, "max_buffered_bytes": 8 * MiB,
          "header_timeout_s": 1.0, "body_timeout_s": 1.0, "body_min_progress_bytes": 16 * 1024}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    cfg = make_node(tmp_path_factory.mktemp("intake"))
    path = cfg.data_dir / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **LIMITS}))
    running = start_node(cfg)
    yield running
    running.stop()


def connect(node: RunningNode) -> socket.socket:
    host, port = node.url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=30)
    return s


def head(path: str, content_type: str, length: int | None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {content_type}"]
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(s: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP response (Content-Length framed), then whether it was closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response: {data!r}")
        data += chunk
    head_text, _, rest = data.partition(b"\r\n\r\n")
    lines = head_text.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest


def closed_by_server(s: socket.socket) -> bool:
    """True when the server closes the connection (FIN, or RST when it leaves request bytes unread); False if
    it keeps it open for the socket's whole timeout."""
    try:
        while s.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def spool(node: RunningNode) -> list[str]:
    return sorted(p.name for p in (node.config.blob_dir / ".spool").iterdir())


def mtom_parts(env: bytes, docs: list[Doc]) -> tuple[str, bytes]:
    boundary, root = new_boundary(), f"root.{uuid.uuid4().hex}@test"
    body = b"".join(mtom_stream(env, [OutgoingAttachment(content_id(d), d.mime_type, d.content) for d in docs],
                                boundary, root))
    return mtom_content_type(boundary, root, ITI41), body


def test_an_anonymous_mtom_request_is_refused_before_any_attachment_byte_is_stored(node):
    """The root part (no VIHF) and the first 2 MiB of a 30 MiB attachment are sent, then nothing: the fault
    comes back at once, and the spool stays empty (before: the whole attachment went to disk first)."""
    d = Doc(b"A" * (30 * MiB), "Document01")
    ctype, body = mtom_parts(envelope(ITI41, provide_and_register([d]), vihf=None), [d])
    with connect(node) as s:
        s.sendall(head("/xds/repository", ctype, len(body)))
        s.sendall(body[: 2 * MiB])
        status, headers, content = read_response(s)
        assert spool(node) == []
        reply = parse_reply(status, headers["content-type"], content)
        assert reply.fault_code == "env:Sender"
        assert "VIHF refused [missing-assertion" in reply.fault_reason
        assert headers.get("connection") == "close"
        assert closed_by_server(s)


def test_an_attachment_before_the_root_part_is_refused(node):
    d = Doc(b"first", "Document01")
    env = envelope(ITI41, provide_and_register([d]))
    boundary = new_boundary()
    body = (f"--{boundary}\r\nContent-ID: <{content_id(d)}>\r\n\r\nfirst\r\n"
            f"--{boundary}\r\nContent-ID: <root@test>\r\nContent-Type: application/xop+xml; "
            f'type="application/soap+xml"\r\n\r\n').encode() + env + f"\r\n--{boundary}--\r\n".encode()
    ctype = f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; start="<root@test>"'
    with connect(node) as s:
        s.sendall(head("/xds/repository", ctype, len(body)) + body)
        status, headers, content = read_response(s)
    reply = parse_reply(status, headers["content-type"], content)
    assert "comes before the root part <root@test>" in reply.fault_reason
    assert spool(node) == []


@pytest.mark.parametrize(("path", "ctype", "length", "limit"), [
    ("/xds/registry", "application/soap+xml", 200 * MiB, "4194304"),
    ("/xds/repository", 'multipart/related; boundary="b"; type="application/xop+xml"', 200 * MiB, "33554432"),
])
def test_a_declared_length_over_the_limit_is_refused_before_reading(node, path, ctype, length, limit):
    with connect(node) as s:
        s.sendall(head(path, ctype, length))   # and not one byte of the body
        status, headers, content = read_response(s)
        assert status == 413
        assert limit in content.decode()
        assert headers.get("connection") == "close"
        assert closed_by_server(s)


def _send_chunked(s: socket.socket, total: int, chunk: bytes) -> None:
    sent = 0
    try:
        while sent < total:
            s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            sent += len(chunk)
        s.sendall(b"0\r\n\r\n")
    except OSError:
        pass   # the server answered and closed: what the test expects


def test_a_chunked_body_over_the_limit_is_cut(node):
    with connect(node) as s:
        s.sendall(head("/xds/registry", "application/soap+xml", None))
        sender = threading.Thread(target=_send_chunked, args=(s, 50 * MiB, b"<" * 65536))
        sender.start()
        status, _, content = read_response(s)
        sender.join()
    assert status == 413
    assert "4194304" in content.decode()


def _rss_kib(node: RunningNode) -> int:
    with open(f"/proc/{node.process.pid}/status") as f:
        status = f.read()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]


def test_concurrent_large_plain_bodies_keep_memory_bounded(node):
    """Defect 5: four concurrent 200 MB plain-SOAP bodies, declared and chunked: all refused, and the server
    grows by no more than its memory budget (8 MiB here) plus allocator slack."""
    before = _rss_kib(node)
    statuses: list[int] = []

    def one(declared: bool) -> None:
        with connect(node) as s:
            s.sendall(head("/xds/registry", "application/soap+xml", 200 * MiB if declared else None))
            sender = threading.Thread(target=_send_chunked if not declared else
                                      (lambda s, *a: None), args=(s, 200 * MiB, b"<" * 65536))
            sender.start()
            statuses.append(read_response(s)[0])
            sender.join()

    threads = [threading.Thread(target=one, args=(i % 2 == 0,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(statuses)) <= [413, 503]
    assert len(statuses) == 8
    assert _rss_kib(node) - before < 48 * 1024


def test_a_silent_connection_is_closed(node):
    with connect(node) as s:
        assert closed_by_server(s)


def test_headers_sent_a_byte_at_a_time_are_cut(node):
    request = head("/xds/registry", "application/soap+xml", 10)
    with connect(node) as s:
        s.settimeout(30)
        try:
            for byte in request:
                s.send(bytes([byte]))
                time.sleep(0.2)   # header_timeout_s is 1 s: cut long before the end
        except OSError:
            pass
        assert closed_by_server(s)


@pytest.mark.parametrize("where", ["url", "header"])
def test_request_headers_over_16_kib_are_answered_431(node, where):
    """llhttp bounds neither the request line nor the headers: the protocol does (server._http)."""
    big = "x" * (17 * 1024)
    path = f"/health?{big}" if where == "url" else "/health"
    extra = "" if where == "url" else f"X-Filler: {big}\r\n"
    with connect(node) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())
        status, headers, _ = read_response(s)
        assert status == 431
        assert headers.get("connection") == "close"
        assert closed_by_server(s)


def test_requests_under_the_limit_on_one_connection_are_served_then_an_idle_one_is_closed(node):
    """The header deadline starts again after each response: a keep-alive connection serves request after
    request (each with 15 KiB of headers, under the limit), and is closed once it stays silent."""
    filler = "y" * (15 * 1024)
    with connect(node) as s:
        for _ in range(3):
            s.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: {filler}\r\n\r\n".encode())
            status, _, content = read_response(s)
            assert status == 200
            assert b"repositoryUniqueId" in content
            time.sleep(0.5)   # header_timeout_s is 1 s and the keep-alive 5 s: within both
        assert closed_by_server(s)


@pytest.mark.parametrize("trickle", [False, True])
def test_a_stalled_or_trickling_body_is_answered_408(node, trickle):
    with connect(node) as s:
        s.sendall(head("/xds/registry", "application/soap+xml", 1 * MiB) + b"<")
        stop = threading.Event()

        def drip() -> None:
            while trickle and not stop.wait(0.1):
                try:
                    s.send(b" " * 100)   # 1 KB/s: under 16 KiB per second
                except OSError:
                    return

        dripper = threading.Thread(target=drip)
        dripper.start()
        try:
            status, headers, content = read_response(s)
        finally:
            stop.set()
            dripper.join()
        assert status == 408
        assert "too slow" in content.decode()
        assert headers.get("connection") == "close"


def test_the_node_still_serves(node):
    from xds_client import post
    d = Doc(b"after the abuse", "Document01")
    reply = post(node.repository, ITI41, provide_and_register([d]),
                 attachments=[OutgoingAttachment(content_id(d), d.mime_type, d.content)])
    assert reply.status == "Success", reply.errors


@pytest.mark.parametrize("ctype", ['multipart/related; boundary="b; x="unterminated', "multipart", ""])
def test_a_malformed_content_type_is_a_sender_fault(node, ctype):
    """Fuzzing finding: an unterminated quote in Content-Type was an internal error (HTTP 500)."""
    with node.client() as c:
        r = c.post(node.repository, content=b"<x/>", headers={"Content-Type": ctype})
    reply = parse_reply(r.status_code, r.headers.get("content-type", ""), r.content)
    assert r.status_code == 400
    assert reply.fault_code == "env:Sender"
    assert "internal error" not in reply.fault_reason


def test_a_malformed_root_part_content_type_is_a_sender_fault(node):
    """Fuzzing finding: an unterminated quote in the root part's Content-Type was an internal error."""
    d = Doc(b"doc", "Document01")
    env = envelope(ITI41, provide_and_register([d]))
    boundary = new_boundary()
    body = (f'--{boundary}\r\nContent-ID: <root@test>\r\nContent-Type: application/xop+xml; type="app\r\n\r\n'
            ).encode() + env + (f"\r\n--{boundary}\r\nContent-ID: <{content_id(d)}>\r\n\r\ndoc\r\n"
                                f"--{boundary}--\r\n").encode()
    ctype = f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; start="<root@test>"'
    with node.client() as c:
        r = c.post(node.repository, content=body, headers={"Content-Type": ctype})
    reply = parse_reply(r.status_code, r.headers.get("content-type", ""), r.content)
    assert r.status_code == 400
    assert reply.fault_code == "env:Sender"
    assert "root part" in reply.fault_reason
    assert spool(node) == []
