"""Fixtures of the portal tests: one node with its SMTP server per module and database, one headless Chromium per
session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from nodes import database_url
from playwright.sync_api import Browser, Page, sync_playwright
from portal_client import CHROMIUM, CHROMIUM_ARGS, PortalNode, start_portal_node


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def portal(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalNode]:
    """A node with its SMTP server; every module runs once on SQLite and once on PostgreSQL."""
    running = start_portal_node(tmp_path_factory.mktemp("portal"), database_url(request.param, request))
    try:
        yield running
    finally:
        running.node.stop()
        running.smtp.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="fr-FR", viewport={"width": 1100, "height": 900}, accept_downloads=True)
    try:
        yield context.new_page()
    finally:
        context.close()
