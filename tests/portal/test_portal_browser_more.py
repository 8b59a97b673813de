"""The rest of what a patient does in the portal, in a real browser against a real `dmp serve` and SMTP server
(docs/portal.md): add their own document (class 90, seen by professionals through ITI-18), name a médecin
traitant, record their wishes and notification choices, recover a forgotten password with a code sent by
e-mail; a legal representative acting for a minor does not see documents invisible to representatives; the
pages are readable on a phone."""

from __future__ import annotations

import json

from consent_client import cli, doc, feed, find, unique_ids
from playwright.sync_api import Browser, Page, expect
from portal_client import PortalNode, activate, first_login, log_in, shot
from vihf_client import ALICE, BOB

from registry import _model

INVISIBLE_TO_REPRESENTATIVES = _model.Code("INVISIBLE_REPRESENTANTS_LEGAUX", "1.2.250.1.213.1.1.4.13",
                                           "Non visible par les représentants légaux du patient")
NORMAL = _model.Code("N", "2.16.840.1.113883.5.25", "Normal")


def ready(page: Page, portal: PortalNode, email: str, *extra: str) -> tuple[str, str, str]:
    """A new dossier, its space activated and the first login done: (NIR, INS, login id)."""
    nir, ins, code = portal.create_patient(*extra, email=email)
    login_id, initial = activate(page, portal, nir, code, email)
    log_in(page, portal, login_id, initial, email)
    first_login(page, "mot de passe du patient")
    return nir, ins, login_id


def test_own_document_treating_doctor_wishes_notifications(page: Page, portal: PortalNode, tmp_path):
    _, ins, _ = ready(page, portal, "autre.patient@example.fr")
    # The patient's own document: class 90, filed through the repository, visible to an authorised professional.
    page.get_by_role("link", name="Ajouter un document").click()
    page.get_by_label("Titre").fill("Résultats de prise de sang 2019")
    page.get_by_label("Type de document").select_option("EXPPAT_2")
    upload = tmp_path / "resultats.txt"
    upload.write_bytes(b"Glycemie 0,95 g/L")
    page.get_by_label("Fichier").set_input_files(str(upload))
    shot(page, "10-add-document")
    page.get_by_role("button", name="Ajouter").click()
    expect(page.get_by_role("status")).to_contain_text("ajouté")
    expect(page.locator("table")).to_contain_text("ajouté par vous")
    reply = find(portal.node, BOB, ins)
    assert len(unique_ids(reply)) == 1
    classes = {c.get("nodeRepresentation") for c in reply.body.iter("{*}Classification")}
    assert {"90", "EXPPAT_2"} <= classes

    # The médecin traitant is named, and cannot be blocked (R33).
    page.get_by_role("link", name="Professionnels").click()
    page.get_by_label("Identifiant national (RPPS) du médecin traitant").fill(ALICE.idnat_ps)
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_text("Votre médecin traitant")).to_contain_text(ALICE.idnat_ps)
    page.get_by_label("Bloquer un professionnel").fill(ALICE.idnat_ps)
    page.get_by_role("button", name="Bloquer", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("médecin traitant ne peut pas être bloqué")

    # Wishes and notification choices are stored (and shown back), each change in the history.
    page.goto(f"{portal.url}/parametres")
    page.get_by_label("Personne de confiance (nom, lien, téléphone)").fill("Jeanne Martin, sœur, 06 12 34 56 78")
    page.get_by_label("Personne à prévenir en cas d'urgence").fill("Paul Martin, 06 98 76 54 32")
    page.get_by_label("Directives anticipées").fill("Pas d'acharnement thérapeutique.")
    page.get_by_label("Don d'organes").select_option("accepte")
    page.locator("form[action$='/parametres/volontes'] button").click()
    expect(page.get_by_role("status")).to_contain_text("enregistrés")
    expect(page.get_by_label("Personne de confiance (nom, lien, téléphone)")).to_have_value(
        "Jeanne Martin, sœur, 06 12 34 56 78")
    expect(page.get_by_label("Don d'organes")).to_have_value("accepte")
    page.get_by_label("M'avertir à chaque nouveau document").uncheck()
    page.get_by_label("Envoyer aussi les alertes à une personne de confiance").check()
    page.get_by_label("E-mail de cette personne").fill("jeanne@example.fr")
    page.locator("form[action$='/parametres/notifications'] button").click()
    expect(page.get_by_label("M'avertir à chaque nouveau document")).not_to_be_checked()
    expect(page.get_by_label("E-mail de cette personne")).to_have_value("jeanne@example.fr")
    page.get_by_label("Un professionnel de santé peut accéder à mon dossier si mon état").uncheck()
    page.locator("form[action$='/parametres/urgence'] button").click()
    shown = json.loads(cli(portal.node, "patient", "show", "--ins", ins, "--json"))
    assert shown["allow_break_glass"] is False
    assert shown["allow_centre_15"] is True
    assert shown["treating_doctor"] == ALICE.idnat_ps
    page.get_by_role("link", name="Historique").click()
    history = page.locator("table")
    expect(history).to_contain_text("Modification des choix (notifications, volontés)")
    expect(history).to_contain_text("Choix du médecin traitant")
    expect(history).to_contain_text("Ajout de document")


def test_forgotten_password_with_a_code_by_email(page: Page, portal: PortalNode):
    email = "oubli@example.fr"
    nir, _, login_id = ready(page, portal, email)
    page.get_by_role("button", name="Se déconnecter").click()
    page.get_by_role("link", name="Mot de passe oublié").click()
    seen = len(portal.codes_sent_to(email))
    page.get_by_label("Identifiant").fill(login_id)
    page.get_by_label("Numéro de sécurité sociale").fill(nir)
    page.get_by_role("button", name="Recevoir un code").click()
    expect(page.get_by_role("status")).to_contain_text("Si ces informations correspondent")
    page.get_by_label("Code reçu").fill(portal.next_code(email, seen))
    page.get_by_label("Nouveau mot de passe").fill("nouveau mot de passe")
    page.get_by_label("Confirmez le mot de passe").fill("nouveau mot de passe")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("status")).to_contain_text("mot de passe est changé")
    log_in(page, portal, login_id, "nouveau mot de passe", email)
    expect(page.get_by_role("heading", name="Mes documents")).to_be_visible()


