"""Wiring of the patient notifications: the channels the configuration names, and the worker that sends the
outbox through them while the app runs (docs/notifications.md)."""

from __future__ import annotations

import logging
import os
import ssl
from typing import Final

from consent import ChannelKind, NotificationChannel, NotificationWorker, RetryPolicy, SmsGatewayChannel, SmtpChannel
from registry import Store
from server._config import Config

log = logging.getLogger("dmp.notify")
SMTP_PASSWORD_ENV: Final = "DMP_SMTP_PASSWORD"  # noqa: S105 - the variable's name, not a password
SMS_API_KEY_ENV: Final = "DMP_SMS_API_KEY"


class NotificationConfigError(ValueError):
    """The notification settings are incomplete; the message names the setting."""


def notification_channels(config: Config) -> dict[ChannelKind, NotificationChannel]:
    """The configured channels (none: messages wait in the outbox). Raises :class:`NotificationConfigError`."""
    channels: dict[ChannelKind, NotificationChannel] = {}
    if config.smtp_host:
        channels[ChannelKind.EMAIL] = _smtp(config)
    if config.sms_gateway_url:
        channels[ChannelKind.SMS] = SmsGatewayChannel(config.sms_gateway_url, api_key=os.environ.get(SMS_API_KEY_ENV),
                                                      timeout_s=config.sms_timeout_s)
    return channels


def _smtp(config: Config) -> SmtpChannel:
    assert config.smtp_host is not None
    if not config.smtp_sender:
        raise NotificationConfigError("smtp_host is set but smtp_sender (the From: address) is not")
    password = os.environ.get(SMTP_PASSWORD_ENV)
    if config.smtp_user and not password:
        raise NotificationConfigError(f"smtp_user is set: put the SMTP password in the {SMTP_PASSWORD_ENV} "
                                      "environment variable (never in config.json)")
    tls = ssl.create_default_context(cafile=str(config.path(config.smtp_ca_file))) if config.smtp_ca_file else None
    return SmtpChannel(config.smtp_host, config.smtp_port, config.smtp_sender, starttls=config.smtp_starttls,
                       user=config.smtp_user, password=password if config.smtp_user else None,
                       timeout_s=config.smtp_timeout_s, tls_context=tls)


def notification_worker(config: Config, store: Store) -> NotificationWorker | None:
    """The worker sending ``store``'s outbox, or None when no channel is configured. Each process of
    ``dmp serve --workers N`` runs one: their leases keep them from sending a message twice."""
    channels = notification_channels(config)
    if not channels:
        log.info("no notification channel configured (smtp_host, sms_gateway_url): notifications wait in the outbox")
        return None
    retry = RetryPolicy(initial_s=config.notification_retry_initial_s, max_s=config.notification_retry_max_s)
    return NotificationWorker(store, channels, poll_interval=config.notification_poll_s, retry=retry)
