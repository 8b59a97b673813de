"""The node's log holds no patient or professional identifier at any level, and one request never floods it
(issue 13, defects 2 and 3): a real `dmp serve` at DEBUG level, its log file read after each request."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator

import pytest
from nodes import RunningNode, make_node, start_node
from vihf_client import ALICE, BOB, alice_claims, fresh_vihf
from xds_client import ITI18, ITI41, adhoc_query, post
from xds_factory import OTHER_PATIENT, PATIENT, Doc, content_id, provide_and_register

from pki import TestPki
from server import _logging as server_logging
from server._logging import MAX_MESSAGE, install, redact
from soap_wsdl import OutgoingAttachment

FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
NIR, OTHER_NIR = PATIENT.split("^")[0], OTHER_PATIENT.split("^")[0]
IDENTIFIERS = (NIR, OTHER_NIR, NIR[:13], ALICE.idnat_ps, BOB.idnat_ps, ALICE.idnat_ps[1:], "TESTEUR")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    running = start_node(make_node(tmp_path_factory.mktemp("logs")), "--log-level", "debug")
    yield running
    running.stop()


class LogTail:
    def __init__(self, node: RunningNode) -> None:
        self.node, self.start = node, node.log.stat().st_size

    def text(self) -> str:
        with self.node.log.open("rb") as f:
            f.seek(self.start)
            return f.read().decode("utf-8", "replace")


def assert_no_identifier(text: str) -> None:
    for ident in IDENTIFIERS:
        assert ident not in text, f"{ident!r} in the log:\n{text[:3000]}"


def find_documents(node: RunningNode, patient: str = PATIENT, **kw) -> object:
    return post(node.registry, ITI18, adhoc_query(FIND_DOCUMENTS, [
        ("$XDSDocumentEntryPatientId", [f"'{patient}'"]), ("$XDSDocumentEntryStatus", [f"('{APPROVED}')"])]),
        mtom=False, **kw)


def test_refusals_log_the_check_not_the_professional(node, tmp_path):
    tail = LogTail(node)
    nameid = find_documents(node, vihf=fresh_vihf(claims=alice_claims(name_id=BOB.idnat_ps)))
    assert "nameid-mismatch" in nameid.fault_reason
    foreign = TestPki.create(tmp_path / "foreign").issue_ps(ALICE)
    untrusted = find_documents(node, vihf=fresh_vihf(foreign.signature.signer()))
    assert "certificate-untrusted" in untrusted.fault_reason
    log = tail.text()
    assert "nameid-mismatch" in log
    assert "certificate-untrusted" in log
    assert "no path from" in log
    assert_no_identifier(log)


def test_a_database_failure_logs_neither_the_statement_nor_the_patient(node):
    """The registry fails on a missing table: the log names the failure in one short record, without the
    SQL text and bound parameters (which held the patient's INS and, for 1,000 values, 680 KB)."""
    db = node.config.data_dir / "registry.db"
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE document_entry RENAME TO document_entry_away")
    try:
        tail = LogTail(node)
        many = [f"X{i}^^1.2.250.1.999.77" for i in range(1000)]
        reply = post(node.registry, ITI18, adhoc_query(FIND_DOCUMENTS, [
            ("$XDSDocumentEntryPatientId", [f"'{PATIENT}'"]), ("$XDSDocumentEntryStatus", [f"('{APPROVED}')"]),
            ("$XDSDocumentEntryClassCode", ["(" + ",".join(f"'{v}'" for v in many) + ")"])]), mtom=False)
        assert reply.error_codes == ["XDSRegistryError"]
        log = tail.text()
        assert "no such table" in log
        assert len(log) < 2_000, log[:3000]
        assert "SELECT" not in log
        assert_no_identifier(log)
    finally:
        with sqlite3.connect(db) as conn:
            conn.execute("ALTER TABLE document_entry_away RENAME TO document_entry")
    assert find_documents(node).status == "Success"


def test_a_submission_at_debug_level_logs_no_identifier(node):
    tail = LogTail(node)
    d = Doc(b"%PDF-1.4 logs", "application/pdf")
    reply = post(node.repository, ITI41, provide_and_register([d]),
                 attachments=[OutgoingAttachment(content_id(d), d.mime_type, d.content)],
                 vihf=fresh_vihf(claims=alice_claims()))
    assert reply.status.endswith("Success"), reply.errors
    assert find_documents(node).status == "Success"
    log = tail.text()
    assert_no_identifier(log)
    assert "SELECT" not in log   # SQLAlchemy's statement log stays off at DEBUG


@pytest.mark.parametrize(("text", "hidden"), [
    ("NameID '0751234567' is not the signer's IdNat_PS '899700012349'", ("0751234567", "899700012349")),
    ("no path from CN=899700012349+SN=TESTEUR+GN=ALICE,O=CABINET to a trust anchor",
     ("899700012349", "TESTEUR", "ALICE")),
    ("patient 188102B17295264 and 284067512345688", ("17295264", "284067512345688")),
    ("structure 3123456789/CPET00001 refused", ("3123456789", "CPET00001")),
    ("(sqlite3.OperationalError) boom\n[SQL: SELECT a FROM b WHERE c IN (?)]\n[parameters: ('284067512345688',)]"
     "\n(Background on this error at: https://sqlalche.me/e/20/e3q8)", ("SELECT", "284067512345688")),
])
def test_redact(text, hidden):
    out = redact(text)
    for h in hidden:
        assert h not in out
    assert redact("x" * (MAX_MESSAGE * 3)).startswith("x" * MAX_MESSAGE)
    assert len(redact("x" * (MAX_MESSAGE * 3))) < MAX_MESSAGE + 100


def test_every_record_of_the_process_is_redacted(caplog, monkeypatch):
    monkeypatch.setattr(server_logging, "_installed", [])
    factory = logging.getLogRecordFactory()
    install()
    try:
        with caplog.at_level(logging.DEBUG, logger="anything"):
            try:
                raise ValueError(f"bad patient {NIR}")
            except ValueError:
                logging.getLogger("anything").exception("failed for %s", BOB.idnat_ps)
    finally:
        logging.setLogRecordFactory(factory)
    text = caplog.text
    assert "failed for [id]" in text
    assert "bad patient [id]" in text
    assert_no_identifier(text)
