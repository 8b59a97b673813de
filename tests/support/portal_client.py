"""The patients' portal under test: a real `dmp serve` with a real SMTP server (aiosmtpd) on 127.0.0.1, a
patient created by `dmp patient create` (its creation code read from the command's output), and headless
Chromium (Debian's package, driven by Playwright through ``executable_path``; docs/portal.md "Tests")."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from pathlib import Path

from consent_client import cli
from nodes import RunningNode, make_node, start_node
from notify_servers import SmtpRecorder, wait_for
from sqlalchemy import text
from vihf_client import ALICE, BOB

from registry import Store

CHROMIUM = "/usr/lib/chromium/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots"
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


def start_portal_node(data_dir: Path, database_url: str | None = None) -> PortalNode:
    smtp = SmtpRecorder()
    smtp.start()
    cfg = make_node(data_dir, patients=(), database_url=database_url)
    cfg = replace(cfg, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_sender="DMP <ne-pas-repondre@dmp.example>",
                  notification_poll_s=0.2)
    cfg.save()
    try:
        return PortalNode(start_node(cfg), smtp)
    except BaseException:
        smtp.stop()
        raise
