"""The patient hears of what happens to their DMP (docs/notifications.md): a real `dmp serve` with the consent checker
and a real SMTP server on 127.0.0.1, down at first: the transactions are not slowed or failed, the messages
wait in the outbox and arrive, once each, when the mail server is back."""

from __future__ import annotations

from dataclasses import replace

from click.testing import CliRunner
from nodes import make_node, start_node
from notify_servers import SmtpRecorder, outbox_rows, wait_for
from vihf_client import ALICE, claims_for, fresh_vihf, identities, patient_ins
from xds_client import ITI18, ITI41, adhoc_query, post
from xds_factory import Doc, content_id, provide_and_register

from pki import PsIdentity, PurposeOfUse
from registry import Store
from server.cli import main
from soap_wsdl import OutgoingAttachment

PATIENT_INS = "280017512345615^^^&1.2.250.1.213.1.4.10&ISO"
CAROL = PsIdentity.from_rpps("99900063480", "CAROLE", "TEST", "10", "SM26")
EMAIL = "patiente@example.fr"
FIND = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"


def _valid(ins: str) -> str:
    nir = ins.split("^", 1)[0][:13]
    return f"{nir}{97 - int(nir) % 97:02d}^^^&1.2.250.1.213.1.4.10&ISO"


def test_notifications_reach_the_patient_after_the_mail_server_was_down(tmp_path):
    smtp = SmtpRecorder()                      # not started: the mail server is down
    patient = _valid(PATIENT_INS)
    cfg = make_node(tmp_path / "node", patients=())
    cfg = replace(cfg, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_sender="DMP <ne-pas-repondre@dmp.example>",
                  notification_poll_s=0.1, notification_retry_initial_s=0.2, notification_retry_max_s=0.5)
    cfg.save()
    runner = CliRunner()
    data = ["--data", str(cfg.data_dir)]
    assert runner.invoke(main, ["patient", "create", *data, "--ins", patient, "--email", EMAIL]).exit_code == 0
    assert runner.invoke(main, ["patient", "authorize", *data, "--ins", patient, "--ps", ALICE.idnat_ps]
                         ).exit_code == 0
    node = start_node(cfg)
    store = Store(cfg.database_url)
    try:
        doc = Doc(b"compte rendu", "Document01", patient_id=patient)
        fed = post(node.repository, ITI41, provide_and_register([doc]),
                   attachments=[OutgoingAttachment(content_id(doc), doc.mime_type, doc.content)])
        assert fed.status == "Success"
        urgent = fresh_vihf(identities().pki.issue_ps(CAROL).signature.signer(),
                            claims_for(CAROL, patient=patient_ins(patient), purpose_of_use=PurposeOfUse.BREAK_GLASS))
        query = post(node.registry, ITI18, adhoc_query(FIND, [("$XDSDocumentEntryPatientId", [f"'{patient}'"]),
                                                              ("$XDSDocumentEntryStatus", [
                                                                  "('urn:oasis:names:tc:ebxml-regrep:StatusType:"
                                                                  "Approved')"])]), mtom=False, vihf=urgent)
        assert query.status == "Success"
        # Every event's message is in the outbox, retried while the server is down, none lost.
        wait_for(lambda: all(r.attempts >= 2 for r in outbox_rows(store)), "failed attempts while SMTP is down")
        notices = sorted(r.notice for r in outbox_rows(store))
        assert notices == ["dossier-created", "emergency-access", "first-access", "first-access", "new-document"]
        assert all(r.sent_at is None and r.recipient == EMAIL for r in outbox_rows(store))

        smtp.start()                           # the mail server is back
        wait_for(lambda: all(r.sent_at is not None for r in outbox_rows(store)), "the outbox sent")
        assert len(smtp.received) == 5        # each once
        assert {rcpt for r in smtp.received for rcpt in r.recipients} == {EMAIL}
        bodies = "\n".join(r.body for r in smtp.received)
        assert "CAROLE" in bodies or "TEST" in bodies         # who accessed, in the emergency message
        log = node.log.read_text()
        assert EMAIL not in log
        assert patient.split("^")[0] not in log
    finally:
        store.dispose()
        node.stop()
        smtp.stop()
