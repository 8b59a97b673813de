"""`dmp serve --workers N`: several processes share one data directory; concurrent submissions all land,
each exactly once, every document is served by whichever worker answers, and an assertion is used once
whichever worker receives it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
from nodes import ROOT, RunningNode, free_port, make_node, start_node
from vihf_client import fresh_vihf
from worker_procs import client_port, serving_process, workers_of
from xds_client import ITI41, ITI43, Reply, envelope, parse_reply, post, retrieve_request
from xds_factory import REPOSITORY_ID, Doc, content_id, provide_and_register

from soap_wsdl import OutgoingAttachment


def test_concurrent_submissions_across_workers(tmp_path):
    node = start_node(make_node(tmp_path / "node"), "--workers", "2")
    try:
        docs = [Doc(f"document {i}\r\n".encode() * (i + 1), f"Document{i:02d}") for i in range(24)]

        def send(d: Doc) -> str:
            with httpx.Client(timeout=60) as client:
                reply = post(node.repository, ITI41, provide_and_register([d]), client=client,
                             attachments=[OutgoingAttachment(content_id(d), d.mime_type, d.content)])
            return reply.status

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(send, docs)) == ["Success"] * len(docs)
        back = post(node.repository, ITI43, retrieve_request(REPOSITORY_ID, [d.unique_id for d in docs]))
        assert back.status == "Success"
        assert back.documents() == {d.unique_id: d.content for d in docs}
        assert not list((node.config.blob_dir / ".pending").iterdir())
    finally:
        node.stop()


def _iti41(node: RunningNode, d: Doc) -> str:
    with httpx.Client(timeout=60) as client:
        return post(node.repository, ITI41, provide_and_register([d]), client=client,
                    attachments=[OutgoingAttachment(content_id(d), d.mime_type, d.content)]).status


def _gone(pid: int) -> bool:
    """``pid`` has exited and been reaped (a zombie still has a /proc entry)."""
    return not Path(f"/proc/{pid}").exists()


def _wait(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    for _ in range(int(seconds / 0.05)):   # bounded polling, no assertion on the time it took
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not seen within {seconds} s: {what}")


def test_the_supervisor_has_not_opened_the_database(tmp_path):
    """The process `dmp serve --workers 2` started (same PID) is the supervisor: it forked the workers after
    importing the node's code, then replaced its image with a light one (no lxml, SQLAlchemy, cryptography
    left in it), and it never opened anything of a node — no file of its SQLite database, no blob, no
    thread besides its own — while its workers, which serve, have the database open."""
    node = start_node(make_node(tmp_path / "node"), "--workers", "2")
    try:
        assert _iti41(node, Doc(b"x", "Document01")) == "Success"
        supervisor = node.process.pid
        workers = workers_of(node)
        assert len(workers) == 2
        data = str(node.config.data_dir.resolve())

        def node_files(pid: int) -> set[str]:
            found = set()
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith(data) and not target.endswith(".log"):   # the log is stdout, opened by the test
                    found.add(target)
            return found

        assert node_files(supervisor) == set()
        assert len(list(Path(f"/proc/{supervisor}/task").iterdir())) == 1   # no thread: nothing to lose at fork
        database = str((node.config.data_dir / "registry.db").resolve())
        assert node.config.database_url.endswith("registry.db")
        opened = {w: node_files(w) for w in workers}
        assert database in set().union(*opened.values())   # opened by the worker that served the ITI-41
        assert all(opened.values())                           # each worker holds its node's files (replay.db)
        assert b"server._supervisor" in Path(f"/proc/{supervisor}/cmdline").read_bytes()
        for library in ("lxml/etree", "sqlalchemy/", "_rust.abi3"):
            assert library not in Path(f"/proc/{supervisor}/maps").read_text()
            assert all(library in Path(f"/proc/{w}/maps").read_text() for w in workers)
    finally:
        node.stop()


def test_a_database_behind_the_schema_stops_the_server_before_any_worker(tmp_path):
    """The schema check of crash recovery fails: `dmp serve --workers 2` says so and exits, starting nothing."""
    cfg = make_node(tmp_path / "node")
    with sqlite3.connect(cfg.data_dir / "registry.db") as db:
        db.execute("DELETE FROM alembic_version")
    out = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--data", str(cfg.data_dir), "--port",
                          str(free_port()), "--workers", "2"], capture_output=True, text=True, timeout=60,
                         cwd=ROOT)
    assert out.returncode == 1
    assert "is not at the current schema: run `dmp init`" in out.stderr
    assert "started worker process" not in out.stderr


def test_a_port_in_use_is_refused_before_any_worker(tmp_path):
    """The supervisor opens the port before forking any worker; a port another socket holds is refused at once."""
    cfg = make_node(tmp_path / "node")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        out = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--data", str(cfg.data_dir), "--port",
                              str(taken.getsockname()[1]), "--workers", "2"], capture_output=True, text=True,
                             timeout=60, cwd=ROOT)
    assert out.returncode == 1
    assert "cannot bind 127.0.0.1:" in out.stderr
    assert "started worker process" not in out.stderr


def test_a_killed_worker_is_replaced_and_the_server_keeps_answering(tmp_path):
    node = start_node(make_node(tmp_path / "node"), "--workers", "2")
    try:
        first = workers_of(node)
        assert len(first) == 2
        killed = min(first)
        os.kill(killed, signal.SIGKILL)
        _wait(lambda: _gone(killed) and len(workers_of(node)) == 2, "the killed worker reaped and replaced")
        now = workers_of(node)
        assert killed not in now
        assert first - {killed} <= now
        assert node.process.poll() is None
        for worker in now:   # both at once: the supervisor forks two
            os.kill(worker, signal.SIGKILL)
        _wait(lambda: all(_gone(w) for w in now) and len(workers_of(node)) == 2, "both workers reaped and replaced")
        assert not workers_of(node) & (now | first)
        docs = [Doc(f"after the kill {i}".encode(), f"Document{i:02d}") for i in range(8)]
        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(lambda d: _iti41(node, d), docs)) == ["Success"] * len(docs)
    finally:
        node.stop()


def test_sigterm_to_the_supervisor_ends_every_worker_after_its_requests(tmp_path):
    """SIGTERM to the PID that was started: a request in flight is answered (graceful shutdown), then every
    worker and the supervisor exit; no process of the server is left behind."""
    node = start_node(make_node(tmp_path / "node"), "--workers", "2")
    workers = workers_of(node)
    d = Doc(b"sent across the shutdown", "Document01")
    body = envelope(ITI41, provide_and_register([d], inline=True))
    started, release = threading.Event(), threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield body[:100]
        started.set()
        release.wait(30)
        yield body[100:]

    def send() -> Reply:
        with httpx.Client(timeout=60) as client:
            r = client.post(node.repository, content=slow_body(),
                            headers={"Content-Type": f'application/soap+xml; charset=UTF-8; action="{ITI41}"',
                                     "Content-Length": str(len(body))})
            return parse_reply(r.status_code, r.headers["content-type"], r.content)

    try:
        assert len(workers) == 2
        with ThreadPoolExecutor(1) as pool:
            reply = pool.submit(send)
            assert started.wait(30)
            os.kill(node.process.pid, signal.SIGTERM)
            time.sleep(1)   # the workers are shutting down while the request's body is still on its way
            release.set()
            answered = reply.result()
        assert node.process.wait(timeout=30) == 0
    finally:
        release.set()
        for pid in workers | {node.process.pid}:   # whatever failed above, no process of the server outlives it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        node.process.wait(timeout=30)
    assert answered.http_status == 200
    assert answered.status == "Success"
    _wait(lambda: all(_gone(w) for w in workers), "every worker gone")


def test_both_workers_serve_requests(tmp_path):
    """Connections opened concurrently are accepted by both workers (each process's share read from /proc)."""
    node = start_node(make_node(tmp_path / "node"), "--workers", "2")
    port = int(node.url.rsplit(":", 1)[1])
    try:
        def served_by(_: int) -> int:
            with httpx.Client(timeout=60) as client:
                r = client.get(f"{node.url}/health")
                assert r.status_code == 200
                return serving_process(node.process.pid, port, client_port(r))

        with ThreadPoolExecutor(8) as pool:
            per_worker = Counter(pool.map(served_by, range(64)))
        assert set(per_worker) == workers_of(node), per_worker
    finally:
        node.stop()


def test_keep_alive_connections_are_spread_evenly_over_the_workers(tmp_path):
    """Eight keep-alive connections, as eight clients or a load balancer hold them, are split 4/4 between two
    workers, three times over (with a kernel hash of the addresses, 4/4 came one time in four: one worker then
    saturated while the other idled)."""
    cfg = replace(make_node(tmp_path / "node"), keep_alive_s=300.0)
    cfg.save()
    node = start_node(cfg, "--workers", "2")
    port = int(node.url.rsplit(":", 1)[1])
    try:
        for _round in range(3):
            clients: list[httpx.Client] = []
            try:
                holders = []
                for _ in range(8):   # one after the other, each kept open
                    client = httpx.Client(timeout=60)
                    clients.append(client)
                    r = client.get(f"{node.url}/health")
                    assert r.status_code == 200
                    holders.append(serving_process(node.process.pid, port, client_port(r)))
                assert sorted(Counter(holders).values()) == [4, 4], Counter(holders)
                assert set(holders) == workers_of(node)
            finally:
                for client in clients:
                    client.close()
    finally:
        node.stop()


def test_a_replay_is_refused_by_every_worker(tmp_path):
    """The same VIHF sent at once on connections held by both workers (which process holds each connection is
    read from /proc): one request is served, every other is refused as a replay, including those the other
    worker receives — with a replay cache per process, each worker would serve it once."""
    # The connections are opened one by one until both workers hold three, which takes a while on a loaded
    # machine: the node keeps idle connections long enough that none is closed before the replay is sent.
    cfg = replace(make_node(tmp_path / "node"), keep_alive_s=300.0)
    cfg.save()
    node = start_node(cfg, "--workers", "2")
    port = int(node.url.rsplit(":", 1)[1])
    clients: list[tuple[httpx.Client, int, int]] = []  # (client, its local port, serving worker's pid)
    try:
        for _ in range(200):  # bounded: open keep-alive connections until each worker holds three
            client = httpx.Client(timeout=60)
            health = client.get(f"{node.url}/health")
            assert health.status_code == 200
            local = client_port(health)
            clients.append((client, local, serving_process(node.process.pid, port, local)))
            per_worker = Counter(w for _, _, w in clients)
            if len(per_worker) == 2 and min(per_worker.values()) >= 3:
                break
        per_worker = Counter(w for _, _, w in clients)
        assert len(per_worker) == 2, f"the kernel gave every connection to one worker: {per_worker}"
        chosen = [c for w in per_worker for c in [c for c in clients if c[2] == w][:3]]
        vihf = fresh_vihf()
        body = envelope(ITI43, retrieve_request(REPOSITORY_ID, ["1.2.3"]), vihf=vihf)
        ctype = f'application/soap+xml; charset=UTF-8; action="{ITI43}"'

        def send(c: tuple[httpx.Client, int, int]) -> tuple[int, Reply]:
            client, local, worker = c
            r = client.post(node.repository, content=body, headers={"Content-Type": ctype})
            assert client_port(r) == local  # sent on the connection that worker holds
            return worker, parse_reply(r.status_code, r.headers["content-type"], r.content)

        with ThreadPoolExecutor(len(chosen)) as pool:
            replies = list(pool.map(send, chosen))
        served = [(w, r) for w, r in replies if r.http_status == 200]
        assert [r.error_codes for _, r in served] == [["XDSDocumentUniqueIdError"]]
        refused = [(w, r) for w, r in replies if r.http_status != 200]
        assert len(refused) == 5
        assert all(r.fault_code == "env:Sender" and "DMPVIHFReplay" in r.fault_reason for _, r in refused)
        # Both workers took part: the one that served it, and the other, which refused it as a replay.
        assert {w for w, _ in replies} == set(per_worker)
        assert any(w != served[0][0] for w, _ in refused)
        assert (node.config.data_dir / "replay.db").exists()
    finally:
        for client, _, _ in clients:
            client.close()
        node.stop()


def test_the_workers_sockets_answer_without_nagles_delay():
    """A worker's listening socket is one asyncio recognises as TCP, so every connection it accepts has
    TCP_NODELAY (without it, each answer's last segment waited for the client's delayed ACK)."""
    import asyncio

    from server._supervisor import _port_socket

    async def accepted_nodelay() -> int:
        listening = _port_socket("127.0.0.1", 0)
        listening.listen()
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=listening)
        try:
            with socket.create_connection(listening.getsockname()):
                return await asyncio.wait_for(seen, 10)
        finally:
            server.close()

    assert asyncio.run(accepted_nodelay()) != 0
