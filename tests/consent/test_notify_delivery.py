"""Notifications leave through real servers on 127.0.0.1: an aiosmtpd SMTP server and an HTTP SMS gateway, sent
by the NotificationWorker from a real outbox (SQLite file and PostgreSQL). A server that is down delays a
message, never loses or repeats it; several workers on one database deliver each message once."""

from __future__ import annotations

import logging
import ssl
from datetime import UTC, datetime

import pytest
from notify_servers import (  # noqa: F401 - the `outbox_store` and `smtp_server` fixtures
    SmsGateway,
    SmtpRecorder,
    add_dossier,
    outbox_rows,
    outbox_store_fixture,
    smtp_server_fixture,
    wait_for,
)
from pg import postgres_fixture  # noqa: F401 - the `postgres` fixture
from vihf_client import identities

from consent import (
    ChannelKind,
    DeliveryError,
    Notice,
    NoticeDetails,
    NotificationWorker,
    RetryPolicy,
    SmsGatewayChannel,
    SmtpChannel,
    enqueue_notice,
)
from pki import PurposeOfUse
from registry import Store

SENDER = "DMP <ne-pas-repondre@dmp.example>"
FAST = RetryPolicy(initial_s=0.2, max_s=0.4)
DR = NoticeDetails(professional="Dr Jeanne Martin", structure="Cabinet du Parc")


def _now() -> datetime:
    return datetime.now(UTC)


def _email(server: SmtpRecorder, **kwargs) -> dict[ChannelKind, SmtpChannel]:
    return {ChannelKind.EMAIL: SmtpChannel("127.0.0.1", server.port, SENDER, timeout_s=10, **kwargs)}


def _notify(store: Store, patient_key: str, notice: Notice = Notice.FIRST_ACCESS, details: NoticeDetails = DR) -> int:
    with store.write() as conn:
        return enqueue_notice(conn, patient_key, notice, details, now=_now())


def _all_sent(store: Store) -> bool:
    return all(r.sent_at is not None for r in outbox_rows(store))


def test_email_arrives_at_the_smtp_server(outbox_store, smtp_server):
    add_dossier(outbox_store, "P1", email="patient@example.fr", trusted_email="proche@example.fr",
                notify_trusted=True)
    details = NoticeDetails(professional="Dr Paul Urgence", structure="SAMU 75", emergency=PurposeOfUse.CENTRE_15)
    assert _notify(outbox_store, "P1", Notice.EMERGENCY_ACCESS, details) == 2
    with NotificationWorker(outbox_store, _email(smtp_server), poll_interval=0.05, retry=FAST):
        wait_for(lambda: len(smtp_server.received) == 2, "two e-mails")
        wait_for(lambda: _all_sent(outbox_store), "the outbox rows marked sent")
    patient, trusted = sorted(smtp_server.received, key=lambda r: r.recipients)
    assert patient.recipients == ["patient@example.fr"]
    assert patient.sender == "ne-pas-repondre@dmp.example"
    assert patient.message["From"] == SENDER
    assert patient.message["To"] == "patient@example.fr"
    assert patient.subject == "Votre DMP : accès en urgence"
    assert "Dr Paul Urgence (SAMU 75) a accédé à votre DMP en urgence depuis le SAMU-Centre 15" in patient.body
    assert patient.message["Message-ID"].endswith("@dmp.example>")
    assert trusted.recipients == ["proche@example.fr"]
    assert trusted.subject == "DMP (personne de confiance) : accès en urgence"
    assert [(r.attempts, r.last_error) for r in outbox_rows(outbox_store)] == [(0, None), (0, None)]


