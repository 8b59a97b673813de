"""The portal's Starlette app and its routes (docs/portal.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from consent import ChannelKind, DossierAdmin, Guard, NotificationChannel
from portal._accounts import Accounts, now_utc
from portal._documents import PatientDocuments
from portal._pages import Pages, PortalServices
from portal._rate import RateLimit
from portal._web import SECURITY_HEADERS, Sessions, redirect, wrap
from registry import Registry, Store
from repository import Repository


@dataclass
class PortalDeps:
    """The node's parts the portal works with."""

    store: Store
    registry: Registry
    repository: Repository
    guard: Guard
    channels: dict[ChannelKind, NotificationChannel] = field(default_factory=dict)
    source_id: str = "1.2.250.1.999.1.1"      # sourceId of the portal's submission sets (the node's OID)
    secure_cookies: bool = True


class _StaticWithHeaders(StaticFiles):
    async def get_response(self, path: str, scope):  # type: ignore[no-untyped-def]
        response: Response = await super().get_response(path, scope)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response


def portal_app(deps: PortalDeps) -> Starlette:
    accounts = Accounts(deps.store)
    services = PortalServices(
        accounts=accounts, admin=DossierAdmin(deps.registry, deps.guard),
        documents=PatientDocuments(deps.registry, deps.repository, deps.guard), channels=deps.channels,
        source_id=deps.source_id, secure_cookies=deps.secure_cookies,
        limiter=RateLimit(deps.store))
    pages = Pages(services)
    sessions = Sessions(lambda token: accounts.session(token, now_utc()), deps.secure_cookies)

    def route(path: str, page, need: str | None = "in", methods: tuple[str, ...] = ("GET",)) -> Route:  # type: ignore[no-untyped-def]
        return Route(path, wrap(page, sessions, need=need), methods=list(methods))

    get_post = ("GET", "POST")

    async def home(request):  # type: ignore[no-untyped-def]
        return redirect("/documents")

    return Starlette(routes=[
        Route("/", home),
        Mount("/static", app=_StaticWithHeaders(directory=Path(__file__).parent / "static"), name="static"),
        route("/activation", pages.activation, None, get_post),
        route("/connexion", pages.login, None, get_post),
        route("/code", pages.otp, "otp", get_post),
        route("/mot-de-passe-oublie", pages.forgot, None, get_post),
        route("/reinitialisation", pages.reset, "reset", get_post),
        route("/deconnexion", pages.logout, "in", ("POST",)),
        route("/premiere-connexion", pages.first_login, "in", get_post),
        route("/documents", pages.documents),
        route("/documents/ajouter", pages.add_document, "in", get_post),
        route("/documents/{uid}", pages.document),
        route("/documents/{uid}/fichier", pages.download),
        route("/documents/{uid}/{op:str}", pages.mask, "in", ("POST",)),
        route("/historique", pages.history),
        route("/professionnels", pages.professionals),
        route("/professionnels/{op:str}", pages.professional_action, "in", ("POST",)),
        route("/parametres", pages.settings),
        route("/parametres/{op:str}", pages.settings_action, "in", ("POST",)),
        route("/dossier/{op:str}", pages.closure, "in", ("POST",)),
        route("/export", pages.export, "in", ("POST",)),
    ])
