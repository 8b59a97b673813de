"""ITI-41 throughput: Provide and Register requests, one ~10 KB CDA document each as an MTOM attachment,
sent by 1 and by N concurrent clients to a fresh node (SQLite + filesystem blobs) served by `dmp serve`.

Prints documents/s, latency percentiles, failures (every answer must be Success), the server's peak RSS (VmHWM
summed over its processes), its PSS (shared pages counted once) and the RSS of each of its processes.
Requests are encoded before the clock starts, so the figures are the server's (plus HTTP), not the encoder's.
The clients share the machine's cores with the server, so the lighter they are the closer the figures are to the
server's own: by default each is an HTTP/1.1 keep-alive connection on a plain socket (``--client socket``,
~0.25 ms of CPU per request here, the answer's status still checked); ``--client http`` is the standard
library's ``http.client`` (~0.6-0.7 ms: it parses every answer header with the email package) and ``--client
httpx`` the heavier ``httpx.Client`` of the first runs, to compare with earlier figures. The client CPU per
request is printed either way.

    .venv/bin/python benchmarks/iti41_throughput.py [--requests 2000] [--clients 1,8] [--client socket|http|httpx]
                                                    [--py-spy OUT.txt]
                                                    [--database postgresql [--pg-statements]]

With ``--database postgresql`` the PostgreSQL server's CPU per document (all its processes) is a column of its
own, and the node + PostgreSQL sum another; ``--pg-statements`` also prints, for the last run, the statements
PostgreSQL ran per document (``pg_stat_statements``), its commits and WAL flushes per document (that extension
costs some server CPU: compare CPU figures between runs with the same options).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import itertools
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from _cda import consultation_report
from _harness import (
    RunningNode,
    clear_peak_rss,
    cpu_seconds,
    durable_postgres_server,
    machine,
    node_in,
    postgres_cpu_seconds,
    process_tree,
    pss_mb,
    rss_mb,
    tree_cpu_split,
    tree_pss_mb,
    tree_rss_mb,
    yardstick,
)
from _pg_stats import SETTINGS, PgStats, print_per_document
from _registry_data import patient_id
from xds_client import ITI41, envelope, parse_reply
from xds_factory import PATIENT, Doc, content_id, provide_and_register

from soap_wsdl import (
    MimeError,
    OutgoingAttachment,
    mtom_content_type,
    mtom_stream,
    new_boundary,
    ns,
    parse_content_type,
    parse_xml,
)

TARGET_DOCS_PER_S = 300


@dataclass(frozen=True)
class Request:
    content_type: str
    body: bytes


@dataclass
class RunResult:
    clients: int
    elapsed: float = 0.0
    server_cpu: float = 0.0  # seconds of CPU the server used during the run (user + system)
    server_system: float = 0.0  # of which in the kernel (system time)
    client_cpu: float = 0.0  # seconds of CPU this process (the clients) used during the run
    database_cpu: float = 0.0  # seconds of CPU the PostgreSQL server used during the run (0 on SQLite)
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    failures: list[str] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return len(self.latencies) + len(self.failures)


_seed = itertools.count(1)


def encode_requests(count: int, patients: tuple[str, ...] = (PATIENT,)) -> list[Request]:
    """``count`` ITI-41 MTOM messages, each with one distinct CDA document (distinct uniqueIds), for each of
    ``patients`` in turn (the VIHF names it)."""
    out = []
    for i in range(count):
        doc = Doc(b"", "Document01", mime_type="text/xml", patient_id=patients[i % len(patients)])
        doc.content = consultation_report(doc.unique_id, doc.patient_id, next(_seed))
        env = envelope(ITI41, provide_and_register([doc]))
        boundary, root = new_boundary(), f"root.{uuid.uuid4().hex}@bench.dmp-xds"
        body = b"".join(mtom_stream(env, [OutgoingAttachment(content_id(doc), doc.mime_type, doc.content)],
                                    boundary, root))
        out.append(Request(mtom_content_type(boundary, root, ITI41), body))
    return out


_SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
_REGISTRY_RESPONSE = f"{{{ns.SOAP12}}}Body/{{{ns.RS}}}RegistryResponse"


def answer_problem(status: int, content_type: str, body: bytes, spool: Path) -> str | None:
    """None when the answer is HTTP 200 with a Success RegistryResponse, else what is wrong with it.

    The usual (Success) answer is checked without the MTOM decoder (which spools every part to a file): the
    root part is cut out at the boundary given by the Content-Type, parsed whole with the hardened parser and its
    RegistryResponse's status read. Anything else (another framing, an error) goes through ``parse_reply``, which
    decides and describes what is wrong."""
    if status == 200:
        try:
            media, params = parse_content_type(content_type)
            delimiter = ("--" + params["boundary"]).encode("latin-1") if media == "multipart/related" else b""
        except (MimeError, KeyError, UnicodeEncodeError):
            delimiter = b""
        parts = body.split(delimiter) if delimiter else []
        # [preamble, root part, ..., "--" + epilogue]: headers, a blank line, the envelope, the CRLF of the delimiter
        if len(parts) >= 3 and parts[-1].startswith(b"--"):
            _headers, blank, root = parts[1].partition(b"\r\n\r\n")
            response = parse_xml(root[:-2]).find(_REGISTRY_RESPONSE) if blank and root.endswith(b"\r\n") else None
            if response is not None and response.get("status") == _SUCCESS:
                return None
    reply = parse_reply(status, content_type, body, spool)
    if reply.mime is not None:
        reply.mime.discard()
    if reply.registry_response is None:   # a SOAP fault
        return f"HTTP {status}: {reply.fault_reason}"
    got = reply.status if status == 200 else f"HTTP {status}"
    return None if got == "Success" else f"{got}: {reply.errors}"


class _Connection:
    """One client's keep-alive HTTP/1.1 connection (the standard library's ``http.client``): the body is sent
    with its headers in one write, the whole answer is read before the next request."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def post(self, req: Request) -> tuple[int, str, bytes]:
        self.conn.request("POST", self.path, body=req.body, headers={"Content-Type": req.content_type})
        response = self.conn.getresponse()
        body = response.read()
        if response.will_close:   # the server closed it (an error answer): the next request opens a new one
            self.conn.close()
        return response.status, response.getheader("content-type", ""), body

    def close(self) -> None:
        self.conn.close()


