"""The same large document through ITI-41 and ITI-43 on the filesystem blob store and on the S3 one (a local
SeaweedFS on 127.0.0.1, telemetry off): MB/s per direction and the server's peak RSS (VmHWM) per direction.

    .venv/bin/python benchmarks/blob_store.py [--size-mb 64 256] [--runs 2] [--dir /tmp]

The node runs on SQLite with VIHF and consent checks as in production. With S3 the document goes client ->
node spool -> SeaweedFS (multipart, 8 MiB parts) on upload and SeaweedFS -> node -> client on download, all on
this machine: the figures compare the stores' overhead, not a network. 1 MB = 2^20 bytes here."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
from _cda import consultation_report
from _harness import RunningNode, clear_peak_rss, machine, peak_rss_mb
from large_document import MB, make_document, provide, retrieve
from nodes import make_node, start_node  # importable once _harness has put tests/support on sys.path
from seaweed import SeaweedServer
from xds_client import ITI41, post
from xds_factory import PATIENT, Doc, content_id, provide_and_register

from soap_wsdl import OutgoingAttachment


@contextlib.contextmanager
def node_with(store: str, work: Path, seaweed: SeaweedServer | None) -> Iterator[RunningNode]:
    cfg = make_node(work / f"node-{store}")
    if seaweed is not None:
        cfg = dataclasses.replace(cfg, blob_store_url=f"s3://{seaweed.create_bucket()}/bench",
                                  s3_endpoint_url=seaweed.endpoint_url)
        cfg.save()
    node = start_node(cfg)
    try:
        yield node
    finally:
        node.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--runs", type=int, default=2, help="runs per size and store; the best is printed")
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--small", type=int, default=300, help="CDA documents (one per ITI-41) for the docs/s phase")
    ap.add_argument("--clients", type=int, default=4, help="concurrent clients of the docs/s phase")
    args = ap.parse_args()
    print(f"blob stores, filesystem vs S3 (SeaweedFS on 127.0.0.1); {machine()}")
    with tempfile.TemporaryDirectory(prefix="dmp-bench-blobs-", dir=args.dir) as tmp:
        work = Path(tmp)
        seaweed = SeaweedServer(work / "seaweed")
        seaweed.start()
        for name, value in seaweed.environment.items():
            os.environ[name] = value
        try:
            print(f"{'store':<10} {'size MB':>7} {'ITI-41 MB/s':>11} {'peak RSS MB':>11} {'ITI-43 MB/s':>11} "
                  f"{'peak RSS MB':>11}  check")
            for size_mb in args.size_mb:
                source = work / f"doc-{size_mb}.bin"
                sha1 = make_document(source, size_mb)
                for store in ("filesystem", "s3"):
                    spool = work / "client-spool"
                    spool.mkdir(exist_ok=True)
                    with node_with(store, work / f"{store}-{size_mb}", seaweed if store == "s3" else None) as node, \
                            httpx.Client(timeout=httpx.Timeout(600, connect=10)) as http:
                        best_up = best_down = 0.0
                        rss_up = rss_down = 0.0
                        check = "ok"
                        for _ in range(args.runs):
                            clear_peak_rss(node.process.pid)
                            doc, up_s, status = provide(node, http, source, size_mb * MB, sha1, spool)
                            rss_up = max(rss_up, peak_rss_mb(node.process.pid))
                            clear_peak_rss(node.process.pid)
                            down_s, got_sha1, got_size, down_status = retrieve(node, http, doc.unique_id, spool)
                            rss_down = max(rss_down, peak_rss_mb(node.process.pid))
                            if status != "Success" or got_sha1 != sha1 or got_size != size_mb * MB:
                                check = f"FAILED: {status} / {down_status} {got_sha1} {got_size}"
                            best_up, best_down = max(best_up, size_mb / up_s), max(best_down, size_mb / down_s)
                    print(f"{store:<10} {size_mb:>7} {best_up:>11.0f} {rss_up:>11.1f} {best_down:>11.0f} "
                          f"{rss_down:>11.1f}  {check}", flush=True)
                source.unlink()
            print(f"\nsmall documents: {args.small} ITI-41 requests, one CDA each, {args.clients} clients")
            for store in ("filesystem", "s3"):
                with node_with(store, work / f"{store}-small", seaweed if store == "s3" else None) as node:
                    rate, failures = small_documents(node, args.small, args.clients)
                print(f"{store:<10} {rate:>6.1f} docs/s, failures {failures}", flush=True)
        finally:
            seaweed.remove()


def small_documents(node: RunningNode, count: int, clients: int) -> tuple[float, int]:
    """ITI-41 of ``count`` one-document submissions (a CDA report each) from ``clients`` threads."""
    docs = []
    for i in range(count):
        uid = f"1.2.250.1.999.1.1.8121.7.{uuid.uuid4().int % 10**12}.{i}"
        content = consultation_report(uid, PATIENT, i)
        docs.append(Doc(content, "Document01", unique_id=uid, mime_type="text/xml"))
    failures: list[str] = []
    queue = list(reversed(docs))
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(timeout=120) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    d = queue.pop()
                reply = post(node.repository, ITI41, provide_and_register([d]), client=http,
                             attachments=[OutgoingAttachment(content_id(d), d.mime_type, d.content)])
                if reply.status != "Success":
                    failures.append(str(reply.errors))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return count / (time.perf_counter() - t0), len(failures)


if __name__ == "__main__":
    main()
