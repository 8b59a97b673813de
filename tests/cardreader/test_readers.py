"""Readers and card events through a real pcscd with a vpcd virtual reader and a virtual card (docs/cps-card.md §6)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from card_sim import CPS4_ATR, VITALE_LIKE_ATR, Pcscd, VirtualCard, wait_for_card

from cardreader import (
    CardError,
    CardEvent,
    CardEventKind,
    CardModel,
    CardProblem,
    CardWatcher,
    find_cps_reader,
    list_readers,
)


def test_readers_are_listed_empty(pcscd: Pcscd) -> None:
    found = list_readers()
    assert [r.name for r in found] == pcscd.readers
    assert all(r.atr is None and not r.has_card for r in found)


def test_an_inserted_cps3_is_recognised(inserted: VirtualCard, reader: str) -> None:
    status = find_cps_reader()
    assert (status.name, status.model, status.atr) == (reader, CardModel.CPS3, inserted.atr)


@pytest.mark.parametrize(("atr", "model"), [(CPS4_ATR, CardModel.CPS4)])
def test_a_cps4_in_the_second_slot_is_found(pcscd: Pcscd, atr: bytes, model: CardModel) -> None:
    card = pcscd.card(atr, slot=1).insert()
    try:
        wait_for_card(pcscd.readers[1], True)
        assert find_cps_reader().name == pcscd.readers[1]
        assert find_cps_reader().model is model
    finally:
        card.remove()
        wait_for_card(pcscd.readers[1], False)


def test_no_card_and_unknown_card_are_told_apart(pcscd: Pcscd, reader: str) -> None:
    with pytest.raises(CardError) as empty:
        find_cps_reader()
    assert empty.value.problem is CardProblem.NO_CARD
    other = pcscd.card(VITALE_LIKE_ATR).insert()
    try:
        wait_for_card(reader, True)
        with pytest.raises(CardError) as unknown:
            find_cps_reader()
        assert unknown.value.problem is CardProblem.UNKNOWN_CARD
        assert "3B 65 00 00 20 63 CB A0 00" in str(unknown.value)
    finally:
        other.remove()
        wait_for_card(reader, False)


def test_an_unknown_reader_name_is_refused(pcscd: Pcscd) -> None:
    with pytest.raises(CardError) as info:
        find_cps_reader("Reader that is not there")
    assert info.value.problem is CardProblem.NO_READER


def test_the_watcher_reports_insertion_and_removal_then_stops(pcscd: Pcscd, reader: str) -> None:
    events: list[CardEvent] = []
    seen = threading.Event()

    def record(event: CardEvent) -> None:
        events.append(event)
        if event.kind is CardEventKind.REMOVED:
            seen.set()

    with CardWatcher(record) as watcher:
        card = pcscd.card().insert()
        wait_for_card(reader, True)
        card.remove()
        assert seen.wait(10), f"no removal reported: {events}"
    assert not watcher.running
    assert [(e.kind, e.reader, e.model) for e in events] == [
        (CardEventKind.INSERTED, reader, CardModel.CPS3), (CardEventKind.REMOVED, reader, None)]


def test_the_watcher_stops_promptly_while_waiting(pcscd: Pcscd) -> None:
    watcher = CardWatcher(lambda event: None).start()
    time.sleep(0.2)
    started = time.monotonic()
    watcher.stop()
    assert not watcher.running
    assert time.monotonic() - started < 5   # bounded by the poll interval, not a performance figure


def test_without_pcscd_the_reader_service_is_reported_missing(pcscd: Pcscd) -> None:
    """In another process: this one's PC/SC client is bound to our pcscd's socket."""
    code = ("import cardreader\ntry:\n    cardreader.list_readers()\n"
            "except cardreader.CardError as e:\n    print(e.problem.label)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                         env={**os.environ, "PCSCLITE_CSOCK_NAME": str(pcscd.directory / "none.comm")})
    assert out.stdout.strip() == "no-reader"
