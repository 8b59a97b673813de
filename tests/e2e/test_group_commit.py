"""Group commit seen from the outside (``registry.Store.grouped_write``; docs/architecture.md): concurrent ITI-41
submissions to a real `dmp serve`, some refused, each get their own exact answer and only the accepted ones are
stored; a server killed with SIGKILL under concurrent load has every submission it acknowledged registered and
served after its restart (acknowledged = durable), and its access histories still verify."""

from __future__ import annotations

import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from nodes import make_node, start_node
from xds_client import ITI41, ITI43, post, retrieve_request
from xds_factory import REPOSITORY_ID, Doc, content_id, provide_and_register

from consent import verify_history
from registry import Store
from soap_wsdl import OutgoingAttachment


def _provide(url: str, d: Doc, *, client: httpx.Client | None = None) -> tuple[str, tuple[str, ...]]:
    reply = post(url, ITI41, provide_and_register([d]), client=client,
                 attachments=[OutgoingAttachment(content_id(d), d.mime_type, d.content)])
    if reply.http_status != 200:
        return f"HTTP {reply.http_status}", (reply.fault_reason or "",)
    return reply.status, tuple(reply.error_codes)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_submissions_each_get_their_own_answer(tmp_path, backend, request):
    from nodes import database_url

    node = start_node(make_node(tmp_path / "node", database_url=database_url(backend, request)))
    try:
        good = [Doc(f"good {i}\r\n".encode(), f"Document{i:02d}") for i in range(24)]
        taken = Doc(b"first\r\n", "Taken")
        assert _provide(node.repository, taken)[0] == "Success"
        # refused by the registry's rules inside the transaction, in the same moments as the good ones: a uniqueId
        # already registered for other bytes, and two new documents claiming one uniqueId (one only may have it)
        reused = Doc(b"frist\r\n", "Reused")      # same size, other bytes
        reused.unique_id = taken.unique_id
        twin_a, twin_b = Doc(b"twin a\r\n", "TwinA"), Doc(b"twin b\r\n", "TwinB")
        twin_b.unique_id = twin_a.unique_id
        mix = [*good[:8], reused, twin_a, *good[8:16], twin_b, *good[16:]]

        def send(d: Doc) -> tuple[str, tuple[str, ...]]:
            with httpx.Client(timeout=60) as client:
                return _provide(node.repository, d, client=client)

        with ThreadPoolExecutor(8) as pool:
            answers = dict(zip((d.symbolic_id for d in mix), pool.map(send, mix), strict=True))
        assert {answers[d.symbolic_id] for d in good} == {("Success", ())}
        assert answers["Reused"] == ("Failure", ("XDSNonIdenticalHash",))
        twins = sorted([answers["TwinA"], answers["TwinB"]])
        assert twins[1] == ("Success", ())
        assert twins[0][0] == "Failure"
        winner = twin_a if answers["TwinA"][0] == "Success" else twin_b
        back = post(node.repository, ITI43, retrieve_request(REPOSITORY_ID, [d.unique_id for d in good]))
        assert back.documents() == {d.unique_id: d.content for d in good}
        for d in (taken, winner):
            assert post(node.repository, ITI43, retrieve_request(REPOSITORY_ID, [d.unique_id])
                        ).documents() == {d.unique_id: d.content}
        assert history_problems(node.config.database_url) == []
    finally:
        node.stop()


