"""The card's stand-ins for the cardreader tests: one private pcscd with a vpcd virtual reader and one SoftHSM2
CPS-like token per test session (support/card_sim.py); a virtual CPS3 card inserted for each test that asks."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from card_sim import CPS3_ATR, Pcscd, SoftToken, VirtualCard, make_token, remove_dir, temp_dir, wait_for_card
from vihf_client import ALICE, identities


@pytest.fixture(scope="session")
def card_dir() -> Iterator[Path]:
    d = temp_dir("cps-t-")
    yield d
    remove_dir(d)


@pytest.fixture(scope="session")
def pcscd(card_dir: Path) -> Iterator[Pcscd]:
    """Our pcscd; this process's PC/SC client reaches it through PCSCLITE_CSOCK_NAME (read at the first
    context, so set before any)."""
    server = Pcscd(card_dir / "pcsc").start()
    previous = os.environ.get("PCSCLITE_CSOCK_NAME")
    os.environ.update(server.environment())
    yield server
    server.stop()
    if previous is None:
        os.environ.pop("PCSCLITE_CSOCK_NAME", None)
    else:
        os.environ["PCSCLITE_CSOCK_NAME"] = previous


@pytest.fixture(scope="session")
def token(card_dir: Path) -> SoftToken:
    """ALICE's CPS-like token (keys made on the token, certificates from the session-wide test PKI)."""
    return make_token(card_dir / "hsm", identities().pki, ALICE)


@pytest.fixture
def reader(pcscd: Pcscd) -> str:
    return pcscd.readers[0]


@pytest.fixture
def inserted(pcscd: Pcscd, reader: str) -> Iterator[VirtualCard]:
    """A CPS3 card in the first slot of the virtual reader, removed after the test."""
    card = pcscd.card(CPS3_ATR).insert()
    wait_for_card(reader, True)
    yield card
    card.remove()
    wait_for_card(reader, False)


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    """Every watcher a test starts has stopped by its end."""
    yield
    left = [t.name for t in threading.enumerate() if t.name == "cps-card-watcher"]
    assert not left, f"watcher threads still running: {left}"
