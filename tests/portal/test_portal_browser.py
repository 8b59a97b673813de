"""A patient in a real browser (headless Chromium) against a real `dmp serve` and a real SMTP server:
activation, login with the code read from the mail server (a wrong one, an expired one), documents, masking
checked through ITI-18 with a professional's VIHF, blocking checked likewise, the history, the export, closure
(docs/portal.md). Screenshots of the main pages go to docs/screenshots/ (shown in the README)."""

from __future__ import annotations

import io
import re
import zipfile

from consent_client import doc, feed, find, refused, unique_ids
from playwright.sync_api import Page, expect
from portal_client import EMAIL, PortalNode, activate, first_login, log_in, shot, submit_password
from vihf_client import ALICE, BOB


def test_activation_login_with_otp_documents_masking_blocking_history_export_closure(page: Page, portal: PortalNode):
    nir, ins, code = portal.create_patient()
    report = doc(b"Compte rendu de consultation du patient", ins)
    assert feed(portal.node, ALICE, ins, report).status == "Success"
    assert report.unique_id in unique_ids(find(portal.node, BOB, ins))

    # Activation with the creation code, the NIR and the Vitale serial number.
    page.goto(f"{portal.url}/activation")
    shot(page, "01-activation")
    login_id, initial = activate(page, portal, nir, code)
    assert re.fullmatch(r"[0-9]{4}[a-z]{4}", login_id)
    assert len(initial) == 8
    shot(page, "02-activated")

    # Login: password, then the code sent by e-mail. A wrong code, then an expired one, are refused.
    seen = len(portal.codes_sent_to(EMAIL))
    submit_password(page, portal, login_id, initial)
    expect(page.get_by_role("heading", name="Code de connexion")).to_be_visible()
    shot(page, "03-otp")
    good = portal.next_code(EMAIL, seen)
    page.get_by_label("Code reçu").fill("000000" if good != "000000" else "111111")
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("alert")).to_contain_text("Code incorrect ou expiré")
    portal.age_codes()
    page.get_by_label("Code reçu").fill(good)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("alert")).to_contain_text("Code incorrect ou expiré")
    log_in(page, portal, login_id, initial)
    first_login(page, "un mot de passe solide")

    # The documents: the professional's report is listed; opened and downloaded.
    shot(page, "04-documents")
    page.get_by_role("link", name="Compte rendu de consultation").click()
    expect(page.locator("#visibility")).to_contain_text("Visible")
    with page.expect_download() as download:
        page.get_by_role("link", name="Télécharger").click()
    assert download.value.path().read_bytes() == report.content

    # Hidden from professionals: gone from BOB's very next ITI-18 (ALICE, its author, still sees it).
    page.get_by_role("button", name="Masquer aux professionnels").click()
    expect(page.locator("#visibility")).to_contain_text("Masqué")
    shot(page, "05-document-masked")
    assert report.unique_id not in unique_ids(find(portal.node, BOB, ins))
    assert report.unique_id in unique_ids(find(portal.node, ALICE, ins))
    page.get_by_role("button", name="Rendre visible aux professionnels").click()
    expect(page.locator("#visibility")).to_contain_text("Visible")
    assert report.unique_id in unique_ids(find(portal.node, BOB, ins))

    # BOB blocked: his next ITI-18 is refused; unblocked, he needs an authorisation again (R19).
    page.get_by_role("link", name="Professionnels").click()
    page.get_by_label("Bloquer un professionnel").fill(BOB.idnat_ps)
    page.get_by_role("button", name="Bloquer", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("n'a plus accès")
    shot(page, "06-professionals")
    refused(find(portal.node, BOB, ins), "blocked")
    page.get_by_role("button", name=f"Débloquer {BOB.idnat_ps}").click()
    expect(page.get_by_role("status")).to_contain_text("n'est plus bloqué")
    refused(find(portal.node, BOB, ins), "not-authorized")
    page.get_by_label("Autoriser un professionnel").fill(BOB.idnat_ps)
    page.get_by_role("button", name="Autoriser", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("est autorisé")
    assert report.unique_id in unique_ids(find(portal.node, BOB, ins))

    # The history shows the professionals' accesses, the refusal, and the patient's own actions.
    page.get_by_role("link", name="Historique").click()
    history = page.locator("table")
    expect(history).to_contain_text("Blocage d'un professionnel")
    expect(history).to_contain_text("Refusé : professionnel bloqué")
    expect(history).to_contain_text("Masquage d'un document aux professionnels")
    expect(history).to_contain_text("Connexion à l'espace en ligne")
    expect(history.locator("tr", has_text="Création du dossier")).to_contain_text("Opérateur, pour votre compte")
    shot(page, "07-history")

    # A copy of everything: a zip with an index, the documents and the history.
    page.get_by_role("link", name="Paramètres").click()
    shot(page, "08-settings")
    with page.expect_download() as download:
        page.get_by_role("button", name="Télécharger une copie de mon dossier").click()
    archive = zipfile.ZipFile(io.BytesIO(download.value.path().read_bytes()))
    names = archive.namelist()
    assert {"index.html", "historique.csv", "dossier.json"} <= set(names)
    assert [archive.read(n) for n in names if n.startswith("documents/")] == [report.content]
    assert "Compte rendu de consultation" in archive.read("index.html").decode()

    # Closure: professionals are refused at once; the patient still reads, and reopens.
    page.get_by_label("Je confirme vouloir fermer mon dossier").check()
    page.get_by_role("button", name="Fermer mon dossier").click()
    expect(page.get_by_role("status")).to_contain_text("Votre dossier est fermé")
    shot(page, "09-closed")
    refused(find(portal.node, BOB, ins), "dossier-closed")
    page.get_by_role("button", name="Rouvrir mon dossier").click()
    expect(page.get_by_role("status")).to_contain_text("rouvert")
    assert report.unique_id in unique_ids(find(portal.node, BOB, ins))

    # Logging out ends the session: the pages send back to the login.
    page.get_by_role("button", name="Se déconnecter").click()
    expect(page.get_by_role("heading", name="Se connecter à mon DMP")).to_be_visible()
    page.goto(f"{portal.url}/documents")
    expect(page.get_by_role("heading", name="Se connecter à mon DMP")).to_be_visible()
