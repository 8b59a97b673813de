"""What can go wrong between the physician and the node, each with its own exit code for `cps`."""

from __future__ import annotations

import enum


class CardProblem(enum.Enum):
    """A failure kind; ``exit_code`` is what the ``cps`` command exits with (documented in ``cps --help``)."""

    NO_READER = ("no-reader", 10)
    NO_CARD = ("no-card", 11)
    UNKNOWN_CARD = ("unknown-card", 12)
    NO_TOKEN = ("no-token", 13)          # PKCS#11 module missing or no matching token
    WRONG_PIN = ("wrong-pin", 14)
    PIN_LOCKED = ("pin-locked", 15)
    CARD_REMOVED = ("card-removed", 16)
    CARD_CONTENT = ("card-content", 17)  # a required object (certificate, key, practice situation) is missing
    SERVER_REFUSED = ("server-refused", 20)
    SERVER_UNREACHABLE = ("server-unreachable", 21)
    TLS = ("tls", 22)

    def __init__(self, label: str, exit_code: int) -> None:
        self.label = label
        self.exit_code = exit_code


class CardError(Exception):
    """A failure of the card, its reader or the node, with its :class:`CardProblem`. ``tries_left`` is set for
    a wrong PIN when the token reports it. The message never holds the PIN."""

    def __init__(self, problem: CardProblem, message: str, *, tries_left: int | None = None) -> None:
        super().__init__(message)
        self.problem = problem
        self.tries_left = tries_left
