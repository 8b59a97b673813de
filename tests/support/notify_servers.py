"""Real servers the notification tests send to, on 127.0.0.1, stopped by the test: an SMTP server (aiosmtpd)
and an HTTP SMS gateway, each recording what it received; and dossier rows to notify.

Kept out of ``conftest.py`` so that test modules import it by a name no other directory's conftest shadows."""

from __future__ import annotations

import email
import email.policy
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from nodes import database_url, free_port
from sqlalchemy import insert, select

from consent._schema import dossier, notification_outbox
from registry import Store


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        part = self.message.get_body()
        assert part is not None
        return str(part.get_content())


@dataclass
class _Handler:
    received: list[Received] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)          # recipients answered 550
    on_message: Callable[[Received], None] | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.refused:
            return f"550 5.1.1 <{address}>: mailbox unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), message)
        self.received.append(received)
        if self.on_message is not None:
            self.on_message(received)
        return "250 OK"


class SmtpRecorder:
    """An aiosmtpd server on ``127.0.0.1:port`` (a free port chosen now, so a test can send before it starts).
    With ``tls`` it offers STARTTLS with that context and requires it, and a login, when ``login`` is given."""

    def __init__(self, *, tls: ssl.SSLContext | None = None, login: tuple[str, str] | None = None) -> None:
        self.port = free_port()
        self.handler = _Handler()
        self._tls, self._login = tls, login
        self._controller: Controller | None = None

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if self._tls is not None:
            kwargs.update(tls_context=self._tls, require_starttls=True)
        if self._login is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True)
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == self._login
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself


@pytest.fixture(name="smtp_server")
def smtp_server_fixture() -> Iterator[SmtpRecorder]:
    server = SmtpRecorder()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class SmsRequest:
    payload: dict[str, Any]
    authorization: str | None


class SmsGateway:
    """An HTTP SMS gateway on 127.0.0.1: records each POSTed JSON; answers ``failures`` times 503 first."""

    def __init__(self, failures: int = 0) -> None:
        self.received: list[SmsRequest] = []
        self.failures = failures
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if gateway.failures > 0:
                    gateway.failures -= 1
                    self.send_response(503)
                else:
                    gateway.received.append(SmsRequest(json.loads(body), self.headers.get("Authorization")))
                    self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/sms"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> SmsGateway:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


# --- the database -------------------------------------------------------------------------------------------


@pytest.fixture(name="outbox_store", params=["sqlite", "postgresql"])
def outbox_store_fixture(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Store]:
    """A migrated registry database, SQLite file or a fresh PostgreSQL database."""
    store = Store(database_url(request.param, request) or f"sqlite:///{tmp_path / 'registry.db'}")
    store.migrate()
    yield store
    store.dispose()


def add_dossier(store: Store, patient_key: str, *, email: str | None = None, mobile: str | None = None,
                trusted_email: str | None = None, notify_trusted: bool = False,
                notify_new_document: bool = False) -> None:
    """A dossier row with the defaults of a new DMP and these contact details and choices."""
    with store.write() as conn:
        conn.execute(insert(dossier).values(
            patient_key=patient_key, created_at="2026-12-01T09:00:00.000Z", consent_by="patient",
            consent_channel="operator", minor=False, allow_break_glass=True, allow_centre_15=True,
            masked_visible_in_emergency=False, feeding_opposed=False, email=email, mobile=mobile,
            trusted_email=trusted_email, notify_trusted=notify_trusted, notify_new_document=notify_new_document,
            history_seq=0, history_head="0" * 64))


def outbox_rows(store: Store) -> list[Any]:
    with store.read() as conn:
        return list(conn.execute(select(notification_outbox).order_by(notification_outbox.c.id)).all())


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Polls ``condition`` until true; the timeout only ends a test that would otherwise hang."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