def test_legal_representative_of_a_minor(page: Page, portal: PortalNode):
    email = "parent@example.fr"
    nir, ins, code = portal.create_patient("--minor", "--consent-by", "representative", email=email)
    seen_by_parents = doc(b"vaccinations", ins)
    secret = doc(b"consultation confidentielle", ins,
                 confidentiality_codes=[NORMAL, INVISIBLE_TO_REPRESENTATIVES])
    secret.meta["title"] = _model.Text("Consultation confidentielle", "fr-FR")
    for d in (seen_by_parents, secret):
        assert feed(portal.node, ALICE, ins, d).status == "Success"
    login_id, initial = activate(page, portal, nir, code, email)
    log_in(page, portal, login_id, initial, email)
    first_login(page, "mot de passe du parent")
    expect(page.get_by_text("représentant légal d'un mineur")).to_be_visible()
    expect(page.locator("table")).to_contain_text("1 document")
    expect(page.locator("table")).not_to_contain_text("Consultation confidentielle")
    page.goto(f"{portal.url}/documents/{secret.unique_id}/fichier")
    expect(page.get_by_role("alert")).to_contain_text("n'existe pas ou ne vous est pas accessible")
    assert {seen_by_parents.unique_id, secret.unique_id} <= unique_ids(find(portal.node, ALICE, ins))


def test_pages_on_a_phone(browser: Browser, portal: PortalNode):
    context = browser.new_context(locale="fr-FR", viewport={"width": 375, "height": 740}, is_mobile=True)
    try:
        page = context.new_page()
        ready(page, portal, "mobile@example.fr")
        # No horizontal scrolling on a 375 px screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        shot(page, "11-phone-documents")
        page.goto(f"{portal.url}/parametres")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        context.close()