def test_smtp_server_down_delays_the_message_then_it_arrives_once(outbox_store, caplog):
    server = SmtpRecorder()           # its port is chosen, nothing listens yet
    add_dossier(outbox_store, "P1", email="patient@example.fr")
    _notify(outbox_store, "P1")
    try:
        with NotificationWorker(outbox_store, _email(server), poll_interval=0.05, retry=FAST, alert_after=2):
            wait_for(lambda: outbox_rows(outbox_store)[0].attempts >= 3, "three failed attempts")
            row = outbox_rows(outbox_store)[0]
            assert row.sent_at is None
            assert row.last_error == f"smtp: 127.0.0.1:{server.port} unavailable (ConnectionRefusedError)"
            server.start()
            wait_for(lambda: _all_sent(outbox_store), "the message marked sent")
        (received,) = server.received
    finally:
        server.stop()
    assert received.recipients == ["patient@example.fr"]
    assert "a accédé pour la première fois à votre DMP" in received.body
    assert outbox_rows(outbox_store)[0].attempts >= 3
    failures = [r for r in caplog.records if r.name == "dmp.notify" and "failed" in r.getMessage()]
    assert [r.levelno for r in failures[:2]] == [logging.WARNING, logging.ERROR]   # alert from the 2nd failure
    assert "(first-access, email) failed 2 time(s): smtp: 127.0.0.1" in failures[1].getMessage()
    assert not any("example.fr" in r.getMessage() or "Dr Jeanne" in r.getMessage() for r in caplog.records)


def test_two_workers_on_one_database_deliver_each_message_once(outbox_store, smtp_server):
    expected = []
    for i in range(15):
        add_dossier(outbox_store, f"P{i}", email=f"patient{i}@example.fr", trusted_email=f"proche{i}@example.fr",
                    notify_trusted=True)
        _notify(outbox_store, f"P{i}")
        expected += [f"patient{i}@example.fr", f"proche{i}@example.fr"]
    other = Store(outbox_store.url)   # a second process or node: its own engine and connections
    try:
        with NotificationWorker(outbox_store, _email(smtp_server), poll_interval=0.01, retry=FAST, batch=2), \
                NotificationWorker(other, _email(smtp_server), poll_interval=0.01, retry=FAST, batch=2):
            wait_for(lambda: _all_sent(outbox_store), "every message sent")
    finally:
        other.dispose()
    delivered = [rcpt for r in smtp_server.received for rcpt in r.recipients]
    assert sorted(delivered) == sorted(expected)


def test_recipient_refused_is_retried_without_the_address_in_the_error(outbox_store, smtp_server):
    smtp_server.handler.refused.add("patient@example.fr")
    add_dossier(outbox_store, "P1", email="patient@example.fr")
    _notify(outbox_store, "P1")
    with NotificationWorker(outbox_store, _email(smtp_server), poll_interval=0.05, retry=FAST):
        wait_for(lambda: outbox_rows(outbox_store)[0].attempts >= 2, "two refusals")
        row = outbox_rows(outbox_store)[0]
        assert row.last_error == "smtp: recipient refused (reply 550)"
        smtp_server.handler.refused.clear()
        wait_for(lambda: _all_sent(outbox_store), "the message sent once the mailbox exists")
    assert [r.recipients for r in smtp_server.received] == [["patient@example.fr"]]


def test_sms_through_the_gateway_after_a_refusal(outbox_store):
    add_dossier(outbox_store, "P1", mobile="+33612345678")
    _notify(outbox_store, "P1", Notice.DOSSIER_CLOSED, NoticeDetails())
    with SmsGateway(failures=1) as gateway:
        channels = {ChannelKind.SMS: SmsGatewayChannel(gateway.url, api_key="gateway-key", timeout_s=10)}
        with NotificationWorker(outbox_store, channels, poll_interval=0.05, retry=FAST):
            wait_for(lambda: _all_sent(outbox_store), "the SMS sent")
    (request,) = gateway.received
    assert request.payload["to"] == "+33612345678"
    assert request.payload["text"].startswith("DMP : Votre DMP a été fermé le ")
    assert request.authorization == "Bearer gateway-key"
    row = outbox_rows(outbox_store)[0]
    assert (row.attempts, row.last_error) == (1, "sms gateway: refused (HTTP 503)")


def test_messages_of_an_unconfigured_channel_wait_in_the_outbox(outbox_store, smtp_server):
    add_dossier(outbox_store, "P1", email="patient@example.fr", mobile="+33612345678")
    _notify(outbox_store, "P1")
    with NotificationWorker(outbox_store, _email(smtp_server), poll_interval=0.05, retry=FAST):
        wait_for(lambda: len(smtp_server.received) == 1, "the e-mail")
        wait_for(lambda: outbox_rows(outbox_store)[0].sent_at is not None, "the e-mail marked sent")
    sms = outbox_rows(outbox_store)[1]
    assert (sms.channel, sms.sent_at, sms.attempts, sms.lease_until) == ("sms", None, 0, None)