class _Socket:
    """One client's keep-alive HTTP/1.1 connection on a plain socket, as lean as a load generator in C: the
    request line and headers are formatted once per connection and sent with the body in one ``sendall``; the
    answer's head is cut at its blank line and only its status, Content-Type, Content-Length, Transfer-Encoding
    and Connection are read (``http.client`` parses every header with the email package: ~0.2 ms of this
    process's CPU per request, on the cores the server is measured on)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.head = (f"POST {parts.path} HTTP/1.1\r\nHost: {self.address[0]}:{self.address[1]}\r\n"
                     "Content-Type: {}\r\nContent-Length: {}\r\n\r\n")
        self.sock: socket.socket | None = None
        self.buffer = b""

    def post(self, req: Request) -> tuple[int, str, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=120)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buffer = b""
        self.sock.sendall(self.head.format(req.content_type, len(req.body)).encode("latin-1") + req.body)
        head = self._until(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        fields = {}
        for line in lines:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if "chunked" in fields.get("transfer-encoding", "").lower():
            body = self._chunked()
        else:
            body = self._exactly(int(fields.get("content-length", "0")))
        if fields.get("connection", "").lower() == "close":   # an error answer: the next request reconnects
            self.close()
        return int(status_line.split(" ", 2)[1]), fields.get("content-type", ""), body

    def _recv(self) -> None:
        assert self.sock is not None
        data = self.sock.recv(262144)
        if not data:
            raise ConnectionError("the server closed the connection mid-answer")
        self.buffer += data

    def _until(self, mark: bytes) -> bytes:
        while (end := self.buffer.find(mark)) < 0:
            self._recv()
        out, self.buffer = self.buffer[:end], self.buffer[end + len(mark):]
        return out

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._recv()
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out

    def _chunked(self) -> bytes:
        chunks = []
        while size := int(self._until(b"\r\n").split(b";")[0], 16):
            chunks.append(self._exactly(size))
            self._exactly(2)
        while self._until(b"\r\n"):   # trailers, up to the blank line
            pass
        return b"".join(chunks)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class _Httpx:
    """One client's ``httpx.Client`` (keep-alive), as the benchmark used before ``--client http``."""

    def __init__(self, url: str) -> None:
        self.url, self.client = url, httpx.Client(timeout=120)

    def post(self, req: Request) -> tuple[int, str, bytes]:
        r = self.client.post(self.url, content=req.body, headers={"Content-Type": req.content_type})
        return r.status_code, r.headers.get("content-type", ""), r.content

    def close(self) -> None:
        self.client.close()


CLIENTS: dict[str, Callable[[str], _Connection | _Socket | _Httpx]] = {
    "http": _Connection, "socket": _Socket, "httpx": _Httpx}


