"""`dmp serve --workers N`: several processes share one data directory; concurrent submissions all land,
each exactly once, every document is served by whichever worker answers, and an assertion is used once
whichever worker receives it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from nodes import make_node, start_node
from vihf_client import fresh_vihf
from xds_client import ITI41, ITI43, Reply, post, retrieve_request
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


def test_a_replay_is_refused_by_every_worker(tmp_path):
    """The same VIHF sent at once on 12 connections (the kernel spreads them over both workers): one request
    is served, the 11 others are refused as replays — with a replay cache per process, each worker would
    serve it once."""
    node = start_node(make_node(tmp_path / "node"), "--workers", "2")
    try:
        vihf = fresh_vihf()

        def send(_: int) -> Reply:
            with httpx.Client(timeout=60) as client:   # a connection of its own
                return post(node.repository, ITI43, retrieve_request(REPOSITORY_ID, ["1.2.3"]), client=client,
                            vihf=vihf)

        with ThreadPoolExecutor(12) as pool:
            replies = list(pool.map(send, range(12)))
        served = [r for r in replies if r.http_status == 200]
        assert [r.error_codes for r in served] == [["XDSDocumentUniqueIdError"]]
        refused = [r for r in replies if r.http_status != 200]
        assert len(refused) == 11
        assert all(r.fault_code == "env:Sender" and "DMPVIHFReplay" in r.fault_reason for r in refused), [
            (r.http_status, r.fault_reason) for r in refused]
        assert (node.config.data_dir / "replay.db").exists()
    finally:
        node.stop()
