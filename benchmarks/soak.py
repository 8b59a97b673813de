"""Soak: N clients for M minutes of mixed XDS traffic against one `dmp serve` (SQLite or PostgreSQL + filesystem
blobs; one process, or `--workers N`).

Each client loops over: ITI-41 (one ~10 KB CDA as an MTOM attachment, for one of 50 patients), ITI-18
GetDocuments of that uniqueId, ITI-43 Retrieve of it (bytes compared), every fourth round ITI-57 (Approved ->
Archived), and ITI-18 FindDocuments (ObjectRef) of the patient. Every request carries its own fresh VIHF for
that patient. Prints, per minute, the operations done, ITI-41 documents stored, errors, and the server's RSS and
PSS (all its processes); then the totals. Targets (issue 13): 0 errors; RSS flat after warm-up.

    .venv/bin/python benchmarks/soak.py [--clients 8] [--minutes 10] [--patients 50] [--no-vihf]
                                        [--database postgresql] [--workers 2]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from _cda import consultation_report
from _harness import _end, durable_postgres_server, machine, tree_pss_mb, tree_rss_mb
from lxml import etree
from nodes import make_node, start_node
from vihf_client import alice_claims, fresh_vihf, patient_ins
from xds_client import ITI18, ITI41, ITI43, ITI57, adhoc_query, envelope, parse_reply, retrieve_request
from xds_factory import REPOSITORY_ID, Doc, content_id, provide_and_register, submission_set, submit_objects_request

from registry import _model
from registry._vocabulary import AssociationType
from soap_wsdl import OutgoingAttachment, mtom_content_type, mtom_stream, new_boundary, ns

GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
ARCHIVED = "urn:asip:ci-sis:2010:StatusType:Archived"


def patients(count: int) -> list[str]:
    """``count`` valid INS-NIR patient ids (13 digits + key 97 - n mod 97)."""
    out = []
    for i in range(count):
        n = int(f"1840675{123000 + i:06d}")
        out.append(f"{n}{97 - n % 97:02d}^^^&1.2.250.1.213.1.4.10&ISO")
    return out


@dataclass
class Tally:
    ops: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def done(self, op: str) -> None:
        with self.lock:
            self.ops[op] += 1

    def failed(self, op: str, why: str) -> None:
        with self.lock:
            self.ops["errors"] += 1
            self.errors.append(f"{op}: {why[:300]}")


def post(client: httpx.Client, url: str, action: str, body: etree._Element, patient: str, *,
         attachments: list[OutgoingAttachment] | None = None, spool: Path) -> object:
    env = envelope(action, body, vihf=fresh_vihf(claims=alice_claims(patient=patient_ins(patient))))
    if attachments is not None:
        boundary, root = new_boundary(), "root@soak"
        content: bytes = b"".join(mtom_stream(env, attachments, boundary, root))
        ctype = mtom_content_type(boundary, root, action)
    else:
        content, ctype = env, f'application/soap+xml; charset=UTF-8; action="{action}"'
    r = client.post(url, content=content, headers={"Content-Type": ctype})
    return parse_reply(r.status_code, r.headers.get("content-type", ""), r.content, spool)


def client_loop(url: str, pool: list[str], index: int, stop: threading.Event, tally: Tally, spool: Path) -> None:
    repository, registry = f"{url}/xds/repository", f"{url}/xds/registry"
    round_no = 0
    with httpx.Client(timeout=120) as client:
        while not stop.is_set():
            round_no += 1
            patient = pool[(index * 7 + round_no) % len(pool)]
            doc = Doc(b"", "Document01", mime_type="text/xml", patient_id=patient)
            doc.content = consultation_report(doc.unique_id, patient, index * 1_000_000 + round_no)
            step = "ITI-41"
            try:
                reply = post(client, repository, ITI41, provide_and_register([doc]), patient, spool=spool,
                             attachments=[OutgoingAttachment(content_id(doc), doc.mime_type, doc.content)])
                if reply.status != "Success":  # type: ignore[attr-defined]
                    raise AssertionError(f"{reply.status} {reply.errors or reply.fault_reason}")  # type: ignore[attr-defined]
                tally.done(step)
                step = "ITI-18 GetDocuments"
                reply = post(client, registry, ITI18, adhoc_query(GET_DOCUMENTS, [
                    ("$XDSDocumentEntryUniqueId", [f"('{doc.unique_id}')"])]), patient, spool=spool)
                (entry,) = reply.body.iter(f"{{{ns.RIM}}}ExtrinsicObject")  # type: ignore[attr-defined]
                tally.done(step)
                step = "ITI-43"
                reply = post(client, repository, ITI43, retrieve_request(REPOSITORY_ID, [doc.unique_id]), patient,
                             spool=spool)
                if reply.documents() != {doc.unique_id: doc.content}:  # type: ignore[attr-defined]
                    raise AssertionError("retrieved bytes differ")
                reply.mime.discard()  # type: ignore[attr-defined]
                tally.done(step)
                if round_no % 4 == 0:
                    step = "ITI-57"
                    ss = submission_set(patient)
                    upd = _model.association_to_rim(_model.Association(
                        entry_uuid="Upd01", association_type=AssociationType.UPDATE_AVAILABILITY_STATUS.value,
                        source=ss.entry_uuid, target=entry.get("id"), original_status=APPROVED,
                        new_status=ARCHIVED))
                    reply = post(client, registry, ITI57, submit_objects_request([], ss=ss, extra=[upd]), patient,
                                 spool=spool)
                    if reply.status != "Success":  # type: ignore[attr-defined]
                        raise AssertionError(f"{reply.status} {reply.errors or reply.fault_reason}")  # type: ignore[attr-defined]
                    tally.done(step)
                step = "ITI-18 FindDocuments"
                reply = post(client, registry, ITI18, adhoc_query(FIND_DOCUMENTS, [
                    ("$XDSDocumentEntryPatientId", [f"'{patient}'"]),
                    ("$XDSDocumentEntryStatus", [f"('{APPROVED}','{ARCHIVED}')"])], return_type="ObjectRef"),
                    patient, spool=spool)
                if reply.status != "Success":  # type: ignore[attr-defined]
                    raise AssertionError(f"{reply.status} {reply.errors or reply.fault_reason}")  # type: ignore[attr-defined]
                tally.done(step)
            except Exception as exc:
                tally.failed(step, f"{type(exc).__name__}: {exc}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--patients", type=int, default=50)
    parser.add_argument("--no-vihf", action="store_true",
                        help="diagnosis: serve with --no-vihf (no verification, no replay store) to compare")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                        help="the node's SQLite file (default) or a throwaway durable PostgreSQL cluster")
    parser.add_argument("--workers", type=int, default=1, help="server processes (`dmp serve --workers`)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"soak: {args.clients} clients, {args.minutes:g} min, {args.patients} patients, "
          f"{'SQLite' if args.database == 'sqlite' else 'PostgreSQL'} + blobs, {args.workers} process(es)"
          + (", server --no-vihf" if args.no_vihf else ""))
    with durable_postgres_server() if args.database == "postgresql" else contextlib.nullcontext() as server:
        soak(args, server.url if server is not None else None)


def memory(pid: int) -> str:
    """RSS and PSS of the server's processes, summed: with `--workers N` the RSS counts the pages the workers
    share with their supervisor once per process; the PSS counts each page once in all."""
    return f"{tree_rss_mb(pid, 'VmRSS'):>13.1f} {tree_pss_mb(pid):>7.1f}"


def soak(args: argparse.Namespace, database_url: str | None) -> None:
    work = Path(tempfile.mkdtemp(prefix="dmp-soak-"))
    pool = patients(args.patients)
    serve_args = ["--no-vihf"] if args.no_vihf else []
    if args.workers > 1:
        serve_args += ["--workers", str(args.workers)]
    node = start_node(make_node(work / "node", database_url=database_url, patients=tuple(pool)), *serve_args)
    try:
        tally, stop = Tally(), threading.Event()
        spool = work / "client-spool"
        spool.mkdir()
        threads = [threading.Thread(target=client_loop, args=(node.url, pool, i, stop, tally, spool), daemon=True)
                   for i in range(args.clients)]
        start = time.monotonic()
        print(f"{'min':>4} {'ops':>7} {'ITI-41 docs':>11} {'errors':>6} {'server RSS MB':>13} {'PSS MB':>7}")
        print(f"{0:>4} {0:>7} {0:>11} {0:>6} {memory(node.process.pid)}")
        for t in threads:
            t.start()
        previous: Counter[str] = Counter()
        minute = 0
        while minute < args.minutes:
            minute += 1
            time.sleep(max(0.0, start + 60 * min(minute, args.minutes) - time.monotonic()))
            with tally.lock:
                now = Counter(tally.ops)
            delta = now - previous
            previous = now
            ops = sum(v for k, v in delta.items() if k != "errors")
            print(f"{minute:>4} {ops:>7} {delta['ITI-41']:>11} {delta['errors']:>6} {memory(node.process.pid)}",
                  flush=True)
        stop.set()
        for t in threads:
            t.join(timeout=180)
        elapsed = time.monotonic() - start
        total = sum(v for k, v in tally.ops.items() if k != "errors")
        print(f"total: {total} operations in {elapsed:.0f} s ({total / elapsed:.1f}/s), "
              f"{tally.ops['ITI-41']} documents stored, {tally.ops['errors']} errors")
        print("by transaction: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.ops.items())))
        for line in tally.errors[:10]:
            print(f"  error: {line}")
    finally:
        _end(node)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
