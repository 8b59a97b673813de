"""`dmp serve --workers N`: several processes share one data directory; concurrent submissions all land,
each exactly once, and every document is served by whichever worker answers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from conftest import make_node, start_node
from xds_client import ITI41, ITI43, post, retrieve_request
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