def test_stop_gives_back_what_was_claimed_and_not_sent(outbox_store, smtp_server):
    for i in range(4):
        add_dossier(outbox_store, f"P{i}", email=f"patient{i}@example.fr")
        _notify(outbox_store, f"P{i}")
    worker = NotificationWorker(outbox_store, _email(smtp_server), poll_interval=0.05, retry=FAST, batch=10)
    smtp_server.handler.on_message = lambda _: worker.request_stop()
    worker.start()
    wait_for(lambda: not worker.alive, "the worker to end")
    worker.stop()
    rows = outbox_rows(outbox_store)
    assert len(smtp_server.received) == 1
    assert sum(r.sent_at is not None for r in rows) == 1
    assert [(r.attempts, r.lease_until) for r in rows if r.sent_at is None] == [(0, None)] * 3


def test_stop_ends_an_idle_worker_promptly(outbox_store, smtp_server):
    worker = NotificationWorker(outbox_store, _email(smtp_server), poll_interval=3600)
    worker.start()
    wait_for(lambda: worker.alive, "the worker to run")
    worker.stop(timeout=30)   # the hour-long poll wait is interrupted; a stuck thread would still be alive
    assert not worker.alive


def test_worker_survives_the_database_going_away(postgres, smtp_server, caplog):
    store = Store(postgres.url)
    store.migrate()
    add_dossier(store, "P1", email="patient@example.fr")
    try:
        with NotificationWorker(store, _email(smtp_server), poll_interval=0.05, retry=FAST) as worker:
            # "fast" ends every connection too; "immediate" would also lose the last commits of this
            # fsync=off test cluster
            postgres.stop("fast")
            wait_for(lambda: any("notification outbox unavailable" in r.getMessage() for r in caplog.records),
                     "the worker to notice the database is gone")
            postgres.start()
            assert _notify(store, "P1") == 1
            wait_for(lambda: len(smtp_server.received) == 1, "the e-mail after the database came back")
            assert worker.alive
    finally:
        store.dispose()
    warnings = [r for r in caplog.records if r.name == "dmp.notify" and r.levelno == logging.WARNING]
    assert warnings
    assert not any("patient@example.fr" in r.getMessage() for r in caplog.records)


def test_starttls_and_login(smtp_server):
    ids = identities()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(str(ids.server_chain), str(ids.server.key_path))
    client_tls = ssl.create_default_context(cafile=str(ids.ca_bundle))
    server = SmtpRecorder(tls=server_tls, login=("dmp-relay", "s3cret-pass"))
    server.start()
    try:
        SmtpChannel("127.0.0.1", server.port, SENDER, starttls=True, user="dmp-relay", password="s3cret-pass",
                    tls_context=client_tls, timeout_s=10).send("patient@example.fr", "Sujet é", "Corps é")
        wrong = SmtpChannel("127.0.0.1", server.port, SENDER, starttls=True, user="dmp-relay",
                            password="wrong-pass", tls_context=client_tls, timeout_s=10)
        with pytest.raises(DeliveryError, match=r"^smtp: login refused \(reply 535\)$"):
            wrong.send("patient@example.fr", "Sujet", "Corps")
        plain = SmtpChannel("127.0.0.1", server.port, SENDER, timeout_s=10)
        with pytest.raises(DeliveryError, match=r"^smtp: refused \(reply 530\)$"):
            plain.send("patient@example.fr", "Sujet", "Corps")
    finally:
        server.stop()
    (received,) = server.received
    assert (received.subject, received.body.strip()) == ("Sujet é", "Corps é")
    assert "wrong-pass" not in repr(wrong)
    assert "s3cret" not in repr(wrong)


def test_header_injection_is_refused(smtp_server):
    channel = SmtpChannel("127.0.0.1", smtp_server.port, SENDER, timeout_s=10)
    with pytest.raises(DeliveryError, match="invalid header value"):
        channel.send("patient@example.fr\nBcc: someone@example.org", "Sujet", "Corps")
    assert smtp_server.received == []


def test_a_user_without_password_is_a_configuration_error():
    with pytest.raises(ValueError, match="DMP_SMTP_PASSWORD"):
        SmtpChannel("127.0.0.1", 25, SENDER, user="dmp-relay")
