"""A large document through a node: ITI-41 (MTOM upload streamed from a file) and ITI-43 (MTOM download
streamed to a file), compared with what the machine does with the same file (``sha1sum`` + ``cp``).

Prints MB/s per direction against the baseline and the server's peak RSS (VmHWM) per direction, which must
not grow with the document. 1 MB = 2^20 bytes here.

    .venv/bin/python benchmarks/large_document.py [--size-mb 1024] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from _harness import RunningNode, clear_peak_rss, cpu_seconds, machine, node_in, peak_rss_mb
from xds_client import ITI41, ITI43, Reply, envelope, parse_reply, retrieve_request
from xds_factory import REPOSITORY_ID, Doc, content_id, provide_and_register

from soap_wsdl import MtomDecoder, OutgoingAttachment, mtom_content_type, mtom_stream, new_boundary, ns, parse_xml

MB = 1024 * 1024
TARGET_SHARE = 0.5  # of the baseline MB/s, each direction
TARGET_RSS_MB = 150


def make_document(path: Path, size_mb: int) -> str:
    """Write ``size_mb`` MB of incompressible bytes (one random MB, each copy stamped with its index, so no two
    blocks are equal) without holding more than a block in memory. Returns the SHA-1."""
    block = bytearray(os.urandom(MB))
    sha1 = hashlib.sha1(usedforsecurity=False)
    with path.open("wb") as f:
        for i in range(size_mb):
            block[:8] = i.to_bytes(8, "little")
            f.write(block)
            sha1.update(block)
    return sha1.hexdigest()


def baseline(path: Path, sha1: str) -> tuple[float, float]:
    """Best of two runs each of ``sha1sum FILE`` and ``cp FILE COPY`` (the copy removed after each run)."""
    copy = path.with_name(path.name + ".copy")
    t_sha1 = t_cp = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        out = subprocess.run(["sha1sum", str(path)], check=True, capture_output=True, text=True).stdout
        t_sha1 = min(t_sha1, time.perf_counter() - t0)
        if out.split()[0] != sha1:
            raise RuntimeError(f"sha1sum gives {out.split()[0]}, the generator computed {sha1}")
        t0 = time.perf_counter()
        subprocess.run(["cp", str(path), str(copy)], check=True)
        t_cp = min(t_cp, time.perf_counter() - t0)
        copy.unlink()
    return t_sha1, t_cp


def provide(node: RunningNode, http: httpx.Client, path: Path, size: int, sha1: str, spool: Path
            ) -> tuple[Doc, float, str]:
    """ITI-41 with the file as an MTOM attachment read in chunks by `mtom_stream`. Returns the document, the
    seconds from the first byte sent to the answer, and the answer's status."""
    doc = Doc(b"", "Document01", mime_type="application/octet-stream", hash_override=sha1, size_override=str(size))
    env = envelope(ITI41, provide_and_register([doc]))
    boundary, root = new_boundary(), f"root.{uuid.uuid4().hex}@bench.dmp-xds"
    # The framing alone (attachment empty) plus the document: an exact Content-Length, no chunked encoding.
    framing = sum(len(b) for b in mtom_stream(env, [OutgoingAttachment(content_id(doc), doc.mime_type, b"")],
                                              boundary, root))
    body = mtom_stream(env, [OutgoingAttachment(content_id(doc), doc.mime_type, path)], boundary, root,
                       chunk_size=MB)
    headers = {"Content-Type": mtom_content_type(boundary, root, ITI41), "Content-Length": str(framing + size)}
    t0 = time.perf_counter()
    r = http.post(node.repository, content=body, headers=headers)
    elapsed = time.perf_counter() - t0
    reply = parse_reply(r.status_code, r.headers.get("content-type", ""), r.content, spool)
    status = reply.status if r.status_code == 200 else f"HTTP {r.status_code}: {reply.fault_reason}"
    if reply.mime is not None:
        reply.mime.discard()
    return doc, elapsed, status if status == "Success" else f"{status} {reply.errors}"


