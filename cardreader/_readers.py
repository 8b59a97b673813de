"""Card readers and card events through PC/SC (pcsc-lite's ``SCardGetStatusChange``, via pyscard).

Clients reach pcscd through its socket; ``PCSCLITE_CSOCK_NAME`` points them at another one (the tests' own
pcscd). Every call establishes and releases its own PC/SC context, so nothing is left behind.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from smartcard import scard

from cardreader._atr import CardModel, card_model
from cardreader._errors import CardError, CardProblem

_POLL_MS: Final = 500   # how often a watcher checks whether it was asked to stop


@dataclass(frozen=True)
class ReaderStatus:
    """A reader and what it holds: ``atr`` is None when empty; ``model`` is None for a non-CPS card."""

    name: str
    atr: bytes | None
    model: CardModel | None

    @property
    def has_card(self) -> bool:
        return self.atr is not None


class CardEventKind(enum.Enum):
    INSERTED = "inserted"
    REMOVED = "removed"


@dataclass(frozen=True)
class CardEvent:
    kind: CardEventKind
    reader: str
    atr: bytes | None           # the inserted card's ATR
    model: CardModel | None     # None: not a CPS card


@contextmanager
def _context() -> Iterator[Any]:
    rv, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if rv != scard.SCARD_S_SUCCESS:
        raise CardError(CardProblem.NO_READER, f"no PC/SC service (is pcscd running?): {_text(rv)}")
    try:
        yield ctx
    finally:
        scard.SCardReleaseContext(ctx)


def _reader_names(ctx: Any) -> list[str]:
    rv, names = scard.SCardListReaders(ctx, [])
    if rv in (scard.SCARD_E_NO_READERS_AVAILABLE, scard.SCARD_E_READER_UNAVAILABLE):
        return []
    if rv != scard.SCARD_S_SUCCESS:
        raise CardError(CardProblem.NO_READER, f"PC/SC could not list the readers: {_text(rv)}")
    return list(names)


def _status(ctx: Any, names: list[str]) -> list[ReaderStatus]:
    if not names:
        return []
    rv, states = scard.SCardGetStatusChange(ctx, 0, [(n, scard.SCARD_STATE_UNAWARE) for n in names])
    if rv != scard.SCARD_S_SUCCESS:
        raise CardError(CardProblem.NO_READER, f"PC/SC could not read the readers' state: {_text(rv)}")
    return [_reader_status(name, event, atr) for name, event, atr in states]


def _reader_status(name: str, event_state: int, atr: list[int]) -> ReaderStatus:
    if event_state & scard.SCARD_STATE_PRESENT and atr:
        raw = bytes(atr)
        return ReaderStatus(name, raw, card_model(raw))
    return ReaderStatus(name, None, None)


def list_readers() -> list[ReaderStatus]:
    """Every reader pcscd knows and the card in it, if any."""
    with _context() as ctx:
        return _status(ctx, _reader_names(ctx))


def find_cps_reader(reader: str | None = None) -> ReaderStatus:
    """The reader holding a CPS card (``reader``: that one only). Raises ``NO_READER`` without readers,
    ``NO_CARD`` when no reader holds a card, ``UNKNOWN_CARD`` when the cards present are not CPS cards."""
    readers = list_readers()
    if reader is not None:
        readers = [r for r in readers if r.name == reader]
        if not readers:
            raise CardError(CardProblem.NO_READER, f"no reader named {reader!r}")
    if not readers:
        raise CardError(CardProblem.NO_READER, "no card reader is connected")
    cps = [r for r in readers if r.model is not None]
    if cps:
        return cps[0]
    others = [r for r in readers if r.has_card]
    if others:
        from cardreader._atr import atr_hex
        raise CardError(CardProblem.UNKNOWN_CARD, f"the card in {others[0].name!r} is not a CPS card "
                        f"(ATR {atr_hex(others[0].atr or b'')})")
    raise CardError(CardProblem.NO_CARD, "no card in the reader: insert the CPS card")


class CardWatcher:
    """Reports card insertions and removals to ``on_event`` from a background thread, until :meth:`stop`
    (which returns once the thread has ended, within about half a second). The states at start are reported
    as insertions of the cards already present.

    ``on_event`` runs on the watcher's thread; an exception in it is kept in :attr:`error` and stops the
    watcher."""

    def __init__(self, on_event: Callable[[CardEvent], None]) -> None:
        self._on_event = on_event
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cps-card-watcher", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> CardWatcher:
        self._thread.start()
        self._ready.wait(5)
        if self.error is not None:
            raise self.error
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> CardWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            with _context() as ctx:
                self._ready.set()
                self._loop(ctx)
        except BaseException as exc:
            self.error = exc
            self._ready.set()

    def _loop(self, ctx: Any) -> None:
        known: dict[str, bytes | None] = {}
        states: dict[str, int] = {}
        while not self._stop.is_set():
            names = _reader_names(ctx)
            for gone in set(known) - set(names):            # a reader unplugged with its card
                if known.pop(gone) is not None:
                    self._on_event(CardEvent(CardEventKind.REMOVED, gone, None, None))
                states.pop(gone, None)
            if not names:
                self._stop.wait(_POLL_MS / 1000)
                continue
            query = [(n, states.get(n, scard.SCARD_STATE_UNAWARE)) for n in names]
            rv, result = scard.SCardGetStatusChange(ctx, _POLL_MS, query)
            if rv == scard.SCARD_E_TIMEOUT:
                continue
            if rv != scard.SCARD_S_SUCCESS:
                raise CardError(CardProblem.NO_READER, f"PC/SC stopped answering: {_text(rv)}")
            for name, event, atr in result:
                states[name] = event & ~scard.SCARD_STATE_CHANGED
                status = _reader_status(name, event, atr)
                before = known.get(name)
                if status.atr != before:
                    if before is not None:
                        self._on_event(CardEvent(CardEventKind.REMOVED, name, None, None))
                    if status.atr is not None:
                        self._on_event(CardEvent(CardEventKind.INSERTED, name, status.atr, status.model))
                known[name] = status.atr


def _text(rv: int) -> str:
    return str(scard.SCardGetErrorMessage(rv))
