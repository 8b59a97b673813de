"""The patients' portal under test: a real `dmp serve` with a real SMTP server (aiosmtpd) on 127.0.0.1, a
patient created by `dmp patient create` (its creation code read from the command's output), and headless
Chromium (Debian's package, driven by Playwright through ``executable_path``; docs/portal.md "Tests")."""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
from consent_client import cli
from nodes import RunningNode, make_node, start_node
from notify_servers import SmtpRecorder, wait_for
from playwright.sync_api import Page, expect
from sqlalchemy import text
from vihf_client import ALICE, BOB

from registry import Store

CHROMIUM = "/usr/lib/chromium/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
# The pages are photographed on every run (a page that cannot render fails the step), but the pictures shown in
# the README are only replaced on request, so that a test run leaves the working tree as it found it.
DOC_SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots"
if os.environ.get("DMP_UPDATE_SCREENSHOTS") == "1":
    SCREENSHOTS = DOC_SCREENSHOTS
else:
    SCREENSHOTS = Path(tempfile.mkdtemp(prefix="dmp-portal-screenshots-"))
    atexit.register(shutil.rmtree, SCREENSHOTS, True)
EMAIL = "patiente@example.fr"


def new_ins() -> tuple[str, str]:
    """A fresh test NIR (valid key) and its INS as CX."""
    body = f"2{85 + secrets.randbelow(10):02d}0375{secrets.randbelow(10**6):06d}"
    nir = body + f"{97 - int(body) % 97:02d}"
    return nir, f"{nir}^^^&1.2.250.1.213.1.4.10&ISO"


@dataclass
class PortalNode:
    node: RunningNode
    smtp: SmtpRecorder

    @property
    def url(self) -> str:
        return f"{self.node.url}/portal"

    def create_patient(self, *extra: str, email: str | None = EMAIL) -> tuple[str, str, str]:
        """(NIR, INS, creation code) of a new dossier on which ALICE and BOB are authorised."""
        nir, ins = new_ins()
        out = cli(self.node, "patient", "create", "--ins", ins, *(["--email", email] if email else []), *extra)
        code = re.search(r"creation code: (\S+)", out)
        assert code is not None, out
        for ps in (ALICE, BOB):
            cli(self.node, "patient", "authorize", "--ins", ins, "--ps", ps.idnat_ps)
        return nir, ins, code.group(1)

    def codes_sent_to(self, address: str) -> list[str]:
        """The one-time codes the SMTP server received for ``address``, oldest first."""
        return [m.group(1) for r in self.smtp.received if address in r.recipients
                and (m := re.search(r"DMP : (\d{6})", r.body)) is not None]

    def next_code(self, address: str, seen: int) -> str:
        wait_for(lambda: len(self.codes_sent_to(address)) > seen, "a one-time code by e-mail", timeout=30)
        return self.codes_sent_to(address)[-1]

    def age_codes(self, minutes: int = 11) -> None:
        """Make every one-time code ``minutes`` older than it is (a code's 10 minutes pass without waiting)."""
        store = Store(self.node.config.database_url)
        try:
            with store.write() as conn:
                conn.execute(text("UPDATE portal_otp SET expires_at = '2000-01-01T00:00:00.000Z'"))
        finally:
            store.dispose()


def start_portal_node(data_dir: Path, database_url: str | None = None, *serve_args: str) -> PortalNode:
    smtp = SmtpRecorder()
    smtp.start()
    cfg = make_node(data_dir, patients=(), database_url=database_url)
    cfg = replace(cfg, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_sender="DMP <ne-pas-repondre@dmp.example>",
                  notification_poll_s=0.2)
    cfg.save()
    try:
        return PortalNode(start_node(cfg, *serve_args), smtp)
    except BaseException:
        smtp.stop()
        raise


# --- the browser steps the tests share ---------------------------------------------------------------


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0, f"empty screenshot {name}"


def activate(page: Page, portal: PortalNode, nir: str, code: str, email: str = EMAIL) -> tuple[str, str]:
    page.goto(f"{portal.url}/activation")
    page.get_by_label("Code de création").fill(code)
    page.get_by_label("Numéro de sécurité sociale (NIR").fill(nir)
    page.get_by_label("Confirmez le numéro de sécurité sociale").fill(nir)
    page.get_by_label("Numéro de série de la carte Vitale").fill("12345678")
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_role("button", name="Activer mon espace").click()
    expect(page.get_by_role("heading", name="Votre espace est activé")).to_be_visible()
    return page.locator("#login-id").inner_text(), page.locator("#initial-password").inner_text()


def log_in(page: Page, portal: PortalNode, login_id: str, password: str, email: str = EMAIL) -> None:
    seen = len(portal.codes_sent_to(email))
    submit_password(page, portal, login_id, password)
    expect(page.get_by_role("heading", name="Code de connexion")).to_be_visible()
    page.get_by_label("Code reçu").fill(portal.next_code(email, seen))
    page.get_by_role("button", name="Se connecter").click()


def submit_password(page: Page, portal: PortalNode, login_id: str, password: str) -> None:
    page.goto(f"{portal.url}/connexion")
    page.get_by_label("Identifiant").fill(login_id)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Continuer").click()


def first_login(page: Page, password: str) -> None:
    expect(page.get_by_role("heading", name="Première connexion")).to_be_visible()
    page.get_by_label("Nouveau mot de passe").fill(password)
    page.get_by_label("Confirmez le mot de passe").fill(password)
    page.get_by_label("Oui, j'accepte l'accès en urgence").check()
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("heading", name="Mes documents")).to_be_visible()


# --- plain HTTP ------------------------------------------------------------------------------------


class Client:
    """An HTTP client keeping the portal's cookies itself: they are Secure, which httpx (rightly) does not send
    over the plain HTTP of the test node, where a browser treats 127.0.0.1 as a secure context."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url)
        self.jar: dict[str, str] = {}

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        cookie = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        r = self.http.request(method, path, headers={"Cookie": cookie} if cookie else {}, **kwargs)  # type: ignore[arg-type]
        for header in r.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            if "Max-Age=0" in header or "max-age=0" in header:
                self.jar.pop(name, None)
            else:
                self.jar[name] = rest.split(";")[0]
        return r

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self.request("POST", path, data=data)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def activated(portal: PortalNode, email: str) -> tuple[str, str, str]:
    """(NIR, login id, initial password) of a newly activated space."""
    nir, _, code = portal.create_patient(email=email)
    with Client(portal.url) as c:
        token = csrf_of(c.get("/activation").text)
        page = c.post("/activation", data={"csrf": token, "code": code, "nir": nir, "nir2": nir, "vitale": "12345678",
                                           "email": email})
        assert page.status_code == 200, page.text
        login_id = re.search(r'id="login-id">([^<]+)<', page.text)
        password = re.search(r'id="initial-password">([^<]+)<', page.text)
        assert login_id is not None
        assert password is not None
        return nir, login_id.group(1), password.group(1).replace("&amp;", "&").replace("&#34;", '"')


def login_attempt(c: Client, login_id: str, password: str) -> httpx.Response:
    token = csrf_of(c.get("/connexion").text)
    return c.post("/connexion", data={"csrf": token, "login": login_id, "password": password})
