"""What each notice says and to whom (docs/notifications.md): pure composition, no database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent import ChannelKind, Contacts, Notice, NoticeDetails, compose
from pki import PurposeOfUse

NOW = datetime(2026, 12, 6, 20, 15, 30, tzinfo=UTC)      # 21:15 in Paris (winter time)
EVERYONE = Contacts(email="patient@example.fr", mobile="+33612345678", trusted_email="proche@example.fr",
                    notify_trusted=True, notify_new_document=True)
DR = NoticeDetails(professional="Dr Jeanne Martin", structure="Cabinet du Parc", document_class="10")


def test_first_access_tells_who_and_when_in_paris_time():
    email, sms, trusted = compose(Notice.FIRST_ACCESS, DR, EVERYONE, now=NOW)
    assert (email.channel, email.recipient) == (ChannelKind.EMAIL, "patient@example.fr")
    assert email.subject == "Votre DMP : premier accès d'un professionnel de santé"
    assert ("Dr Jeanne Martin (Cabinet du Parc) a accédé pour la première fois à votre DMP le 06/12/2026 à 21:15."
            in email.body)
    assert (sms.channel, sms.recipient) == (ChannelKind.SMS, "+33612345678")
    assert sms.body == ("DMP : Dr Jeanne Martin (Cabinet du Parc) a accédé pour la première fois à votre DMP "
                        "le 06/12/2026 à 21:15. Détails dans Mon espace santé.")
    assert (trusted.channel, trusted.recipient) == (ChannelKind.EMAIL, "proche@example.fr")
    assert "personne de confiance" in trusted.body
    assert "au DMP de la personne qui vous a choisi(e) le 06/12/2026 à 21:15" in trusted.body


def test_summer_time_and_event_time():
    july = NoticeDetails(at=datetime(2026, 7, 1, 6, 5, tzinfo=UTC))
    (email,) = compose(Notice.DOSSIER_CLOSED, july, Contacts(email="p@example.fr"), now=NOW)
    assert "Votre DMP a été fermé le 01/07/2026 à 08:05." in email.body
    assert "conservé 10 ans" in email.body


@pytest.mark.parametrize(("mode", "words"), [
    (PurposeOfUse.BREAK_GLASS, "en mode urgence (« bris de glace »)"),
    (PurposeOfUse.CENTRE_15, "en urgence depuis le SAMU-Centre 15 (régulation médicale)"),
])
def test_emergency_access_names_the_mode(mode, words):
    details = NoticeDetails(professional="Dr Paul Urgence", emergency=mode)
    email, sms = compose(Notice.EMERGENCY_ACCESS, details, Contacts(email="p@example.fr", mobile="+33600000000"),
                         now=NOW)
    assert email.subject == "Votre DMP : accès en urgence"
    assert f"Dr Paul Urgence a accédé à votre DMP {words} le 06/12/2026 à 21:15." in email.body
    assert words in sms.body


def test_new_document_only_when_the_patient_opted_in():
    opted_out = Contacts(email="p@example.fr", mobile="+33600000000", notify_new_document=False)
    assert compose(Notice.NEW_DOCUMENT, DR, opted_out, now=NOW) == []
    (email,) = compose(Notice.NEW_DOCUMENT, DR, Contacts(email="p@example.fr", notify_new_document=True), now=NOW)
    assert ("Un nouveau document (compte rendu) a été ajouté à votre DMP le 06/12/2026 à 21:15 par "
            "Dr Jeanne Martin (Cabinet du Parc).") in email.body


@pytest.mark.parametrize("notice", [n for n in Notice if n is not Notice.NEW_DOCUMENT])
def test_every_other_notice_is_always_sent(notice):
    opted_out = Contacts(email="p@example.fr", notify_new_document=False)
    assert [m.recipient for m in compose(notice, DR, opted_out, now=NOW)] == ["p@example.fr"]


def test_document_visible_names_the_category_only():
    details = NoticeDetails(document_class="31")
    (email,) = compose(Notice.DOCUMENT_VISIBLE, details, Contacts(email="p@example.fr"), now=NOW)
    assert ("Un document (imagerie médicale) de votre DMP vous est désormais accessible depuis le 06/12/2026 à "
            "21:15.") in email.body
    (unknown,) = compose(Notice.DOCUMENT_VISIBLE, NoticeDetails(document_class="XYZ"), Contacts(email="p@e.fr"),
                         now=NOW)
    assert "Un document de votre DMP vous est" in unknown.body


def test_no_contact_details_no_message():
    for notice in Notice:
        assert compose(notice, DR, Contacts(notify_trusted=True, notify_new_document=True), now=NOW) == []


def test_trusted_person_only_when_the_patient_chose_it():
    chosen = Contacts(email="p@example.fr", trusted_email="t@example.fr", notify_trusted=True)
    not_chosen = Contacts(email="p@example.fr", trusted_email="t@example.fr", notify_trusted=False)
    no_address = Contacts(email="p@example.fr", notify_trusted=True)
    assert [m.recipient for m in compose(Notice.FIRST_ACCESS, DR, chosen, now=NOW)] == ["p@example.fr",
                                                                                         "t@example.fr"]
    assert [m.recipient for m in compose(Notice.FIRST_ACCESS, DR, not_chosen, now=NOW)] == ["p@example.fr"]
    assert [m.recipient for m in compose(Notice.FIRST_ACCESS, DR, no_address, now=NOW)] == ["p@example.fr"]


def test_trusted_person_message_names_the_patient_when_known():
    details = NoticeDetails(professional="Dr X", patient_name="Louise Durand")
    trusted = compose(Notice.EMERGENCY_ACCESS, details, Contacts(trusted_email="t@example.fr", notify_trusted=True),
                      now=NOW)[0]
    assert trusted.subject == "DMP (personne de confiance) : accès en urgence"
    assert "Dr X a accédé au DMP de Louise Durand en urgence le 06/12/2026 à 21:15." in trusted.body
    assert "votre DMP" not in trusted.body


def test_mobile_only_gets_an_sms():
    (sms,) = compose(Notice.DOSSIER_CREATED, NoticeDetails(), Contacts(mobile="+33600000000"), now=NOW)
    assert sms.channel is ChannelKind.SMS
    assert sms.body == ("DMP : Votre DMP (Dossier Médical Partagé) a été créé le 06/12/2026 à 21:15. "
                        "Détails dans Mon espace santé.")


def test_unnamed_professional():
    (email,) = compose(Notice.FIRST_ACCESS, NoticeDetails(), Contacts(email="p@example.fr"), now=NOW)
    assert "Un professionnel de santé a accédé pour la première fois à votre DMP" in email.body


@given(name=st.text(max_size=300), structure=st.text(max_size=300))
def test_names_cannot_forge_lines(name, structure):
    """Whatever a name holds (line breaks, control characters), it stays inside its sentence, short."""
    details = NoticeDetails(professional=name, structure=structure)
    plain = compose(Notice.FIRST_ACCESS, NoticeDetails(professional="A", structure="B"), EVERYONE, now=NOW)
    for message, reference in zip(compose(Notice.FIRST_ACCESS, details, EVERYONE, now=NOW), plain, strict=True):
        assert message.body.count("\n") == reference.body.count("\n")
        assert not any(ord(c) < 0x20 and c != "\n" for c in message.body)
        assert len(message.body) <= len(reference.body) + 2 * 80
