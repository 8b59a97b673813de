"""The DMP consent rules: who may do what to which dossier and document (PDT-INF-526, docs/consent.md).

- :func:`decide` ``(caller, action, dossier, document) -> Decision`` and :func:`visibility` are the rules, pure
  and table-driven; :class:`Action`, :class:`Reason`, :class:`Notice`, :class:`Kind` their vocabulary.
- :class:`Guard` applies them to a request against the database: loads the dossier, decides, records every
  decision in the patient's chained access history (:func:`verify_history`), queues notices
  (:func:`enqueue_notice`; :class:`NotificationWorker` sends them, docs/notifications.md).
- :class:`DossierAdmin` is the patient's (or the operator's on the patient's behalf) administration of a
  dossier: creation, authorisations, blocks, médecin traitant, emergency access, closure.
"""

from consent._admin import Created, DossierAdmin, DossierView
from consent._channels import DeliveryError, NotificationChannel, SmsGatewayChannel, SmtpChannel
from consent._guard import AccessRefused, Guard, NoticeSink, Trace, utc_now
from consent._history import HistoryEntry, Problem, Recorded
from consent._model import (
    Action,
    AuthorizationState,
    Caller,
    Decision,
    Dossier,
    Kind,
    Notice,
    PatientCaller,
    Reason,
    kind_of,
)
from consent._notice_text import ChannelKind, Contacts, NoticeDetails, OutgoingMessage, compose
from consent._outbox import OutboxStatus, enqueue_notice, outbox_status, utc_text
from consent._rules import decide, status_action, version_actions, visibility
from consent._services import AuthorizationEntry, DmpServices, Existence
from consent._verify import verify_history
from consent._worker import NotificationWorker, RetryPolicy
from consent._xds import Admission, XdsConsent

__all__ = [
    "AccessRefused",
    "Action",
    "Admission",
    "AuthorizationEntry",
    "AuthorizationState",
    "Caller",
    "ChannelKind",
    "Contacts",
    "Created",
    "Decision",
    "DeliveryError",
    "DmpServices",
    "Dossier",
    "DossierAdmin",
    "DossierView",
    "Existence",
    "Guard",
    "HistoryEntry",
    "Kind",
    "Notice",
    "NoticeDetails",
    "NoticeSink",
    "NotificationChannel",
    "NotificationWorker",
    "OutboxStatus",
    "OutgoingMessage",
    "PatientCaller",
    "Problem",
    "Reason",
    "Recorded",
    "RetryPolicy",
    "SmsGatewayChannel",
    "SmtpChannel",
    "Trace",
    "XdsConsent",
    "compose",
    "decide",
    "enqueue_notice",
    "kind_of",
    "outbox_status",
    "status_action",
    "utc_now",
    "utc_text",
    "verify_history",
    "version_actions",
    "visibility",
]
