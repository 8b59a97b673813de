"""Fixtures of the portal tests: one node with its SMTP server per module, one headless Chromium per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from portal_client import CHROMIUM, CHROMIUM_ARGS, PortalNode, start_portal_node


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalNode]:
    running = start_portal_node(tmp_path_factory.mktemp("portal"))
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