def retrieve(node: RunningNode, http: httpx.Client, unique_id: str, spool: Path) -> tuple[float, str, int, str]:
    """ITI-43, the answer streamed through `MtomDecoder` into ``spool``. Returns the seconds from the request to
    the last byte on disk, the SHA-1 and size of the document that arrived, and the answer's status."""
    env = envelope(ITI43, retrieve_request(REPOSITORY_ID, [unique_id]))
    boundary, root = new_boundary(), f"root.{uuid.uuid4().hex}@bench.dmp-xds"
    request = b"".join(mtom_stream(env, [], boundary, root))
    headers = {"Content-Type": mtom_content_type(boundary, root, ITI43)}
    t0 = time.perf_counter()
    with http.stream("POST", node.repository, content=request, headers=headers) as r:
        decoder = MtomDecoder(r.headers.get("content-type", ""), spool)
        try:
            for chunk in r.iter_raw():  # as received (64 KiB reads): re-chunking would copy every byte once more
                decoder.feed(chunk)
            message = decoder.close()
        except BaseException:
            decoder.discard()
            raise
    elapsed = time.perf_counter() - t0
    try:
        reply = Reply(r.status_code, parse_xml(message.root), message, r.headers["content-type"])
        include = reply.body.find(f"{{{ns.XDSB}}}DocumentResponse/{{{ns.XDSB}}}Document/{{{ns.XOP}}}Include")
        attachment = message.resolve(include.get("href", "")) if include is not None else None
        if attachment is None:
            return elapsed, "", 0, f"{reply.status}: no document in the answer {reply.errors}"
        return elapsed, attachment.sha1, attachment.size, reply.status
    finally:
        message.discard()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024, help="document size in MB of 2^20 bytes (default 1024)")
    ap.add_argument("--dir", type=Path, default=None, help="where the temporary directory goes (default: $TMPDIR)")
    args = ap.parse_args()
    size = args.size_mb * MB
    print(f"large document: {args.size_mb} MB; {machine()}")
    with tempfile.TemporaryDirectory(prefix="dmp-bench-large-", dir=args.dir) as tmp:
        work = Path(tmp)
        source = work / "document.bin"
        t0 = time.perf_counter()
        sha1 = make_document(source, args.size_mb)
        print(f"generated {source.name} in {time.perf_counter() - t0:.1f} s, SHA-1 {sha1}")
        t_sha1, t_cp = baseline(source, sha1)
        base = args.size_mb / (t_sha1 + t_cp)
        print(f"baseline: sha1sum {t_sha1:.2f} s + cp {t_cp:.2f} s -> {base:.0f} MB/s "
              f"(target per direction: >= {TARGET_SHARE * base:.0f} MB/s)")
        spool = work / "client-spool"
        spool.mkdir()
        with node_in(work / "node") as node, httpx.Client(timeout=httpx.Timeout(600, connect=10)) as http:
            pid = node.process.pid
            print(f"server idle: peak RSS {peak_rss_mb(pid):.1f} MB")
            failures = 0
            for name, run in (("ITI-41 upload", "41"), ("ITI-43 download", "43")):
                clear_peak_rss(pid)
                clear_peak_rss(os.getpid())
                server_cpu, client_cpu = cpu_seconds(pid), time.process_time()
                if run == "41":
                    doc, elapsed, status = provide(node, http, source, size, sha1, spool)
                    check = status
                else:
                    elapsed, got_sha1, got_size, status = retrieve(node, http, doc.unique_id, spool)
                    intact = got_sha1 == sha1 and got_size == size
                    check = f"{status}, SHA-1 {'matches' if intact else 'DIFFERS: ' + got_sha1}, {got_size} bytes"
                    status = status if intact else "corrupt"
                server_cpu, client_cpu = cpu_seconds(pid) - server_cpu, time.process_time() - client_cpu
                failures += status != "Success"
                rate = args.size_mb / elapsed
                server_rss, client_rss = peak_rss_mb(pid), peak_rss_mb(os.getpid())
                print(f"{name}: {elapsed:.2f} s, {rate:.0f} MB/s = {100 * rate / base:.0f}% of baseline "
                      f"({'met' if rate >= TARGET_SHARE * base else 'NOT met'}); server peak RSS {server_rss:.1f} MB "
                      f"({'<' if server_rss < TARGET_RSS_MB else 'NOT <'} {TARGET_RSS_MB}); client peak RSS "
                      f"{client_rss:.1f} MB; CPU s server {server_cpu:.2f}, client {client_cpu:.2f}; {check}")
                if status != "Success":
                    break
            print(f"failures: {failures}")


if __name__ == "__main__":
    main()
