"""The compact stored form of the registry's keys (migration 0009_compact_keys, docs/registry-storage.md): object
ids, availability statuses and ``object_value`` attribute names, each stored in fewer bytes and read back as
exactly the text that was stored.

- An object id in the canonical form the registry gives and XDS actors send, ``urn:uuid:`` and 8-4-4-4-12
  lowercase hex digits (RFC 4122 §3, ITI TF-3 4.2.3.1.5), is stored as its 16 bytes: 16 bytes instead of 45
  characters, in every row and index entry that holds it. Any other text (uppercase hex, anything else the
  registry keeps) is stored as a marker byte and its UTF-8 bytes, never 16 bytes long, so both forms read back
  exactly. The byte order of the 16-byte form is the text order of the canonical ids (hex digits in order,
  hyphens at fixed places): ``ORDER BY id`` answers as it did on text.
- A status (ebRIM availabilityStatus and the DMP's Archived/Deleted) known to the registry is stored as one
  letter, an ``object_value`` attribute name as one letter; any other text as ``~`` and the text.

Pure functions: the SQLAlchemy types of ``registry._schema`` apply them to every bound value and result, and
the migration applies the same mapping (in SQL on PostgreSQL, with these functions on SQLite).
"""

from __future__ import annotations

import re
from typing import Final

from registry._vocabulary import Status

_CANONICAL: Final = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
UUID_BYTES: Final = 16
_TEXT: Final = b"\x00"          # marker of an id kept as text
_TEXT_OF_15: Final = b"\x01\x01"  # the same for a text of 15 UTF-8 bytes (1 + 15 would read as a uuid)
_PREFIX: Final = "urn:uuid:"


def encode_id(value: str) -> bytes:
    """The stored form of object id ``value`` (see the module's docstring)."""
    if len(value) == 45 and _CANONICAL.fullmatch(value):
        return bytes.fromhex(value[9:].replace("-", ""))
    text = value.encode()
    return (_TEXT_OF_15 if len(text) == 15 else _TEXT) + text


def decode_id(stored: bytes) -> str:
    """The id whose stored form is ``stored``: the inverse of :func:`encode_id`."""
    if len(stored) == UUID_BYTES:
        h = stored.hex()
        return f"{_PREFIX}{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return bytes(stored[len(_TEXT_OF_15) if stored[:1] == _TEXT_OF_15[:1] else len(_TEXT):]).decode()


_OTHER: Final = "~"


class Codes:
    """A lossless mapping of known texts to one-letter codes; any other text is stored as ``~`` + the text."""

    def __init__(self, codes: dict[str, str]) -> None:
        if _OTHER in codes.values() or any(len(c) != 1 for c in codes.values()) \
                or len(set(codes.values())) != len(codes):
            raise ValueError("codes must be distinct single characters other than '~'")
        self.code_of: Final = dict(codes)
        self.text_of: Final = {c: t for t, c in codes.items()}

    def encode(self, value: str) -> str:
        return self.code_of.get(value) or _OTHER + value

    def decode(self, stored: str) -> str:
        return stored[1:] if stored[:1] == _OTHER else self.text_of[stored]


# Fixed: stored values use them (changing one needs a migration). Never reuse a letter.
STATUS_CODES: Final = Codes({
    Status.SUBMITTED.value: "S", Status.APPROVED.value: "A", Status.DEPRECATED.value: "D",
    Status.ARCHIVED.value: "R", Status.DELETED.value: "X",
})
ATTRIBUTE_CODES: Final = Codes({
    "confidentialityCode": "c", "eventCodeList": "e", "authorPerson": "a", "referenceIdList": "r", "codeList": "f",
})
