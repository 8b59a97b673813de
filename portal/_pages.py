"""The pages of the patients' space (docs/portal.md): activation, login with a one-time code, the forgotten
password, and the logged-in pages. Every action goes through :class:`consent.DossierAdmin` or
``portal._documents`` and so is decided by the consent rules and recorded in the patient's history."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import quote

from sqlalchemy import Connection
from starlette.background import BackgroundTask
from starlette.responses import FileResponse, Response, StreamingResponse

from consent import (
    AccessRefused,
    Action,
    ChannelKind,
    DeliveryError,
    DossierAdmin,
    NotificationChannel,
    PatientCaller,
    Reason,
)
from portal import _rules
from portal._accounts import Accounts, now_utc, patient_keys_for_nir, stamp
from portal._documents import PATIENT_TYPES, DocumentsError, DocumentView, PatientDocuments
from portal._export import write_export
from portal._labels import action_label, actor_label, reason_label
from portal._rate import RateLimit
from portal._web import PageRequest, end_session, redirect, render, start_session
from repository import BlobInfo

log = logging.getLogger("dmp.portal")
_GENERIC_LOGIN_ERROR: Final = ("Identifiant, mot de passe ou code incorrect, ou compte momentanément bloqué. "
                               "Vérifiez votre saisie ; après plusieurs erreurs, attendez 15 minutes.")
_GENERIC_ACTIVATION_ERROR: Final = ("Ces informations ne permettent pas d'activer un espace. Vérifiez le code de "
                                    "création, le NIR et le numéro de série de la carte Vitale.")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}")
_MOBILE = re.compile(r"\+?[0-9 .]{10,18}")
_IDNAT = re.compile(r"[0-9A-Za-z]{9,22}")
_VITALE = re.compile(r"[0-9A-Za-z]{6,20}")
_ORGAN: Final = {"": None, "accepte": "accepts", "refuse": "refuses", "indecis": "undecided"}
INFO: Final = {
    "session": "Votre session a expiré ou n'existe pas : connectez-vous.",
    "masked": "Le document est masqué aux professionnels de santé.",
    "unmasked": "Le document est de nouveau visible des professionnels de santé.",
    "added": "Votre document a été ajouté.",
    "saved": "Vos choix sont enregistrés.",
    "blocked": "Ce professionnel n'a plus accès à votre dossier.",
    "unblocked": "Ce professionnel n'est plus bloqué ; il devra de nouveau être autorisé pour accéder à votre dossier.",
    "revoked": "L'autorisation de ce professionnel est retirée.",
    "authorized": "Ce professionnel est autorisé à accéder à votre dossier.",
    "closed": "Votre dossier est fermé. Il est conservé 10 ans ; vous pouvez le rouvrir.",
    "reopened": "Votre dossier est rouvert.",
    "password": "Votre mot de passe est changé. Connectez-vous avec le nouveau.",
    "sent": "Si ces informations correspondent à un espace, un code vous a été envoyé.",
    "logout": "Vous êtes déconnecté.",
}


@dataclass
class PortalServices:
    """What the pages use."""

    accounts: Accounts
    admin: DossierAdmin
    documents: PatientDocuments
    channels: dict[ChannelKind, NotificationChannel]
    source_id: str              # the submission sets' sourceId (the node's OID)
    secure_cookies: bool
    limiter: RateLimit


class Pages:
    def __init__(self, services: PortalServices) -> None:
        self.s = services

    # --- helpers -------------------------------------------------------------------------------------

    def caller(self, key: str) -> PatientCaller:
        """The patient, or for a minor's dossier the legal representative (R27)."""
        view = self.s.admin.show(key)
        if view.minor:
            return PatientCaller(key, representative=True, name="représentant légal")
        return PatientCaller(key)

    def _page(self, page: PageRequest, template: str, status: int = 200, **values: object) -> Response:
        info = INFO.get(page.query("info"), "")
        if page.session is not None and page.session.stage == "in":
            values.setdefault("dossier", self.s.admin.show(page.session.patient_key))
        return render(page, template, status, info_text=info, **values)

    def _limited(self, page: PageRequest) -> bool:
        return not self.s.limiter.allow(page.client, now_utc())

    def _send_code(self, key: str, purpose: str) -> str | None:
        """A new one-time code sent directly (not through the outbox: it is only good for 10 minutes); where
        it went (masked), or None when it could not be sent."""
        contacts = self.s.admin.contacts(key)
        if contacts is None:
            return None
        code = self.s.accounts.issue_otp(key, purpose, now_utc())
        text = (f"Votre code de connexion à votre espace DMP : {code}\n\nIl est valable 10 minutes et ne sert "
                "qu'une fois. Ne le communiquez à personne : aucun service ne vous le demandera.\n")
        targets = [(ChannelKind.EMAIL, contacts.email), (ChannelKind.SMS, contacts.mobile)]
        for kind, address in targets:
            channel = self.s.channels.get(kind)
            if address and channel is not None:
                try:
                    channel.send(address, "Votre code de connexion DMP", text)
                except DeliveryError as exc:
                    log.warning("one-time code not sent: %s", exc)
                    continue
                return _rules.mask_email(address) if kind is ChannelKind.EMAIL else _rules.mask_mobile(address)
        return None

    # --- activation ----------------------------------------------------------------------------------

    def activation(self, page: PageRequest) -> Response:
        if page.method == "GET":
            return self._page(page, "activate.html")
        f = page.form
        if self._limited(page):
            return self._page(page, "activate.html", 429, error="Trop de tentatives. Réessayez dans quelques minutes.")
        email, mobile = f.get("email", "").strip(), f.get("mobile", "").strip()
        problem = _contact_problem(email, mobile, required=True)
        if problem:
            return self._page(page, "activate.html", 400, error=problem, form=f)
        if "".join(f.get("nir", "").split()) != "".join(f.get("nir2", "").split()):
            return self._page(page, "activate.html", 400, error="Les deux saisies du NIR ne sont pas identiques.",
                              form=f)
        serial = f.get("vitale", "").strip()
        keys = [k for k in patient_keys_for_nir(f.get("nir", "")) if self.s.admin.contacts(k) is not None]
        code = f.get("code", "").strip()
        key = keys[0] if len(keys) == 1 else None
        if key is None or not _VITALE.fullmatch(serial) or not self.s.admin.creation_code_matches(key, code):
            return self._page(page, "activate.html", 400, error=_GENERIC_ACTIVATION_ERROR, form=f)
        caller = self.caller(key)
        created: list[tuple[str, str]] = []

        def work(conn, k, now):  # type: ignore[no-untyped-def]
            if self.s.accounts.has_account(conn, k):
                raise AccessRefused(Reason.NOT_PERMITTED, "already active")
            created.append(self.s.accounts.activate(conn, k, serial, now_utc()))
        try:
            self.s.admin.act(key, Action.ACTIVATE, caller, work, "portal account")
            self.s.admin.set_contacts(key, email=email or None, mobile=mobile or None, caller=caller)
        except AccessRefused:
            return self._page(page, "activate.html", 400, error=_GENERIC_ACTIVATION_ERROR +
                              " Si votre espace est déjà activé, connectez-vous.", form=f)
        login_id, password = created[0]
        return self._page(page, "activated.html", login_id=login_id, password=password)

    # --- login ---------------------------------------------------------------------------------------

    def login(self, page: PageRequest) -> Response:
        if page.method == "GET":
            return self._page(page, "login.html")
        if self._limited(page):
            return self._page(page, "login.html", 429, error="Trop de tentatives. Réessayez dans quelques minutes.")
        login_id = _rules.normal_login_id(page.form.get("login", ""))
        password = page.form.get("password", "")
        now = now_utc()
        account, ok = self.s.accounts.check_password(login_id or "", password, now) if login_id else (None, False)
        if account is not None and not ok:
            self.s.admin.record(account.patient_key, Action.LOGIN, self.caller(account.patient_key),
                                "wrong password or locked", refused=Reason.NOT_PERMITTED)
        if account is None or not ok:
            return self._page(page, "login.html", 400, error=_GENERIC_LOGIN_ERROR)
        sent_to = self._send_code(account.patient_key, "login")
        if sent_to is None:
            return self._page(page, "login.html", 503, error="Le code de connexion n'a pas pu être envoyé. "
                              "Réessayez dans quelques minutes.")
        token, session = self.s.accounts.open_session(account.patient_key, "otp", now)
        page.session, page.csrf = session, session.csrf     # the code's form belongs to the new session
        response = self._page(page, "otp.html", sent_to=sent_to)
        start_session(response, token, self.s.secure_cookies)
        return response

    def otp(self, page: PageRequest) -> Response:
        assert page.session is not None
        if page.method == "GET":
            return self._page(page, "otp.html")
        key = page.session.patient_key
        code = _rules.normal_otp(page.form.get("code", ""))
        if self._limited(page) or code is None or not self.s.accounts.use_otp(key, "login", code, now_utc()):
            self.s.admin.record(key, Action.LOGIN, self.caller(key), "wrong or expired one-time code",
                                refused=Reason.NOT_PERMITTED)
            return self._page(page, "otp.html", 400, error="Code incorrect ou expiré. Un code sert une fois et "
                              "vaut 10 minutes : reconnectez-vous pour en recevoir un autre.")
        self.s.accounts.close_session(page.session)
        token, _ = self.s.accounts.open_session(key, "in", now_utc())   # a new id once logged in
        self.s.admin.record(key, Action.LOGIN, self.caller(key), "password and one-time code")
        account = self.s.accounts.account(key)
        response = redirect("/premiere-connexion" if account and account.must_change_password else "/documents")
        start_session(response, token, self.s.secure_cookies)
        return response

    def logout(self, page: PageRequest) -> Response:
        assert page.session is not None
        self.s.admin.record(page.session.patient_key, Action.LOGOUT, self.caller(page.session.patient_key))
        self.s.accounts.close_session(page.session)
        response = redirect("/connexion", info="logout")
        end_session(response, self.s.secure_cookies)
        return response

    # --- forgotten password --------------------------------------------------------------------------

    def forgot(self, page: PageRequest) -> Response:
        if page.method == "GET":
            return self._page(page, "forgot.html")
        if self._limited(page):
            return self._page(page, "forgot.html", 429, error="Trop de tentatives. Réessayez dans quelques minutes.")
        login_id = _rules.normal_login_id(page.form.get("login", ""))
        account = self.s.accounts.account_by_login(login_id) if login_id else None
        keys = patient_keys_for_nir(page.form.get("nir", ""))
        key = account.patient_key if account is not None and account.patient_key in keys else None
        # The same answer whether or not the login id and NIR match an account (no enumeration).
        token, _ = self.s.accounts.open_session(key or "-", "reset", now_utc())
        if key is not None:
            self._send_code(key, "reset")
        response = redirect("/reinitialisation", info="sent")
        start_session(response, token, self.s.secure_cookies)
        return response

    def reset(self, page: PageRequest) -> Response:
        assert page.session is not None
        if page.method == "GET":
            return self._page(page, "reset.html")
        key = page.session.patient_key
        f = page.form
        account = self.s.accounts.account(key)
        problem = _rules.password_problem(f.get("password", ""), f.get("confirm", ""),
                                          login_id=account.login_id if account else None)
        code = _rules.normal_otp(f.get("code", ""))
        if problem is None and (self._limited(page) or account is None or code is None
                                or not self.s.accounts.use_otp(key, "reset", code, now_utc())):
            problem = "Code incorrect ou expiré. Recommencez la demande pour recevoir un autre code."
        if problem is not None:
            return self._page(page, "reset.html", 400, error=problem)
        caller = self.caller(key)
        def work(conn: Connection, k: str, now: str) -> None:
            self.s.accounts.set_password(conn, k, f["password"])
            self.s.accounts.close_sessions_of(conn, k)     # every session opened with the old password ends
        self.s.admin.act(key, Action.SET_CONTACTS, caller, work, "password reset with a one-time code")
        response = redirect("/connexion", info="password")
        end_session(response, self.s.secure_cookies)
        return response

    # --- first login (S003) ----------------------------------------------------------------------------

    def first_login(self, page: PageRequest) -> Response:
        assert page.session is not None
        key = page.session.patient_key
        contacts = self.s.admin.contacts(key)
        if page.method == "GET":
            return self._page(page, "first_login.html", contacts=contacts)
        f = page.form
        account = self.s.accounts.account(key)
        email, mobile = f.get("email", "").strip(), f.get("mobile", "").strip()
        problem = _contact_problem(email, mobile, required=True) or _rules.password_problem(
            f.get("password", ""), f.get("confirm", ""), login_id=account.login_id if account else None)
        if f.get("emergency") not in ("oui", "non"):
            problem = problem or "Indiquez si vous acceptez l'accès en cas d'urgence."
        if problem:
            return self._page(page, "first_login.html", 400, error=problem, contacts=contacts)
        caller = self.caller(key)
        self.s.admin.act(key, Action.SET_CONTACTS, caller, lambda c, k, now: self.s.accounts.set_password(
            c, k, f["password"]), "first login: new password")
        self.s.admin.set_contacts(key, email=email or None, mobile=mobile or None, caller=caller)
        allow = f["emergency"] == "oui"
        self.s.admin.set_emergency_access(key, break_glass=allow, centre_15=allow, caller=caller)
        return redirect("/documents", info="saved")

    # --- documents -----------------------------------------------------------------------------------

    def documents(self, page: PageRequest) -> Response:
        assert page.session is not None
        docs = self.s.documents.list(self.caller(page.session.patient_key))
        return self._page(page, "documents.html", documents=docs)

    def document(self, page: PageRequest) -> Response:
        assert page.session is not None
        try:
            doc = self.s.documents.entry(self.caller(page.session.patient_key), page.path_param("uid"))
        except DocumentsError as exc:
            return self._page(page, "error.html", 404, message=str(exc))
        return self._page(page, "document.html", doc=doc)

    def download(self, page: PageRequest) -> Response:
        assert page.session is not None
        try:
            doc, blob = self.s.documents.open(self.caller(page.session.patient_key), page.path_param("uid"))
        except DocumentsError as exc:
            return self._page(page, "error.html", 404, message=str(exc))
        inline = page.query("voir") == "1"
        disposition = "inline" if inline else "attachment"
        name = _download_name(doc.title, blob.mime_type)
        response: Response
        if isinstance(blob.content, Path):
            response = FileResponse(blob.content, media_type=blob.mime_type, filename=name,
                                    content_disposition_type=disposition)
        else:   # an object store: streamed in chunks, never whole in memory
            response = StreamingResponse(iter(blob.content), media_type=blob.mime_type, headers={
                "Content-Length": str(blob.size),
                "Content-Disposition": f"{disposition}; filename*=utf-8''{quote(name)}"})
        # A document is someone else's content: it runs nothing and embeds nothing in the portal's origin.
        response.headers["Content-Security-Policy"] = ("sandbox; default-src 'none'; img-src 'self'; "
                                                         "frame-ancestors 'none'")
        return response

    def mask(self, page: PageRequest) -> Response:
        assert page.session is not None
        masked = page.path_param("op") == "masquer"
        uid = page.path_param("uid")
        try:
            self.s.documents.set_masked(self.caller(page.session.patient_key), uid, masked,
                                        source_id=self.s.source_id)
        except (DocumentsError, AccessRefused) as exc:
            return self._page(page, "error.html", 400, message=_refusal_text(exc))
        return redirect(f"/documents/{uid}", info="masked" if masked else "unmasked")

    def add_document(self, page: PageRequest) -> Response:
        assert page.session is not None
        if page.method == "GET":
            return self._page(page, "add_document.html", types=PATIENT_TYPES)
        f = page.form
        filename, content_type, content = page.files.get("file", ("", "", b""))
        title = f.get("title", "").strip() or filename or "Document"
        try:
            self.s.documents.add(self.caller(page.session.patient_key), title=title, type_code=f.get("type", ""),
                                 mime_type=content_type, content=content, source_id=self.s.source_id)
        except (DocumentsError, AccessRefused) as exc:
            return self._page(page, "add_document.html", 400, types=PATIENT_TYPES, error=_refusal_text(exc))
        return redirect("/documents", info="added")

    # --- history, professionals, settings ---------------------------------------------------------------

    def history(self, page: PageRequest) -> Response:
        assert page.session is not None
        key = page.session.patient_key
        self.s.admin.record(key, Action.READ_HISTORY, self.caller(key))
        entries = self.s.admin.history(key, limit=500)
        return self._page(page, "history.html", entries=entries, action_label=action_label,
                          actor_label=actor_label, reason_label=reason_label)

    def professionals(self, page: PageRequest) -> Response:
        assert page.session is not None
        key = page.session.patient_key
        seen = sorted({r.entry.actor_id: r.entry.actor_name for r in self.s.admin.history(key, limit=1000)
                       if r.entry.profession is not None}.items())
        return self._page(page, "professionals.html", seen=seen, error=page.query("erreur") and
                          INFO.get(page.query("erreur"), ""))

    def professional_action(self, page: PageRequest) -> Response:
        assert page.session is not None
        key, op = page.session.patient_key, page.path_param("op")
        ps = page.form.get("ps", "").strip()
        caller = self.caller(key)
        if op != "medecin-traitant" and not _IDNAT.fullmatch(ps):
            return self._page(page, "error.html", 400, message="Indiquez l'identifiant national (RPPS ou ADELI, "
                              "9 à 22 chiffres ou lettres) du professionnel.")
        try:
            if op == "bloquer":
                self.s.admin.block(key, ps, caller)
            elif op == "debloquer":
                self.s.admin.unblock(key, ps, caller)
            elif op == "autoriser":
                self.s.admin.authorize(key, ps, caller)
            elif op == "retirer":
                self.s.admin.revoke(key, ps, caller)
            elif op == "medecin-traitant":
                if ps and not _IDNAT.fullmatch(ps):
                    return self._page(page, "error.html", 400, message="Identifiant de professionnel invalide.")
                self.s.admin.set_treating_doctor(key, ps or None, caller)
            else:
                return self._page(page, "error.html", 404, message="Cette page n'existe pas.")
        except AccessRefused as exc:
            return self._page(page, "error.html", 400, message=_refusal_text(exc))
        info = {"bloquer": "blocked", "debloquer": "unblocked", "retirer": "revoked", "autoriser": "authorized"
                }.get(op, "saved")
        return redirect("/professionnels", info=info)

    def settings(self, page: PageRequest) -> Response:
        assert page.session is not None
        key = page.session.patient_key
        return self._page(page, "settings.html", contacts=self.s.admin.contacts(key),
                          wishes=self.s.accounts.wishes(key))

    def settings_action(self, page: PageRequest) -> Response:
        assert page.session is not None
        key, op, f = page.session.patient_key, page.path_param("op"), page.form
        caller = self.caller(key)
        try:
            if op == "urgence":
                self.s.admin.set_emergency_access(key, break_glass=f.get("break_glass") == "oui",
                                                  centre_15=f.get("centre_15") == "oui", caller=caller)
            elif op == "notifications":
                trusted = f.get("trusted_email", "").strip()
                if trusted and not _EMAIL.fullmatch(trusted):
                    return self._page(page, "error.html", 400, message="Adresse e-mail de la personne de "
                                      "confiance invalide.")
                self.s.admin.set_notifications(key, new_document=f.get("new_document") == "oui",
                                               notify_trusted=f.get("notify_trusted") == "oui",
                                               trusted_email=trusted or None, caller=caller)
            elif op == "coordonnees":
                email, mobile = f.get("email", "").strip(), f.get("mobile", "").strip()
                problem = _contact_problem(email, mobile, required=True)
                if problem:
                    return self._page(page, "error.html", 400, message=problem)
                self.s.admin.set_contacts(key, email=email or None, mobile=mobile or None, caller=caller)
            elif op == "volontes":
                if f.get("organ_donation", "") not in _ORGAN:
                    return self._page(page, "error.html", 400, message="Choix de don d'organes invalide.")
                values = {n: (f.get(n, "").strip()[:2000] or None)
                          for n in ("trusted_person", "emergency_contact", "advance_directives")}
                wishes: dict[str, str | None] = {**values, "organ_donation": _ORGAN[f.get("organ_donation", "")]}
                self.s.admin.act(key, Action.SET_PREFERENCES, caller, lambda c, k, now: self.s.accounts.set_wishes(
                    c, k, wishes, now), "wishes: trusted person, emergency contact, directives, organ donation")
            elif op == "mot-de-passe":
                account = self.s.accounts.account(key)
                problem = _rules.password_problem(f.get("password", ""), f.get("confirm", ""),
                                                  login_id=account.login_id if account else None)
                if problem:
                    return self._page(page, "error.html", 400, message=problem)
                self.s.admin.act(key, Action.SET_CONTACTS, caller, lambda c, k, now: self.s.accounts.set_password(
                    c, k, f["password"]), "new password")
            else:
                return self._page(page, "error.html", 404, message="Cette page n'existe pas.")
        except AccessRefused as exc:
            return self._page(page, "error.html", 400, message=_refusal_text(exc))
        return redirect("/parametres", info="saved")

    def closure(self, page: PageRequest) -> Response:
        assert page.session is not None
        key, op = page.session.patient_key, page.path_param("op")
        caller = self.caller(key)
        try:
            if op == "fermer":
                if page.form.get("confirm") != "oui":
                    return self._page(page, "error.html", 400, message="Cochez la case de confirmation pour "
                                      "fermer votre dossier.")
                self.s.admin.close(key, caller)
            else:
                self.s.admin.reopen(key, caller)
        except AccessRefused as exc:
            return self._page(page, "error.html", 400, message=_refusal_text(exc))
        return redirect("/parametres", info="closed" if op == "fermer" else "reopened")

    def export(self, page: PageRequest) -> Response:
        assert page.session is not None
        key = page.session.patient_key
        caller = self.caller(key)
        self.s.admin.record(key, Action.EXPORT, caller, "copy of the dossier (zip)")
        docs = self.s.documents.list(caller, record=False)
        blobs: list[tuple[DocumentView, BlobInfo | None]] = []
        for d in docs:
            try:
                blobs.append((d, self.s.documents.open(caller, d.unique_id)[1]))
            except DocumentsError:
                blobs.append((d, None))
        path = write_export(blobs, self.s.admin.history(key), self.s.admin.show(key), self.s.accounts.wishes(key),
                            self.s.documents.repository.blobs.spool)
        return FileResponse(path, media_type="application/zip", filename=f"mon-dmp-{stamp(now_utc())[:10]}.zip",
                            background=BackgroundTask(path.unlink, missing_ok=True))


def _contact_problem(email: str, mobile: str, *, required: bool) -> str | None:
    if required and not email and not mobile:
        return "Indiquez au moins une adresse e-mail ou un numéro de téléphone mobile (pour recevoir vos codes)."
    if email and not _EMAIL.fullmatch(email):
        return "L'adresse e-mail n'est pas valide."
    if mobile and not _MOBILE.fullmatch(mobile):
        return "Le numéro de mobile n'est pas valide (10 chiffres, ou +33…)."
    return None


def _refusal_text(exc: Exception) -> str:
    if isinstance(exc, AccessRefused):
        return reason_label(exc.reason.code)
    return str(exc)


def _download_name(title: str, mime: str) -> str:
    from portal._export import _EXTENSIONS, safe_name
    return safe_name(title) + _EXTENSIONS.get(mime, ".bin")
