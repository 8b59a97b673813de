"""How notifications leave the node: one small interface, e-mail over SMTP (RFC 5321, STARTTLS RFC 3207) and SMS
through an HTTP gateway behind it (docs/notifications.md).

A failure is a :class:`DeliveryError` whose text is safe to store and log: it names the channel and the kind of
failure (reply code, exception type), never an address or the message, which servers often echo back."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol


class DeliveryError(Exception):
    """The message was not handed over; it will be tried again. ``str()`` carries no address or content."""


class NotificationChannel(Protocol):
    def send(self, recipient: str, subject: str, body: str) -> None:
        """Hands the message over to the next hop; raises :class:`DeliveryError` when it could not."""
        ...


class SmtpChannel:
    """E-mail through one SMTP server (a relay or submission server). ``password`` comes from the environment
    (``DMP_SMTP_PASSWORD``, read by the server's configuration), never from a file, and is never shown.

    ``timeout_s`` bounds each network operation. With ``starttls`` the server's certificate is verified with
    ``tls_context`` (default: the system's trust store) before any login."""

    def __init__(self, host: str, port: int, sender: str, *, starttls: bool = False, user: str | None = None,
                 password: str | None = None, timeout_s: float = 30.0,
                 tls_context: ssl.SSLContext | None = None) -> None:
        if user is not None and password is None:
            raise ValueError("an SMTP user needs a password (DMP_SMTP_PASSWORD)")
        self.host, self.port, self.sender = host, port, sender
        self.starttls, self.user, self.timeout_s = starttls, user, timeout_s
        self._password = password
        self._tls = tls_context

    def __repr__(self) -> str:
        return f"SmtpChannel({self.host}:{self.port}, starttls={self.starttls}, user={self.user!r})"

    def send(self, recipient: str, subject: str, body: str) -> None:
        message = self._message(recipient, subject, body)
        smtp: smtplib.SMTP | None = None
        try:
            # the host given here is also the name STARTTLS verifies the certificate against
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
            if self.starttls:
                smtp.starttls(context=self._tls or ssl.create_default_context())
            if self.user is not None and self._password is not None:
                smtp.login(self.user, self._password)
            smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"smtp: login refused (reply {exc.smtp_code})") from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            raise DeliveryError(f"smtp: recipient refused (reply {', '.join(map(str, codes))})") from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"smtp: refused (reply {exc.smtp_code})") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"smtp: {self.host}:{self.port} unavailable ({type(exc).__name__})") from None
        finally:
            if smtp is not None:
                _quietly_quit(smtp)

    def _message(self, recipient: str, subject: str, body: str) -> EmailMessage:
        message = EmailMessage()
        try:
            message["From"] = self.sender
            message["To"] = recipient
            message["Subject"] = subject
        except ValueError:      # a line break in a header (header injection) or an unparsable address
            raise DeliveryError("smtp: invalid header value (recipient or subject)") from None
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2].strip("> ") or None)
        # quoted-printable keeps the French text 7-bit: no need for the server's 8BITMIME
        message.set_content(body, cte="quoted-printable")
        return message


def _quietly_quit(smtp: smtplib.SMTP) -> None:
    """Ends the session. Once the server accepted the message a failing QUIT changes nothing: it was sent."""
    try:
        if smtp.sock is not None:
            smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


class SmsGatewayChannel:
    """SMS through an HTTP gateway: ``POST url`` with JSON ``{"to": "<mobile>", "text": "<body>"}`` (the subject
    is not sent), ``Authorization: Bearer <api_key>`` when a key is set (``DMP_SMS_API_KEY``). Any 2xx answer
    means accepted."""

    def __init__(self, url: str, *, api_key: str | None = None, timeout_s: float = 10.0) -> None:
        self.url, self.timeout_s = url, timeout_s
        self._api_key = api_key

    def __repr__(self) -> str:
        return f"SmsGatewayChannel({self.url})"

    def send(self, recipient: str, subject: str, body: str) -> None:
        import httpx  # here: a node without an SMS gateway never loads it (~3 MB per process)

        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        try:
            with httpx.Client(timeout=self.timeout_s) as client:
                response = client.post(self.url, json={"to": recipient, "text": body}, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"sms gateway: unavailable ({type(exc).__name__})") from None
        if not response.is_success:
            raise DeliveryError(f"sms gateway: refused (HTTP {response.status_code})")
