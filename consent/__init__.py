"""The DMP consent rules as a pure `decide(principal, action, dossier, document)`, dossier state, access
history and notifications (docs/consent.md; notifications: docs/notifications.md)."""

# --- notifications to the patient (DMP.md §7.1): outbox, channels, sender ---
from consent._channels import DeliveryError, NotificationChannel, SmsGatewayChannel, SmtpChannel
from consent._model import Notice
from consent._notice_text import ChannelKind, Contacts, NoticeDetails, OutgoingMessage, compose
from consent._outbox import OutboxStatus, enqueue_notice, outbox_status, utc_text
from consent._worker import NotificationWorker, RetryPolicy

__all__ = [
    "ChannelKind",
    "Contacts",
    "DeliveryError",
    "Notice",
    "NoticeDetails",
    "NotificationChannel",
    "NotificationWorker",
    "OutboxStatus",
    "OutgoingMessage",
    "RetryPolicy",
    "SmsGatewayChannel",
    "SmtpChannel",
    "compose",
    "enqueue_notice",
    "outbox_status",
    "utc_text",
]