def test_a_uniqueid_whose_blob_another_submission_is_storing_is_refused_busy(tmp_path):
    """The race behind a lost document: submission A has stored the blob of uniqueId U and not yet registered it,
    B sends other bytes under U. Had B relied on A's blob, B could be registered and A, refused or failed,
    would remove the blob (B's document without content, or with A's bytes). B is refused with
    XDSRepositoryBusy, A's blob is left alone, and once A is gone B's retry stores and registers its own."""
    from repository import FilesystemBlobStore

    node = start_node(make_node(tmp_path / "node"))
    try:
        b = Doc(b"the bytes of B\r\n", "DocumentB")
        source = tmp_path / "a.bin"
        source.write_bytes(b"the bytes of A\r\n")
        blobs = FilesystemBlobStore(node.config.blob_dir)
        in_flight = blobs.add(b.unique_id, source, mime_type="text/plain", size=16, sha1="0" * 40)
        assert in_flight is not None
        assert _provide(node.repository, b) == ("Failure", ("XDSRepositoryBusy",))
        assert Path(in_flight.marker).exists()               # A's blob untouched
        assert post(node.repository, ITI43, retrieve_request(REPOSITORY_ID, [b.unique_id])).documents() == {}
        blobs.remove([in_flight])                            # A's registration failed: it removes its blob
        assert _provide(node.repository, b) == ("Success", ())
        assert post(node.repository, ITI43, retrieve_request(REPOSITORY_ID, [b.unique_id])
                    ).documents() == {b.unique_id: b.content}
    finally:
        node.stop()


def test_sigkill_under_load_loses_no_acknowledged_submission(tmp_path):
    cfg = make_node(tmp_path / "node")
    node = start_node(cfg)
    acknowledged: list[Doc] = []
    lock = threading.Lock()
    stop = threading.Event()
    counter = iter(range(10**6))

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                n = next(counter)
                d = Doc(f"document {n}\r\n".encode(), f"Doc{n}")
                try:
                    status, _ = _provide(node.repository, d, client=http)
                except Exception:     # the server died under this request: it was not acknowledged
                    return
                if status == "Success":
                    with lock:
                        acknowledged.append(d)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        deadline = threading.Event()
        while len(acknowledged) < 60 and not deadline.wait(0.05):
            pass
        node.stop(signal.SIGKILL)
    finally:
        stop.set()
        node.stop()
    for t in threads:
        t.join(timeout=60)
    assert len(acknowledged) >= 60
    node = start_node(cfg)
    try:
        back = post(node.repository, ITI43, retrieve_request(REPOSITORY_ID, [d.unique_id for d in acknowledged]))
        assert back.status == "Success"
        assert back.documents() == {d.unique_id: d.content for d in acknowledged}
        assert history_problems(cfg.database_url) == []
    finally:
        node.stop()


def history_problems(database_url: str) -> list[object]:
    """What `consent.verify_history` finds wrong in every patient's access-history chain (empty: intact)."""
    store = Store(database_url)
    try:
        return list(verify_history(store))
    finally:
        store.dispose()


def test_two_workers_on_postgresql_feeding_two_patients_crosswise_never_deadlock(tmp_path, request):
    """Every ITI-41's transaction locks its patient's dossier row (the access-history entry), and each worker
    of `dmp serve --workers 2` groups the transactions of its concurrent requests. Two groups holding two
    patients' rows in opposite orders deadlocked, and PostgreSQL refused one group whole after
    deadlock_timeout: valid submissions answered "the registry database is unavailable" (benchmarks/README.md,
    issue 13 session 10: 60 of 2,000). A group's works run in the order of their patients."""
    from consent_client import cli, doc, new_patient, vihf
    from nodes import database_url
    from vihf_client import ALICE

    node = start_node(make_node(tmp_path / "node", database_url=database_url("postgresql", request)),
                      "--workers", "2")
    try:
        patients = [new_patient(node), new_patient(node)]
        # signed beforehand, so that the requests reach the workers together and their transactions group
        submissions = [(doc(b"document %d\r\n" % i, patients[i % 2]), vihf(ALICE, patients[i % 2]))
                       for i in range(400)]
        local, clients = threading.local(), []

        def send(submission: tuple[Doc, object]) -> tuple[str, tuple[str, ...]]:
            d, assertion = submission
            if not hasattr(local, "client"):
                local.client = httpx.Client(timeout=60)
                clients.append(local.client)
            reply = post(node.repository, ITI41, provide_and_register([d]), vihf=assertion, client=local.client,
                         attachments=[OutgoingAttachment(content_id(d), d.mime_type, d.content)])
            return reply.status, tuple(reply.error_codes)

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(send, submissions))
        for client in clients:
            client.close()
        assert [a for a in answers if a != ("Success", ())] == []
        assert "every access history verifies" in cli(node, "history", "verify")
    finally:
        node.stop()
