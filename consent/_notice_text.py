"""What the patient (and their trusted person) is told, in French: pure functions from a :class:`Notice` and its
:class:`NoticeDetails` to the messages to send (docs/notifications.md).

E-mail and SMS are not confidential channels, so a message says who did what and when, and nothing of the
patient's health: a document is named by its category (TRE_A03 classCode label), never by its title, which may
name a condition; the patient reads the rest in their own space.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from consent._model import Notice
from pki import PurposeOfUse

# Patients read times in the French legal time; the tables keep UTC.
DISPLAY_ZONE: Final = ZoneInfo("Europe/Paris")
_NAME_LIMIT: Final = 80
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")

# ANS TRE_A03 classCode display names (docs/conformance.md §7).
CLASS_LABELS: Final = {
    "10": "compte rendu",
    "11": "synthèse",
    "31": "imagerie médicale",
    "42": "prescription",
    "43": "dispensation",
    "44": "plan de soins",
    "45": "traitement administré",
    "52": "certificat ou déclaration",
    "60": "données de remboursement",
    "90": "document déposé par le patient",
    "95": "document de gestion",
    "99": "document technique",
}

_SIGNATURE: Final = "\n\nCe message est envoyé automatiquement par le service DMP ; merci de ne pas y répondre.\n"


class ChannelKind(enum.Enum):
    """How a message travels; the value is the outbox ``channel`` column."""

    EMAIL = "email"
    SMS = "sms"


@dataclass(frozen=True)
class NoticeDetails:
    """The facts a notice reports, given by the transaction that causes it.

    ``at`` is when it happened (timezone-aware; default: the transaction's ``now``). ``professional`` and
    ``structure`` are display names (the VIHF ``subject-id`` and the structure's name), ``document_class`` a
    TRE_A03 classCode, ``emergency`` the access mode of an EMERGENCY_ACCESS. ``patient_name`` only tells the
    trusted person whose DMP it is; without it the message says "the person who chose you".
    """

    at: datetime | None = None
    professional: str | None = None
    structure: str | None = None
    document_class: str | None = None
    emergency: PurposeOfUse | None = None
    patient_name: str | None = None


@dataclass(frozen=True)
class Contacts:
    """The dossier's contact details and the patient's notification choices."""

    email: str | None = None
    mobile: str | None = None
    trusted_email: str | None = None
    notify_trusted: bool = False
    notify_new_document: bool = False


@dataclass(frozen=True)
class OutgoingMessage:
    channel: ChannelKind
    recipient: str
    subject: str
    body: str


def compose(notice: Notice, details: NoticeDetails, contacts: Contacts, *, now: datetime) -> list[OutgoingMessage]:
    """The messages ``notice`` sends: to the patient's e-mail and mobile, and to the trusted person's e-mail when
    the patient chose so. NEW_DOCUMENT only when the patient opted in; any other always (docs/notifications.md).
    No contact details: no message (a DMP exists without them, R28 of docs/consent.md)."""
    if notice is Notice.NEW_DOCUMENT and not contacts.notify_new_document:
        return []
    facts = _Facts.of(details, now)
    subject = f"Votre DMP : {_TOPICS[notice]}"
    out: list[OutgoingMessage] = []
    if contacts.email:
        out.append(OutgoingMessage(ChannelKind.EMAIL, contacts.email, subject, _patient_email(notice, facts)))
    if contacts.mobile:
        out.append(OutgoingMessage(ChannelKind.SMS, contacts.mobile, subject, _sms(notice, facts)))
    if contacts.notify_trusted and contacts.trusted_email:
        trusted_subject = f"DMP (personne de confiance) : {_TOPICS[notice]}"
        out.append(OutgoingMessage(ChannelKind.EMAIL, contacts.trusted_email, trusted_subject,
                                   _trusted_email(notice, facts)))
    return out


@dataclass(frozen=True)
class _Facts:
    when: str
    who: str
    by: str                 # " par <who>" or ""
    kind: str               # " (<category>)" or ""
    mode: str
    patient: str | None

    @classmethod
    def of(cls, d: NoticeDetails, now: datetime) -> _Facts:
        at = (d.at or now).astimezone(DISPLAY_ZONE)
        name, structure = _clean(d.professional), _clean(d.structure)
        who = name or "Un professionnel de santé"
        if structure:
            who = f"{who} ({structure})"
        label = CLASS_LABELS.get(d.document_class or "")
        return cls(
            when=at.strftime("le %d/%m/%Y à %H:%M"),
            who=who,
            by=f" par {who}" if name or structure else "",
            kind=f" ({label})" if label else "",
            mode=_MODES.get(d.emergency, "en urgence") if d.emergency else "en urgence",
            patient=_clean(d.patient_name),
        )


def _clean(text: str | None) -> str | None:
    """A name as one short line: no control characters or line breaks that would let it forge message lines."""
    if not text:
        return None
    line = " ".join(_CONTROL.sub(" ", text).split())
    return line[:_NAME_LIMIT] or None


_MODES: Final = {
    PurposeOfUse.BREAK_GLASS: "en mode urgence (« bris de glace »)",
    PurposeOfUse.CENTRE_15: "en urgence depuis le SAMU-Centre 15 (régulation médicale)",
}

_TOPICS: Final = {
    Notice.DOSSIER_CREATED: "création du dossier",
    Notice.FIRST_ACCESS: "premier accès d'un professionnel de santé",
    Notice.EMERGENCY_ACCESS: "accès en urgence",
    Notice.NEW_DOCUMENT: "nouveau document",
    Notice.DOCUMENT_VISIBLE: "un document est maintenant visible",
    Notice.DOSSIER_CLOSED: "fermeture du dossier",
}


@dataclass(frozen=True)
class _Dmp:
    """The dossier named in a sentence, with French contractions: "votre DMP" / "le DMP de …"."""

    it: str
    to: str
    of: str
    opened: str             # a document became visible to the patient


_YOURS: Final = _Dmp("votre DMP", "à votre DMP", "de votre DMP", "vous est désormais accessible")


def _theirs(patient: str | None) -> _Dmp:
    whose = f" de {patient}" if patient else " de la personne qui vous a choisi(e)"
    return _Dmp(f"le DMP{whose}", f"au DMP{whose}", f"du DMP{whose}", "est désormais accessible à son titulaire")


def _event(notice: Notice, f: _Facts, dmp: _Dmp) -> str:
    """One sentence saying what happened to the dossier."""
    match notice:
        case Notice.DOSSIER_CREATED:
            return f"{_cap(dmp.it)} (Dossier Médical Partagé) a été créé {f.when}{f.by}."
        case Notice.FIRST_ACCESS:
            return f"{f.who} a accédé pour la première fois {dmp.to} {f.when}."
        case Notice.EMERGENCY_ACCESS:
            return f"{f.who} a accédé {dmp.to} {f.mode} {f.when}."
        case Notice.NEW_DOCUMENT:
            return f"Un nouveau document{f.kind} a été ajouté {dmp.to} {f.when}{f.by}."
        case Notice.DOCUMENT_VISIBLE:
            return f"Un document{f.kind} {dmp.of} {dmp.opened} depuis {f.when}."
        case Notice.DOSSIER_CLOSED:
            return f"{_cap(dmp.it)} a été fermé {f.when}."


_ADVICE: Final = {
    Notice.DOSSIER_CREATED: "Vous pouvez le consulter et choisir qui y accède depuis Mon espace santé.",
    Notice.FIRST_ACCESS: "L'historique des accès est dans Mon espace santé ; vous pouvez y bloquer l'accès d'un "
                         "professionnel à votre DMP.",
    Notice.EMERGENCY_ACCESS: "L'historique des accès est dans Mon espace santé ; vous pouvez y refuser les accès en "
                             "urgence à votre DMP.",
    Notice.NEW_DOCUMENT: "Vous pouvez le consulter dans Mon espace santé.",
    Notice.DOCUMENT_VISIBLE: "Vous pouvez le consulter dans Mon espace santé.",
    Notice.DOSSIER_CLOSED: "Il est conservé 10 ans puis détruit ; pendant ce délai vous pouvez demander sa "
                           "réouverture.",
}


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _patient_email(notice: Notice, f: _Facts) -> str:
    return f"Bonjour,\n\n{_event(notice, f, _YOURS)}\n\n{_ADVICE[notice]}{_SIGNATURE}"


def _sms(notice: Notice, f: _Facts) -> str:
    return f"DMP : {_event(notice, f, _YOURS)} Détails dans Mon espace santé."


def _trusted_email(notice: Notice, f: _Facts) -> str:
    event = _event(notice, f, _theirs(f.patient))
    return (f"Bonjour,\n\nVous recevez ce message en tant que personne de confiance.\n\n{event}"
            f"\n\nSeul le titulaire du DMP (ou son représentant légal) peut consulter le dossier et en gérer les "
            f"accès.{_SIGNATURE}")
