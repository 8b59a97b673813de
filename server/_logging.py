"""What the node's log may hold: no patient or professional identifier, and no record larger than a few KB.

The README promises logs without identifiers (INS/NIR, RPPS/ADELI/IdNat_PS, names from certificates) at any
level. The code logs no identifier on purpose; this module is the net under it for what comes from elsewhere
(a library's exception text, a refusal detail naming the certificate that failed): every record of every
logger is rewritten when it is created (:func:`install`):

- runs of 8 or more digits (NIR/INS, Corsican ones with 2A/2B, RPPS, ADELI, FINESS, IdNat_PS with its
  ``/suffix``) become ``[id]``;
- the values of the naming attributes of a distinguished name (``CN=``, ``SN=``, ``GN=``, ``UID=``,
  ``serialNumber=``...) become ``[name]``;
- the SQL statement and the bound parameters SQLAlchemy appends to its exceptions are dropped (one stored
  query with 1,000 values wrote 680 KB, issue 13);
- a message is cut at ``MAX_MESSAGE`` characters and a traceback at ``MAX_TRACEBACK``.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable
from typing import Any

MAX_MESSAGE = 2_000
MAX_TRACEBACK = 8_000

# NIR of Corsica: 5 digits, 2A or 2B, then the commune, order number and key.
_DIGITS = re.compile(r"(?<![0-9A-Za-z])(?:\d{5}2[AB]\d{6,}|\d{8,})(?![0-9A-Za-z])(?:/[^\s,;'\")\]]*)?")
_DN_VALUE = re.compile(r"\b(CN|SN|GN|UID|givenName|surname|serialNumber|commonName|2\.5\.4\.(?:3|4|5|42))="
                       r"(?:\\.|[^,+;'\"\n\]])*", re.IGNORECASE)
_SQL_BLOCK = re.compile(r"\n?\[SQL: .*?\](?=\n|$)", re.DOTALL)
_PARAMETERS_BLOCK = re.compile(r"\n?\[parameters: .*?\](?=\n|$)", re.DOTALL)
_BACKGROUND = re.compile(r"\n?\(Background on this error at: [^)]*\)")

_installed: list[Callable[..., logging.LogRecord]] = []


def redact(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` without identifiers, SQL or parameters, at most ``limit`` characters."""
    text = _SQL_BLOCK.sub(" [SQL statement not logged]", text)
    text = _BACKGROUND.sub("", _PARAMETERS_BLOCK.sub("", text))
    text = _DN_VALUE.sub(lambda m: f"{m.group(1)}=[name]", text)
    text = _DIGITS.sub("[id]", text)
    if len(text) > limit:
        text = text[:limit] + f"... [{len(text) - limit} characters not logged]"
    return text


def install() -> None:
    """Rewrite every log record of this process as described above (idempotent)."""
    if _installed:
        return
    # At --log-level info/debug SQLAlchemy would log every statement with its bound parameters (patient ids,
    # whole value lists): never wanted in the node's log, whatever the level.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _sanitize(record)
        return record

    _installed.append(previous)
    logging.setLogRecordFactory(factory)


def _sanitize(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:   # a malformed %-format: keep the template alone, never its arguments
        message = str(record.msg)
    record.msg, record.args = redact(message), None
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
        record.exc_text = redact("".join(lines).rstrip("\n"), MAX_TRACEBACK)
    if record.stack_info:
        record.stack_info = redact(record.stack_info, MAX_TRACEBACK)
