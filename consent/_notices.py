"""From a traced access to the patient's notices (docs/notifications.md): the facts each notice
reports, and which documents do not make one (a document still invisible to the patient is not announced)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection

from consent._model import INVISIBLE_TO_PATIENT, Caller, Notice
from consent._notice_text import Contacts, NoticeDetails
from consent._outbox import enqueue_notice
from pki import Principal, PurposeOfUse
from registry import DocumentFacts


def queue_notice(conn: Connection, patient_key: str, notice: Notice, caller: Caller,
                 documents: Sequence[DocumentFacts], at: str, contacts: Contacts | None = None) -> None:
    """The :data:`consent.NoticeSink` the node uses: the outbox rows of ``notice``, in the caller's transaction
    (``contacts``: the dossier's, when the caller has read them in it; else they are read here)."""
    announced = [d for d in documents if INVISIBLE_TO_PATIENT not in d.confidentiality]
    if notice is Notice.NEW_DOCUMENT and documents and not announced:
        return          # R9: announced when a professional makes it visible (DOCUMENT_VISIBLE)
    moment = _moment(at)
    details = NoticeDetails(at=moment, document_class=next(
        (d.class_code for d in (announced or documents) if d.class_code), None))
    if isinstance(caller, Principal):
        emergency = caller.purpose_of_use if caller.purpose_of_use is not PurposeOfUse.NORMAL else None
        details = NoticeDetails(at=moment, professional=caller.name, structure=caller.structure_id,
                                document_class=details.document_class, emergency=emergency)
    enqueue_notice(conn, patient_key, notice, details, now=moment, contacts=contacts)


def _moment(at: str) -> datetime:
    """The instant of a consent timestamp (``consent.utc_now``: ``2026-12-06T20:15:00.123Z``), UTC. The usual
    text through ``fromisoformat`` (``strptime`` cost ~40 us per notice: every first access and new document);
    anything else through the format itself, which says what is wrong with it."""
    if len(at) == 24 and at[10] == "T" and at[19] == "." and at[-1] == "Z":
        return datetime.fromisoformat(at)
    return datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
