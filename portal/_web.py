"""The web machinery of the patients' space: one wrapper every page goes through (session cookie, CSRF,
rate limits, security headers), the templates, and the cookies (docs/portal.md "Security").

Pages are plain functions ``(PageRequest) -> Response`` run in the thread pool (they touch the database);
the wrapper reads the form first, on the event loop."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from consent import AccessRefused, Reason
from portal._accounts import Session
from portal._documents import DocumentsError
from registry import failure_summary

SESSION_COOKIE: Final = "dmp_portal_session"
CSRF_COOKIE: Final = "dmp_portal_csrf"
PREFIX: Final = "/portal"
MAX_FORM_BYTES: Final = 11 * 1024 * 1024     # an added document (10 MB) and its fields
UNAVAILABLE_TEXT: Final = "Le service est momentanément indisponible. Réessayez plus tard."
_HERE = Path(__file__).parent
# No inline script or style anywhere: every asset is a file the node serves (docs/portal.md "Security").
CSP: Final = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; "
              "frame-ancestors 'none'")
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Strict-Transport-Security": "max-age=31536000",
}

log = logging.getLogger("dmp.portal")
templates = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(["html"]),
                        trim_blocks=True, lstrip_blocks=True)


@dataclass
class PageRequest:
    """What a page sees of the request."""

    request: Request
    session: Session | None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)   # name -> (filename, type, bytes)
    csrf: str = ""                # the token to put in the page's forms
    client: str = "unknown"

    @property
    def method(self) -> str:
        return self.request.method

    def path_param(self, name: str) -> str:
        return str(self.request.path_params.get(name, ""))

    def query(self, name: str) -> str:
        return self.request.query_params.get(name, "")


Page = Callable[[PageRequest], Response]


class Sessions:
    """Where a page finds the session of a cookie (``portal._accounts.Accounts.session``)."""

    def __init__(self, lookup: Callable[[str], Session | None], secure: bool) -> None:
        self.lookup, self.secure = lookup, secure


def render(page: PageRequest, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    logged_in = page.session is not None and page.session.stage == "in"
    html = templates.get_template(template).render(csrf=page.csrf, logged_in=logged_in, prefix=PREFIX,
                                                   info=page.query("info"), **values)
    return HTMLResponse(html, status_code=status)


def redirect(path: str, **query: str) -> RedirectResponse:
    return RedirectResponse(PREFIX + path + (f"?{urlencode(query)}" if query else ""), status_code=303)


def wrap(page: Page, sessions: Sessions, *, need: str | None = "in") -> Callable[[Request], Awaitable[Response]]:
    """The page behind the common checks: ``need`` is the session stage required (None: none)."""

    async def endpoint(request: Request) -> Response:
        try:
            return await serve(request)
        except SQLAlchemyError as failed:
            # The database is down or failed (the session, the rate limit, an account): the failed step's
            # transaction is rolled back and the patient hears the service is unavailable. The log has the
            # failure, never its statement or parameters (patient keys, session hashes).
            log.error("portal database error: %s", failure_summary(failed))
            return _finish(_error(PageRequest(request, None), 503, UNAVAILABLE_TEXT), sessions, "")

    async def serve(request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE, "")
        session = await run_in_threadpool(sessions.lookup, token) if token else None
        pre_csrf = request.cookies.get(CSRF_COOKIE, "")
        new_pre_csrf = "" if session is not None or pre_csrf else secrets.token_urlsafe(32)
        csrf = session.csrf if session is not None else (pre_csrf or new_pre_csrf)
        if need is not None and (session is None or session.stage != need):
            response: Response = redirect("/connexion", info="session") if need == "in" else redirect("/connexion")
            return _finish(response, sessions, new_pre_csrf, clear_session=bool(token) and session is None)
        page_request = PageRequest(request, session, csrf=csrf, client=request.client.host if request.client
                                   else "unknown")
        if request.method == "POST":
            if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
                return _finish(_error(page_request, 413, "Le fichier envoyé est trop volumineux (10 Mo au plus)."),
                               sessions, new_pre_csrf)
            async with request.form(max_part_size=MAX_FORM_BYTES) as form:
                for name, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        page_request.files[name] = (value.filename or "", value.content_type or "",
                                                    await value.read())
                    else:
                        page_request.form[name] = value
            sent = page_request.form.get("csrf", "")
            if not sent or not csrf or not secrets.compare_digest(sent, csrf):
                return _finish(_error(page_request, 403, "La page a expiré. Revenez en arrière, rechargez-la et "
                                      "recommencez."), sessions, new_pre_csrf)
        try:
            response = await run_in_threadpool(page, page_request)
        except AccessRefused as refused:
            # What a page did not expect: the database is down (UNAVAILABLE), or the dossier changed meanwhile.
            status = 503 if refused.reason is Reason.UNAVAILABLE else 400
            response = _error(page_request, status, UNAVAILABLE_TEXT if status == 503 else
                              "Cette action n'est pas possible sur votre dossier.")
        except DocumentsError as exc:
            response = _error(page_request, 400, str(exc))
        return _finish(response, sessions, new_pre_csrf, clear_session=bool(token) and session is None)

    return endpoint


def _error(page: PageRequest, status: int, message: str) -> HTMLResponse:
    return render(page, "error.html", status=status, message=message)


def _finish(response: Response, sessions: Sessions, new_pre_csrf: str, *, clear_session: bool = False) -> Response:
    if new_pre_csrf:
        set_cookie(response, CSRF_COOKIE, new_pre_csrf, sessions.secure)
    if clear_session and SESSION_COOKIE not in response.headers.get("set-cookie", ""):
        response.delete_cookie(SESSION_COOKIE, path=PREFIX, secure=sessions.secure, httponly=True,
                               samesite="strict")
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def set_cookie(response: Response, name: str, value: str, secure: bool) -> None:
    """Secure, HttpOnly, SameSite=Strict, for the portal's path only; a browser-session cookie (the server
    decides how long the session lives)."""
    response.set_cookie(name, value, path=PREFIX, secure=secure, httponly=True, samesite="strict")


def start_session(response: Response, token: str, secure: bool) -> None:
    set_cookie(response, SESSION_COOKIE, token, secure)


def end_session(response: Response, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path=PREFIX, secure=secure, httponly=True, samesite="strict")
