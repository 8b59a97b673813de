"""CPU per document of the spool and blob store path alone, in this process: an ITI-41-sized MTOM message
(one ~11 KB document) decoded to its spool file, stored pending (``FilesystemBlobStore.add``), committed, the
spool file discarded: the file creations, fsyncs, links and unlinks of one document, without HTTP or SQL.
User and system CPU per document (``getrusage``) after a warm-up; system time here depends on the
filesystem's state (benchmarks/README.md, issue 13: inode creation after recent deletions).

    .venv/bin/python benchmarks/blob_store_cpu.py [--documents 1500] [--dir DIR] [--sidecars]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import uuid
from pathlib import Path

from _harness import machine

from repository import FilesystemBlobStore
from soap_wsdl import MtomDecoder, OutgoingAttachment, mtom_content_type, mtom_stream, new_boundary

WARMUP = 200


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--documents", type=int, default=1500)
    ap.add_argument("--dir", type=Path, default=None, help="where the store's temporary directory is made")
    ap.add_argument("--sidecars", action="store_true", help="metadata in sidecar files, not extended attributes")
    args = ap.parse_args()
    content = os.urandom(5500).hex().encode()
    messages = []
    for i in range(WARMUP + args.documents):
        boundary = new_boundary()
        body = b"".join(mtom_stream(b"<root/>", [OutgoingAttachment(f"doc{i}@bench", "text/xml", content)],
                                    boundary, "root@bench"))
        messages.append((mtom_content_type(boundary, "root@bench", None), body))
    with tempfile.TemporaryDirectory(prefix="dmp-bench-", dir=args.dir) as tmp:
        store = FilesystemBlobStore(Path(tmp) / "blobs", sidecars=True if args.sidecars else None)

        def one(i: int) -> None:
            content_type, body = messages[i]
            decoder = MtomDecoder(content_type, store.spool)
            decoder.feed(body)
            message = decoder.close()
            part = message.resolve(f"cid:doc{i}@bench")
            assert part is not None
            blob = store.add(f"1.2.250.1.999.{uuid.uuid4().int}", part.path, mime_type="text/xml", size=part.size,
                             sha1=part.sha1)
            assert blob is not None
            store.commit([blob])
            message.discard()

        for i in range(WARMUP):
            one(i)
        before = resource.getrusage(resource.RUSAGE_SELF)
        for i in range(WARMUP, WARMUP + args.documents):
            one(i)
        after = resource.getrusage(resource.RUSAGE_SELF)
    n = args.documents
    print(f"spool + blob store CPU per document; {machine()}")
    print(f"metadata: {'sidecar files' if store.sidecars else 'extended attributes'}; {n} documents; "
          f"user {1000 * (after.ru_utime - before.ru_utime) / n:.3f} ms/doc, "
          f"system {1000 * (after.ru_stime - before.ru_stime) / n:.3f} ms/doc")


if __name__ == "__main__":
    main()