def run(node: RunningNode, requests: list[Request], clients: int, max_seconds: float, spool: Path,
        kind: str = "socket", database_cpu: Callable[[], float] = lambda: 0.0) -> RunResult:
    """Send ``requests`` from ``clients`` threads, each with its own connection (``kind``: a key of
    :data:`CLIENTS`), until all are sent or ``max_seconds`` have passed. Answers that are not the expected
    Success are decoded with ``spool`` as their spool directory; ``database_cpu`` reads the CPU seconds the
    database server has used so far."""
    result = RunResult(clients)
    lock = threading.Lock()
    todo = iter(requests)
    deadline = time.monotonic() + max_seconds
    stop = threading.Event()  # set when the main thread is interrupted: the clients finish their request and go

    def client() -> None:
        connection = CLIENTS[kind](node.repository)
        try:
            while time.monotonic() < deadline and not stop.is_set():
                with lock:
                    req = next(todo, None)
                if req is None:
                    return
                t0 = time.perf_counter()
                try:
                    status, content_type, body = connection.post(req)
                    latency = time.perf_counter() - t0
                    problem = answer_problem(status, content_type, body, spool)
                except Exception as exc:
                    latency, problem = time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"
                with lock:
                    if problem is None:
                        result.latencies.append(latency)
                    else:
                        result.failures.append(problem)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, name=f"client-{i}", daemon=True) for i in range(clients)]
    pid = node.process.pid
    t0, server0, client0, database0 = time.perf_counter(), tree_cpu_split(pid), time.process_time(), database_cpu()
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    except BaseException:
        stop.set()
        raise
    result.elapsed = time.perf_counter() - t0
    server1, result.client_cpu = tree_cpu_split(pid), time.process_time() - client0
    result.server_cpu = sum(server1) - sum(server0)
    result.server_system = server1[1] - server0[1]
    result.database_cpu = database_cpu() - database0
    return result


