"""Security costs (issue 5): the latency VIHF verification adds to an ITI-18 FindDocuments, and the mutual-TLS
handshake rate.

1. One node (SQLite + blobs) holding ``--documents`` documents of one patient. ITI-18 FindDocuments (LeafClass)
   is sent ``--requests`` times over one keep-alive plain-HTTP connection, first to the node as configured
   (VIHF required), then to the same data served with ``--no-vihf``. Every request carries a fresh signed VIHF
   in both runs (signed before the clock starts), so the difference is the server's verification alone.
2. The same node served with ``--tls``: ``GET /health`` with a new connection (full TLS handshake with client
   certificate, no session resumption) per request, from 1 and from 4 client threads.

    .venv/bin/python benchmarks/security.py [--requests 400] [--documents 20] [--handshakes 300]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from _harness import RunningNode, machine
from nodes import make_node, start_node, tls_client_context
from xds_client import ITI18, ITI41, adhoc_query, envelope, parse_reply, post
from xds_factory import PATIENT, Doc, content_id, provide_and_register

from soap_wsdl import OutgoingAttachment

FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
APPROVED = "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"


def find_documents() -> bytes:
    """An ITI-18 envelope with a fresh signed VIHF."""
    return envelope(ITI18, adhoc_query(FIND_DOCUMENTS, [("$XDSDocumentEntryPatientId", [f"'{PATIENT}'"]),
                                                        ("$XDSDocumentEntryStatus", [APPROVED])]))


def latencies(node: RunningNode, bodies: list[bytes], expected: int) -> list[float]:
    out = []
    headers = {"Content-Type": f'application/soap+xml; charset=UTF-8; action="{ITI18}"'}
    with httpx.Client(timeout=60) as http:
        for i, body in enumerate(bodies):
            start = time.perf_counter()
            r = http.post(node.registry, content=body, headers=headers)
            elapsed = time.perf_counter() - start
            reply = parse_reply(r.status_code, r.headers.get("content-type", ""), r.content)
            if r.status_code != 200 or reply.status != "Success" or len(reply.body[-1]) != expected:
                raise RuntimeError(f"request {i}: HTTP {r.status_code} {reply.fault_reason or reply.errors}")
            out.append(elapsed)
    return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def summary(name: str, values: list[float]) -> str:
    return (f"{name}: p50 {pct(values, 50):.2f} ms, p99 {pct(values, 99):.2f} ms, "
            f"mean {statistics.fmean(values) * 1000:.2f} ms ({len(values)} requests)")


def handshakes(node: RunningNode, count: int, threads: int) -> float:
    context = tls_client_context()
    no_reuse = httpx.Limits(max_keepalive_connections=0)

    def one(_: int) -> None:
        with httpx.Client(verify=context, limits=no_reuse, timeout=30) as http:
            if http.get(f"{node.url}/health").status_code != 200:
                raise RuntimeError("health check failed")

    for i in range(20):   # warm-up
        one(i)
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(count)))
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--documents", type=int, default=20)
    parser.add_argument("--handshakes", type=int, default=300)
    args = parser.parse_args()
    print(f"security benchmark; {machine()}")
    work = Path(tempfile.mkdtemp(prefix="dmp-bench-security-"))
    try:
        cfg = make_node(work / "node")
        node = start_node(cfg)
        try:
            with httpx.Client(timeout=60) as http:
                for i in range(args.documents):
                    d = Doc(f"document {i}\r\n".encode(), "Document01")
                    reply = post(node.repository, ITI41, provide_and_register([d]), client=http,
                                 attachments=[OutgoingAttachment(content_id(d), d.mime_type, d.content)])
                    assert reply.status == "Success", reply.errors
            warm = [find_documents() for _ in range(30)]
            on_bodies = [find_documents() for _ in range(args.requests)]
            latencies(node, warm, args.documents)
            on = latencies(node, on_bodies, args.documents)
        finally:
            node.stop()
        node = start_node(cfg, "--no-vihf")
        try:
            off_bodies = [find_documents() for _ in range(args.requests)]
            latencies(node, warm, args.documents)
            off = latencies(node, off_bodies, args.documents)
        finally:
            node.stop()
        print(f"ITI-18 FindDocuments ({args.documents} LeafClass entries), one keep-alive connection, plain HTTP:")
        print("  " + summary("VIHF verified  ", on))
        print("  " + summary("--no-vihf      ", off))
        print(f"  added by verification: p50 {pct(on, 50) - pct(off, 50):+.2f} ms, "
              f"mean {(statistics.fmean(on) - statistics.fmean(off)) * 1000:+.2f} ms")

        node = start_node(cfg, "--tls")
        try:
            for threads in (1, 4):
                rate = handshakes(node, args.handshakes, threads)
                print(f"mTLS: {rate:.0f} new connections/s (GET /health, full handshake with client certificate, "
                      f"{threads} client thread(s))")
        finally:
            node.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
