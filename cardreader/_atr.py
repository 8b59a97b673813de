"""Telling a CPS card by its Answer To Reset (ISO 7816-3; values from the pcsc-tools list, docs/cps-card.md §1)."""

from __future__ import annotations

import enum


class CardModel(enum.Enum):
    """The CPS generations a reader may hold (interface of the ATR)."""

    CPS3 = "CPS3"
    CPS3_CONTACTLESS = "CPS3 (contactless interface)"
    CPS4 = "CPS4"


_KNOWN: dict[bytes, CardModel] = {
    bytes.fromhex("3B AC 00 40 2A 00 12 25 00 64 80 00 03 10 00 90 00"): CardModel.CPS3,
    bytes.fromhex("3B AC 00 40 2A 00 12 25 00 64 80 82 02 12 00 90 00"): CardModel.CPS3,
    bytes.fromhex("3B 8F 80 01 00 31 B8 64 04 B0 EC C1 73 94 01 80 82 90 00 0E"): CardModel.CPS3_CONTACTLESS,
    bytes.fromhex("3B DC 18 FF 00 00 12 25 00 64 80 00 04 01 00 90 00"): CardModel.CPS4,
}


def card_model(atr: bytes) -> CardModel | None:
    """The CPS model of ``atr``, or None for any other card (a Vitale card, a bank card...)."""
    return _KNOWN.get(bytes(atr))


def atr_hex(atr: bytes) -> str:
    """``3B AC 00 40 ...`` as pcsc-tools prints it."""
    return " ".join(f"{b:02X}" for b in atr)