def profiled(py_spy: str, out: Path, pid: int, measure: Callable[[], RunResult]) -> RunResult:
    """Run ``measure`` while py-spy samples the GIL-holding thread (on-CPU Python time) of the server's workers
    (of the server itself when it has none), one py-spy per process, their collapsed stacks concatenated into
    ``out``. The supervisor of `--workers N` is left alone: it only reaps workers (attached to it under load,
    py-spy once made it shut the server down: ``server._supervisor.stop_requested``)."""
    pids = sorted(set(process_tree(pid)) - {pid}) or [pid]
    parts = [out.with_name(f"{out.name}.{p}") for p in pids]
    spies = [subprocess.Popen([py_spy, "record", "--pid", str(p), "--gil", "--format", "raw", "--rate", "250",
                               "--output", str(part)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for p, part in zip(pids, parts, strict=True)]
    try:
        time.sleep(1)  # let them attach
        return measure()
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output and exits
        for spy in spies:
            try:
                spy.wait(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
        with out.open("wb") as joined:
            for part in parts:
                if part.exists():
                    joined.write(part.read_bytes())
                    part.unlink()


def straced(out: Path, pid: int, measure: Callable[[], RunResult]) -> RunResult:
    """Run ``measure`` while ``strace -c -f`` counts the system calls of every thread of the server's processes
    (the supervisor and its workers), summary written to ``out``."""
    targets = [arg for p in process_tree(pid) for arg in ("-p", str(p))]
    tracer = subprocess.Popen(["strace", "-c", "-f", "-o", str(out), *targets],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)  # let it attach to every thread
        return measure()
    finally:
        tracer.send_signal(signal.SIGINT)  # strace detaches and writes its summary
        try:
            tracer.wait(timeout=60)
        except subprocess.TimeoutExpired:
            tracer.kill()
            tracer.wait()


def print_syscalls(summary: Path, documents: int) -> None:
    """The system calls per document of a ``strace -c`` summary, the most frequent first."""
    calls: list[tuple[str, int]] = []
    for line in summary.read_text().splitlines():
        cols = line.split()
        # "% time  seconds  usecs/call  calls  [errors]  syscall"; the total line's syscall is "total"
        if len(cols) >= 5 and cols[0].replace(".", "").isdigit() and cols[3].isdigit():
            calls.append((cols[-1], int(cols[3])))
    total = sum(n for name, n in calls if name != "total")
    print(f"system calls of the server per document (strace -c -f, {documents} documents): {total / documents:.1f}")
    print("  " + ", ".join(f"{name} {n / documents:.2f}" for name, n in sorted(calls, key=lambda c: -c[1])
                           if name != "total"))


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000, help="requests per run (default 2000)")
    ap.add_argument("--workers", type=int, default=1, help="server processes (`dmp serve --workers`, default 1)")
    ap.add_argument("--clients", default="1,8", help="comma-separated concurrency levels (default 1,8)")
    ap.add_argument("--warmup", type=int, default=100, help="requests sent before measuring (default 100)")
    ap.add_argument("--max-seconds", type=float, default=300, help="time bound of each run (default 300)")
    ap.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite",
                    help="the node's database: its SQLite file (default) or a throwaway PostgreSQL cluster with "
                         "durable settings (tests/support/pg.py; fsync and synchronous_commit on)")
    ap.add_argument("--sqlite-synchronous", choices=["FULL", "NORMAL", "OFF"],
                    help="override the node's sqlite_synchronous setting (default: the node's own, FULL)")
    ap.add_argument("--client", choices=sorted(CLIENTS), default="socket",
                    help="socket: keep-alive connections on plain sockets (default); http: http.client's, as in "
                         "sessions 6-12; httpx: httpx.Client, as before")
    ap.add_argument("--strace", type=Path, metavar="OUT",
                    help="count the server's system calls with `strace -c -f` during the last run (summary to OUT; "
                         "the calls per document are printed; strace slows the server: not a CPU or rate figure)")
    ap.add_argument("--pg-statements", action="store_true",
                    help="with --database postgresql: load pg_stat_statements and print, for the last run, the "
                         "statements, commits and WAL flushes of PostgreSQL per document")
    ap.add_argument("--patients", type=int, default=1,
                    help="spread the documents over this many patients, each with a DMP the professional may feed "
                         "(default 1: every request takes the same patient's access-history lock, the worst case; "
                         "a hospital's traffic spreads over its patients)")
    ap.add_argument("--keep-files", type=Path, metavar="DIR",
                    help="make the node in a new directory under DIR and leave its files (and the PostgreSQL "
                         "cluster's, stopped) at the end: deleting thousands of files makes the next minutes' "
                         "file creations in the same place cost 0.1-0.7 ms of system CPU each on ext4 without a "
                         "journal, one per document here (benchmarks/README.md, session 10 and session 13); "
                         "delete DIR when done, not between runs")
    ap.add_argument("--py-spy", type=Path, metavar="OUT",
                    help="record the server with py-spy (collapsed stacks to OUT) during the last run")
    args = ap.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    py_spy = shutil.which("py-spy") or str(Path(__file__).resolve().parent.parent / ".venv/bin/py-spy")

    patients = (PATIENT,) if args.patients <= 1 else tuple(patient_id(p) for p in range(args.patients))
    requests = encode_requests(args.warmup + args.requests * len(levels), patients)
    sizes = [len(r.body) for r in requests]
    print(f"ITI-41 throughput; {machine()}")
    print(f"node: {'SQLite' if args.database == 'sqlite' else 'PostgreSQL'} + filesystem blobs, `dmp serve` "
          f"({args.workers} worker process(es)); client: {args.client}; requests: MTOM, one CDA document each, "
          f"message {statistics.mean(sizes) / 1024:.1f} KiB on average; {len(patients)} patient(s)")
    overrides = {"sqlite_synchronous": args.sqlite_synchronous} if args.sqlite_synchronous else {}
    serve_args = ("--workers", str(args.workers)) if args.workers > 1 else ()
    with contextlib.ExitStack() as stack:
        server = None
        if args.database == "postgresql":
            server = stack.enter_context(durable_postgres_server(*(SETTINGS if args.pg_statements else ()),
                                                                 keep=args.keep_files is not None))
        if args.keep_files is not None:
            args.keep_files.mkdir(parents=True, exist_ok=True)
            tmp = tempfile.mkdtemp(prefix="dmp-bench-", dir=args.keep_files)
            print(f"files left in {tmp}" + (f" and {server.root}" if server else ""))
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="dmp-bench-"))
        node = stack.enter_context(node_in(Path(tmp) / "node", *serve_args,
                                           empty_database_url=server.url if server else None,
                                           patients=patients, **overrides))
        measure(args, node, Path(tmp), requests, levels, py_spy, server)


