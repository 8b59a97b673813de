"""Several nodes, one DMP (docs/deployment.md): two `dmp serve` processes on two data directories sharing one
PostgreSQL and one S3 object storage (a real SeaweedFS on 127.0.0.1). A document filed through one is found
and retrieved through the other, a VIHF used on one is refused on the other, a large document streams
through both in bounded memory, and neither object storage going down nor a node dying mid-upload leaves a
document half-visible."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from nodes import RunningNode, database_url, make_node, start_node
from seaweed import SeaweedServer
from vihf_client import fresh_vihf
from xds_client import ITI18, ITI41, ITI43, Reply, adhoc_query, envelope, post, retrieve_request
from xds_factory import PATIENT, REPOSITORY_ID, Doc, content_id, provide_and_register

from registry import Problem
from server import Config
from soap_wsdl import OutgoingAttachment, ns

MiB = 1024 * 1024
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"


@dataclasses.dataclass
class Dmp:
    """Two nodes of one DMP, and what they share."""

    a: RunningNode
    b: RunningNode
    seaweed: SeaweedServer
    bucket: str
    configs: list[Config]


@pytest.fixture(scope="module")
def dmp(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Dmp]:
    seaweed = SeaweedServer(tmp_path_factory.mktemp("seaweed"))
    seaweed.start()
    nodes: list[RunningNode] = []
    try:
        with pytest.MonkeyPatch.context() as env:
            for name, value in seaweed.environment.items():   # boto3's default chain, as in production
                env.setenv(name, value)
            bucket = seaweed.create_bucket()
            configs = shared_configs(tmp_path_factory, request, seaweed, bucket)
            nodes += [start_node(configs[0]), start_node(configs[1])]
            yield Dmp(nodes[0], nodes[1], seaweed, bucket, configs)
    finally:
        for n in nodes:
            n.stop()
        seaweed.remove()


def shared_configs(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest,
                   seaweed: SeaweedServer, bucket: str) -> list[Config]:
    """Two data directories with the same database URL, blob store and repositoryUniqueId."""
    first = make_node(tmp_path_factory.mktemp("node-a"), database_url=database_url("postgresql", request))
    first = dataclasses.replace(first, blob_store_url=f"s3://{bucket}/dmp", s3_endpoint_url=seaweed.endpoint_url)
    first.save()
    second_dir = tmp_path_factory.mktemp("node-b")
    second = dataclasses.replace(first, data_dir=second_dir)
    second.save()
    return [first, second]


def provide(node: RunningNode, docs: list[Doc], **kw: object) -> Reply:
    return post(node.repository, ITI41, provide_and_register(docs),
                attachments=[OutgoingAttachment(content_id(d), d.mime_type, d.content) for d in docs], **kw)


def retrieve(node: RunningNode, uids: list[str]) -> Reply:
    return post(node.repository, ITI43, retrieve_request(REPOSITORY_ID, uids))


def registered(node: RunningNode, uid: str) -> list[str]:
    reply = post(node.registry, ITI18, adhoc_query(GET_DOCUMENTS, [
        ("$XDSDocumentEntryUniqueId", [f"('{uid}')"])], return_type="ObjectRef"), mtom=False)
    assert reply.status == "Success", reply.errors
    return [r.get("id") for r in reply.body.iter(f"{{{ns.RIM}}}ObjectRef")]


def test_filed_through_one_node_found_and_retrieved_through_the_other(dmp):
    contents = [b"\x00\x01\r\n--MIMEBoundary\r\n" * 50, b"", bytes(range(256)) * 64]
    docs = [Doc(c, f"Document0{i}", mime_type="application/octet-stream") for i, c in enumerate(contents, 1)]
    reply = provide(dmp.a, docs)
    assert reply.status == "Success", reply.errors
    back = retrieve(dmp.b, [d.unique_id for d in docs])
    assert back.status == "Success", back.errors
    assert back.documents() == {d.unique_id: d.content for d in docs}
    found = post(dmp.b.registry, ITI18, adhoc_query(FIND_DOCUMENTS, [
        ("$XDSDocumentEntryPatientId", [f"'{PATIENT}'"]),
        ("$XDSDocumentEntryStatus", ["('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"])]), mtom=False)
    assert found.status == "Success", found.errors
    unique_ids = {e.get("value") for e in found.body.iter(f"{{{ns.RIM}}}ExternalIdentifier")}
    assert {d.unique_id for d in docs} <= unique_ids
    # and the other way round
    other = Doc(b"filed through B", "Document01")
    assert provide(dmp.b, [other]).status == "Success"
    assert retrieve(dmp.a, [other.unique_id]).documents() == {other.unique_id: b"filed through B"}


def test_a_vihf_used_on_one_node_is_refused_on_the_other(dmp):
    vihf = fresh_vihf()
    query = adhoc_query(FIND_DOCUMENTS, [("$XDSDocumentEntryPatientId", [f"'{PATIENT}'"]),
                                         ("$XDSDocumentEntryStatus",
                                          ["('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"])])
    first = post(dmp.a.registry, ITI18, query, mtom=False, vihf=vihf)
    assert first.status == "Success", first.fault_reason
    again = post(dmp.b.registry, ITI18, query, mtom=False, vihf=vihf)
    assert again.fault_code == "env:Sender"
    assert "DMPVIHFReplay" in again.fault_reason
    # the check is atomic across nodes: one VIHF sent to both at the same instant is accepted once
    # The envelopes are made here, one after the other: lxml trees are not thread-safe, and four threads
    # putting the one query element into four envelopes at once crashed the test process (SIGSEGV).
    vihf = fresh_vihf()
    replies: list[Reply] = []
    sends = [(n, envelope(ITI18, query, vihf=vihf)) for n in (dmp.a, dmp.b, dmp.a, dmp.b)]
    threads = [threading.Thread(target=lambda n=n, env=env: replies.append(
                   post(n.registry, ITI18, query, mtom=False, raw_envelope=env)))
               for n, env in sends]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.http_status for r in replies).count(200) == 1, [r.fault_reason for r in replies]


def _peak_rss_mb(node: RunningNode) -> float:
    status = Path(f"/proc/{node.process.pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def large_document(path: Path, size: int) -> Doc:
    block, sha1 = bytearray(os.urandom(MiB)), hashlib.sha1()
    with path.open("wb") as f:
        for i in range(size // MiB):
            block[:8] = i.to_bytes(8, "little")
            f.write(block)
            sha1.update(block)
    return Doc(b"", "Document01", mime_type="application/octet-stream", hash_override=sha1.hexdigest(),
               size_override=str(size))


def provide_file(node: RunningNode, doc: Doc, path: Path) -> Reply:
    return post(node.repository, ITI41, provide_and_register([doc]),
                attachments=[OutgoingAttachment(content_id(doc), doc.mime_type, path)], timeout=300)


def test_a_64_mib_document_through_one_node_and_back_through_the_other_in_bounded_memory(dmp, tmp_path):
    path = tmp_path / "large.bin"
    doc = large_document(path, 64 * MiB)
    reply = provide_file(dmp.a, doc, path)
    assert reply.status == "Success", reply.errors
    back = post(dmp.b.repository, ITI43, retrieve_request(REPOSITORY_ID, [doc.unique_id]), spool=tmp_path,
                timeout=300)
    assert back.status == "Success", back.errors
    [part] = back.mime.attachments.values()
    assert (part.sha1, part.size) == (doc.hash_override, 64 * MiB)
    assert part.path.read_bytes() == path.read_bytes()
    for node in (dmp.a, dmp.b):
        assert _peak_rss_mb(node) < 150


def test_object_storage_down_during_an_upload_then_back(dmp, tmp_path):
    """SeaweedFS killed while node A uploads a 64 MiB document: the spec's error (XDSRepositoryError),
    nothing registered or served by either node; once it is back the next request is served."""
    earlier = Doc(b"filed before the outage", "Document01")
    assert provide(dmp.a, [earlier]).status == "Success"
    path = tmp_path / "large.bin"
    doc = large_document(path, 64 * MiB)
    client = dmp.seaweed.client()
    replies: list[Reply] = []
    sender = threading.Thread(target=lambda: replies.append(provide_file(dmp.a, doc, path)))
    sender.start()
    deadline = time.monotonic() + 120
    while not client.list_multipart_uploads(Bucket=dmp.bucket).get("Uploads"):
        assert sender.is_alive(), "the request ended before the upload to object storage started"
        assert time.monotonic() < deadline, "the upload to object storage never started"
        time.sleep(0.01)
    dmp.seaweed.kill()
    sender.join(timeout=300)
    [reply] = replies
    assert reply.status == "Failure"
    assert reply.problems == [Problem.REPOSITORY_STORAGE_FAILED]
    assert registered(dmp.b, doc.unique_id) == []
    down = retrieve(dmp.b, [earlier.unique_id, doc.unique_id])
    assert down.status == "Failure"
    assert down.problems == [Problem.RETRIEVE_STORE_UNAVAILABLE, Problem.RETRIEVE_UNKNOWN_DOCUMENT]
    dmp.seaweed.start()
    assert retrieve(dmp.b, [doc.unique_id]).problems == [Problem.RETRIEVE_UNKNOWN_DOCUMENT]
    assert retrieve(dmp.b, [earlier.unique_id]).documents() == {earlier.unique_id: b"filed before the outage"}
    after = Doc(b"served again", "Document01")
    assert provide(dmp.a, [after]).status == "Success"
    assert retrieve(dmp.b, [after.unique_id]).documents() == {after.unique_id: b"served again"}


def test_a_node_killed_mid_upload_leaves_nothing_half_visible(dmp, tmp_path):
    """Node A dies (SIGKILL) while it uploads to object storage: node B neither finds nor serves the document;
    the next start-up of a node past the lease aborts the upload and removes the marker."""
    path = tmp_path / "large.bin"
    doc = large_document(path, 64 * MiB)
    client = dmp.seaweed.client()
    before = {u["UploadId"] for u in client.list_multipart_uploads(Bucket=dmp.bucket).get("Uploads") or []}
    victim = start_node(dmp.configs[0])
    sender = threading.Thread(target=_ignore_errors, args=(lambda: provide_file(victim, doc, path),))
    sender.start()
    deadline = time.monotonic() + 120
    while not ({u["UploadId"] for u in client.list_multipart_uploads(Bucket=dmp.bucket).get("Uploads") or []}
               - before):
        assert sender.is_alive(), "the request ended before the upload to object storage started"
        assert time.monotonic() < deadline, "the upload to object storage never started"
        time.sleep(0.01)
    victim.stop(signal.SIGKILL)
    sender.join(timeout=60)
    assert registered(dmp.b, doc.unique_id) == []
    assert retrieve(dmp.b, [doc.unique_id]).problems == [Problem.RETRIEVE_UNKNOWN_DOCUMENT]
    pending = client.list_objects_v2(Bucket=dmp.bucket, Prefix="dmp/pending/").get("Contents") or []
    assert pending, "the dead node's marker is the trace recovery works from"
    # a node starting later, its lease elapsed (0 here), cleans up what the dead one left
    restarted_cfg = dataclasses.replace(dmp.configs[0], data_dir=tmp_path / "node-c", blob_pending_lease_s=0.0)
    restarted_cfg.data_dir.mkdir()
    restarted_cfg.save()
    start_node(restarted_cfg).stop()
    assert not client.list_objects_v2(Bucket=dmp.bucket, Prefix="dmp/pending/").get("Contents")
    assert not client.list_multipart_uploads(Bucket=dmp.bucket).get("Uploads")
    assert retrieve(dmp.a, [doc.unique_id]).problems == [Problem.RETRIEVE_UNKNOWN_DOCUMENT]


def _ignore_errors(send: Callable[[], object]) -> None:
    with contextlib.suppress(Exception):   # the server was killed under it: no answer is what this test expects
        send()


def test_only_config_and_local_files_in_a_node_data_directory(dmp):
    """With PostgreSQL and S3 nothing shared lives in a data directory: no replay.db, no stored document."""
    for cfg in dmp.configs:
        names = {p.relative_to(cfg.data_dir).parts[0] for p in cfg.data_dir.rglob("*") if p.is_file()}
        assert "replay.db" not in names
        documents = [p for p in (cfg.data_dir / "blobs").rglob("*") if p.is_file()
                     and ".spool" not in p.parts]
        assert documents == []
        assert names <= {"config.json", "blobs"} | {n for n in names if n.startswith("server-")}, names
