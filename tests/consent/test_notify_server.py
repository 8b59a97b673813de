"""The sender runs with `dmp serve` (a real process on 127.0.0.1, ended by PID): what the outbox holds reaches a
real SMTP server, once, also with several worker processes on one database; the settings are checked."""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from nodes import ROOT, database_url, make_node, start_node
from notify_servers import (  # noqa: F401 - the `smtp_server` fixture
    add_dossier,
    outbox_rows,
    smtp_server_fixture,
    wait_for,
)

from consent import ChannelKind, Notice, NoticeDetails, enqueue_notice
from registry import Store
from server._config import Config
from server._notifications import NotificationConfigError, notification_channels

SENDER = "DMP <ne-pas-repondre@dmp.example>"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_served_node_sends_the_outbox_once_with_two_worker_processes(backend, request, tmp_path, smtp_server):
    cfg = make_node(tmp_path / "node", database_url=database_url(backend, request))
    cfg = replace(cfg, smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_sender=SENDER,
                  notification_poll_s=0.1, notification_retry_initial_s=0.2, notification_retry_max_s=0.5)
    cfg.save()
    store = Store(cfg.database_url)
    try:
        expected = []
        for i in range(12):
            add_dossier(store, f"P{i}", email=f"patient{i}@example.fr")
            with store.write() as conn:
                enqueue_notice(conn, f"P{i}", Notice.FIRST_ACCESS, NoticeDetails(professional=f"Dr {i}"),
                               now=datetime.now(UTC))
            expected.append(f"patient{i}@example.fr")
        node = start_node(cfg, "--workers", "2")
        try:
            wait_for(lambda: all(r.sent_at is not None for r in outbox_rows(store)), "the outbox sent")
        finally:
            node.stop(signal.SIGTERM)
        assert node.process.returncode == 0
        assert sorted(rcpt for r in smtp_server.received for rcpt in r.recipients) == sorted(expected)
        log = node.log.read_text()
        assert "Traceback" not in log
        assert "example.fr" not in log
    finally:
        store.dispose()


def test_no_channel_configured_means_no_sender(tmp_path):
    assert notification_channels(Config.new(tmp_path)) == {}


def test_channels_from_the_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("DMP_SMTP_PASSWORD", "relay-secret")
    cfg = replace(Config.new(tmp_path), smtp_host="smtp.example.org", smtp_port=587, smtp_sender=SENDER,
                  smtp_starttls=True, smtp_user="dmp", sms_gateway_url="http://127.0.0.1:9/sms")
    channels = notification_channels(cfg)
    assert set(channels) == {ChannelKind.EMAIL, ChannelKind.SMS}
    assert repr(channels[ChannelKind.EMAIL]) == "SmtpChannel(smtp.example.org:587, starttls=True, user='dmp')"
    cfg.save()
    assert "relay-secret" not in (tmp_path / "config.json").read_text()


@pytest.mark.parametrize(("settings", "message"), [
    ({"smtp_host": "smtp.example.org"}, "smtp_sender"),
    ({"smtp_host": "smtp.example.org", "smtp_sender": SENDER, "smtp_user": "dmp"}, "DMP_SMTP_PASSWORD"),
])
def test_incomplete_settings_are_named(tmp_path, monkeypatch, settings, message):
    monkeypatch.delenv("DMP_SMTP_PASSWORD", raising=False)
    with pytest.raises(NotificationConfigError, match=message):
        notification_channels(replace(Config.new(tmp_path), **settings))


def test_dmp_serve_refuses_a_login_without_password(tmp_path, monkeypatch):
    cfg = replace(make_node(tmp_path / "node"), smtp_host="127.0.0.1", smtp_sender=SENDER, smtp_user="dmp")
    cfg.save()
    monkeypatch.delenv("DMP_SMTP_PASSWORD", raising=False)
    done = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--data", str(cfg.data_dir), "--port", "9"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert done.returncode == 2
    assert "smtp_user is set: put the SMTP password in the DMP_SMTP_PASSWORD environment variable" in done.stderr