def measure(args: argparse.Namespace, node: RunningNode, tmp: Path, requests: list[Request], levels: list[int],
            py_spy: str, database: Any = None) -> None:
    """``database``: the ``pg.PostgresServer`` the node uses, or None (SQLite)."""
    pid = node.process.pid
    database_cpu: Callable[[], float] = (
        functools.partial(postgres_cpu_seconds, database.data) if database is not None else lambda: 0.0)
    stats = PgStats(database.url) if database is not None and args.pg_statements else None
    pg_before = pg_after = None
    spool = Path(tmp) / "client-spool"
    spool.mkdir()
    warm = run(node, requests[: args.warmup], 2, args.max_seconds, spool, args.client, database_cpu)
    print(f"warm-up: {warm.sent} requests, {len(warm.failures)} failures; "
          f"server peak RSS {tree_rss_mb(pid):.1f} MB")
    start = args.warmup
    print(f"{'clients':>7} {'sent':>6} {'failures':>8} {'docs/s':>8} {'p50 ms':>8} {'p90 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8} {'peak RSS MB':>12} {'srv CPU ms/doc':>14} {'srv sys ms/doc':>14} "
          f"{'srv CPU %':>9} "
          f"{'cli CPU %':>9} {'cli CPU ms/req':>14} {'PSS MB':>7} {'yardstick s':>11}"
          + (f" {'pg CPU ms/doc':>13} {'node+pg ms/doc':>14}" if database is not None else ""))
    results = []
    for n, clients in enumerate(levels):
        batch = requests[start : start + args.requests]
        start += args.requests
        clear_peak_rss(pid)
        last = n == len(levels) - 1
        if stats is not None and last:
            pg_before = stats.snapshot()
        if args.py_spy and n == len(levels) - 1:
            res = profiled(py_spy, args.py_spy, pid,
                           functools.partial(run, node, batch, clients, args.max_seconds, spool, args.client,
                                             database_cpu))
        elif args.strace and n == len(levels) - 1:
            res = straced(args.strace, pid,
                          functools.partial(run, node, batch, clients, args.max_seconds, spool, args.client,
                                             database_cpu))
        else:
            res = run(node, batch, clients, args.max_seconds, spool, args.client, database_cpu)
        if stats is not None and last:
            pg_after = stats.snapshot()
        lat = sorted(x * 1000 for x in res.latencies)
        print(f"{clients:>7} {res.sent:>6} {len(res.failures):>8} {len(res.latencies) / res.elapsed:>8.1f} "
              f"{percentile(lat, 50):>8.1f} {percentile(lat, 90):>8.1f} {percentile(lat, 99):>8.1f} "
              f"{(lat[-1] if lat else float('nan')):>8.1f} {tree_rss_mb(pid):>12.1f} "
              f"{1000 * res.server_cpu / max(1, res.sent):>14.2f} {1000 * res.server_system / max(1, res.sent):>14.2f} "
              f"{100 * res.server_cpu / res.elapsed:>9.0f} "
              f"{100 * res.client_cpu / res.elapsed:>9.0f} {1000 * res.client_cpu / max(1, res.sent):>14.2f} "
              f"{tree_pss_mb(pid):>7.1f} {yardstick():>11.3f}"
              + (f" {1000 * res.database_cpu / max(1, res.sent):>13.2f} "
                 f"{1000 * (res.server_cpu + res.database_cpu) / max(1, res.sent):>14.2f}"
                 if database is not None else ""))
        results.append(res)
    print("server processes, RSS / PSS now (MB), CPU since start (s): "
          + ", ".join(f"{p} {rss_mb(p):.1f} / {pss_mb(p):.1f} {cpu_seconds(p):.1f}s"
                      for p in sorted(process_tree(pid))))
    for res in results:
        for problem in res.failures[:5]:
            print(f"  failure ({res.clients} clients): {problem[:300]}")
    best = max(len(r.latencies) / r.elapsed for r in results)
    print(f"best: {best:.1f} docs/s (target {TARGET_DOCS_PER_S} docs/s: "
          f"{'met' if best >= TARGET_DOCS_PER_S else 'NOT met'}); failures: "
          f"{sum(len(r.failures) for r in results)}")
    if pg_before is not None and pg_after is not None:
        print_per_document(pg_before, pg_after, results[-1].sent)
    if args.strace:
        print_syscalls(args.strace, results[-1].sent)
    if args.py_spy:
        written = args.py_spy.exists() and args.py_spy.stat().st_size > 0
        print(f"py-spy profile (GIL holder, collapsed stacks) of the {levels[-1]}-client run: {args.py_spy}"
              + ("" if written else " -- NOT written: is py-spy installed, and may it ptrace?"))


if __name__ == "__main__":
    main()
