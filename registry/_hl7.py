"""HL7 v2 value types used by XDS metadata (ITI TF-3 Table 4.2.3.1.7-2): DTM, CX, XCN, XON, XTN, plus
OID/UUID and the French NIR (the rules of ``identifiers``). Each ``check_*`` returns ``None`` when the
value is acceptable, otherwise the reason. Parsing is
pure and total: it never raises on odd input, so validation can report every problem at once."""

from __future__ import annotations

import calendar
import functools
import re
from dataclasses import dataclass

from identifiers import is_oid, nir_problem

_DTM = re.compile(r"\d{4}(?:\d{2}){0,5}")
_PRINTABLE = re.compile(r"[\x21-\x7e]+")
_PRINTABLE_CHAR = re.compile(r"[\x21-\x7e]")
_OID_CHARS = re.compile(r"[0-9.]+")
_OID_CHAR = re.compile(r"[0-9.]")
_MIME = re.compile(r"[\w!#$&.+^-]+/[\w!#$&.+^-]+")
_HASH = re.compile(r"[0-9a-fA-F]{40}")



# --- DTM -------------------------------------------------------------------------------------------


def check_dtm(value: str) -> str | None:
    """DTM ``YYYY[MM[DD[hh[mm[ss]]]]]`` in UTC, no zone, no fraction (ITI TF-3 Table 4.2.3.1.7-2)."""
    if not _DTM.fullmatch(value):
        return f"'{value}' is not an HL7 DTM (YYYY[MM[DD[hh[mm[ss]]]]], 4 to 14 digits, no time zone)"
    parts = [int(value[i : i + 2]) for i in range(4, len(value), 2)]
    for i, (part, (lo, hi)) in enumerate(zip(parts, _DTM_LIMITS, strict=False)):
        if i == 1:   # the month (parts[0]) was checked first: the length of that month in that year
            hi = _MONTH_DAYS[parts[0]] + (parts[0] == 2 and calendar.isleap(int(value[:4])))
        if not lo <= part <= hi:
            return f"'{value}' is not a valid date/time"
    return None


_DTM_LIMITS = ((1, 12), (1, 31), (0, 23), (0, 59), (0, 59))
_MONTH_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)   # calendar.monthrange's, without its call


def dtm_floor(value: str) -> str:
    """Right-pad to 14 digits with the earliest instant the value denotes (for range comparisons)."""
    return (value + "0101000000"[max(0, len(value) - 4) :])[:14] if len(value) < 14 else value


def dtm_ceiling(value: str) -> str:
    """Right-pad to 14 digits with the latest instant (used for serviceStopTime <= checks)."""
    return (value + "1231235959"[max(0, len(value) - 4) :])[:14] if len(value) < 14 else value


# --- identifiers -----------------------------------------------------------------------------------


def check_oid(value: str) -> str | None:
    """An OID (``identifiers.is_oid``) of at most 64 characters, the XDS limit (ITI TF-3 4.2.3.1.7)."""
    if len(value) > 64 or not is_oid(value):
        return f"'{value}' is not an OID (arcs separated by dots, first arc 0, 1 or 2, at most 64 characters)"
    return None


def check_document_unique_id(value: str) -> str | None:
    """DocumentEntry.uniqueId: OID or ``OID^extension``, printable ASCII, at most 128 characters (ITI TF-3
    Table 4.2.3.2-1). The message names the first character at fault and where it is."""
    if len(value) > 128:
        return f"uniqueId longer than 128 characters ({len(value)})"
    if not value:
        return "uniqueId is empty"
    if not _PRINTABLE.fullmatch(value):
        return f"uniqueId {value!r}: {_first_outside(value, _PRINTABLE_CHAR)} (printable ASCII only, no spaces)"
    root, _, ext = value.partition("^")
    if check_oid(root) is not None:
        if root and not _OID_CHARS.fullmatch(root):
            return f"uniqueId {value!r}: {_first_outside(root, _OID_CHAR)} of its OID part (digits and dots only)"
        return f"uniqueId {value!r} does not start with an OID (digits separated by dots, at most 64 characters)"
    if "^" in value and not ext:
        return f"uniqueId {value!r} has an empty extension"
    return None


def _first_outside(text: str, allowed: re.Pattern[str]) -> str:
    i, ch = next((i, ch) for i, ch in enumerate(text) if not allowed.fullmatch(ch))
    return f"character {ch!r} (U+{ord(ch):04X}) at position {i + 1}"


_UUID_URN = re.compile(r"urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_uuid_urn(value: str) -> bool:
    """RFC 4122 §3 form: 8-4-4-4-12 hex digits (uuid.UUID would also take the hyphens anywhere)."""
    return _UUID_URN.fullmatch(value) is not None


def check_mime_type(value: str) -> str | None:
    return None if _MIME.fullmatch(value) else f"mimeType '{value}' is not of the form type/subtype"


def check_hash(value: str) -> str | None:
    return None if _HASH.fullmatch(value) else f"hash '{value}' is not 40 hexadecimal digits (SHA-1)"


_MAX_SIZE = 2**63 - 1  # what a BIGINT column (and SQLite's INTEGER) holds


def check_size(value: str) -> str | None:
    if not (value.isascii() and value.isdigit()):
        return f"size '{value}' is not a decimal byte count"
    if len(value.lstrip("0")) > 19 or int(value) > _MAX_SIZE:
        return f"size '{value}' is larger than any document can be (at most {_MAX_SIZE} bytes)"
    return None


# --- CX --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CX:
    """Patient identifier ``id^^^&OID&ISO`` (CX.1, CX.4); CX.5 (``NH``, ``PI``) is kept but not part of
    identity: French clients append it (docs/conformance.md)."""

    id: str
    authority: str
    id_type: str = ""

    @classmethod
    def parse(cls, value: str) -> CX | None:
        """``value`` as a CX, or None when it is not one."""
        return _remembered_cx(value) if len(value) <= _REMEMBERED_LENGTH else _read_cx(value)

    @property
    def key(self) -> str:
        """Identity used to compare patients: ``id^^^&OID&ISO`` without CX.5."""
        return f"{self.id}^^^&{self.authority}&ISO"

    def __str__(self) -> str:
        return self.key + (f"^{self.id_type}" if self.id_type else "")


def _read_cx(value: str) -> CX | None:
    comps = value.split("^")
    if len(comps) < 4:
        return None
    hd = comps[3].split("&")
    if len(hd) != 3 or hd[0] or hd[2] != "ISO" or not comps[0] or comps[1] or comps[2]:
        return None
    if check_oid(hd[1]) is not None:
        return None
    return CX(comps[0], hd[1], comps[4] if len(comps) > 4 else "")


# The last distinct values are remembered (a CX is immutable): one submission has its patient id parsed ~10 times
# (validation, claims, rows, the consent checker) and a node's requests concern few patients at a time. Values of
# a patient id's length only, so the memory held stays small whatever a request carries.
_REMEMBERED_LENGTH = 128
_remembered_cx = functools.lru_cache(maxsize=1024)(_read_cx)


def check_cx(value: str) -> str | None:
    if CX.parse(value) is None:
        return f"'{value}' is not a CX identifier of the form id^^^&OID&ISO"
    return None


def patient_key(value: str) -> str:
    """The comparable identity of a patient id; the raw value when it does not parse."""
    cx = CX.parse(value)
    return cx.key if cx is not None else value


# --- XCN / XON / XTN -------------------------------------------------------------------------------


def check_xcn(value: str) -> str | None:
    """XCN: XCN.1 (id) and/or XCN.2 (family name); an assigning authority (XCN.9) needs an id."""
    comps = value.split("^")
    ident = comps[0]
    family = comps[1] if len(comps) > 1 else ""
    if not ident and not family.split("&")[0]:
        return f"'{value}' is not an XCN: it has neither an identifier (XCN.1) nor a family name (XCN.2)"
    if len(comps) > 8 and comps[8] and not ident:
        return f"'{value}' is not an XCN: assigning authority (XCN.9) given without identifier (XCN.1)"
    return None


def check_xon(value: str) -> str | None:
    """XON: organisation name (XON.1) required. French kits put ``IDNST`` in XON.7: accepted."""
    if not value.split("^")[0]:
        return f"'{value}' is not an XON: organization name (XON.1) is empty"
    return None


def check_xtn(value: str) -> str | None:
    """XTN: ``^NET^Internet^address`` or a phone number in XTN.12 (or XTN.5-7)."""
    comps = value.split("^")
    use = comps[1] if len(comps) > 1 else ""
    kind = comps[2] if len(comps) > 2 else ""
    if kind == "Internet":
        if len(comps) < 4 or "@" not in comps[3]:
            return f"'{value}' is not an XTN: Internet address (XTN.4) missing or without '@'"
        return None
    if kind in ("PH", "FX", "CP", "BP") or use in ("PRN", "WPN", "ORN", "PRS", "EMR"):
        has_number = (len(comps) > 11 and comps[11]) or (len(comps) > 6 and comps[6])
        return None if has_number else f"'{value}' is not an XTN: telephone number missing"
    if comps[0]:  # deprecated XTN.1 free-form number
        return None
    return f"'{value}' is not an XTN: no e-mail address or telephone number"


# --- NIR -------------------------------------------------------------------------------------------


def check_nir(value: str) -> str | None:
    """The NIR of an INS-NIR patient identifier (``identifiers.nir_problem``, docs/identifiers.md)."""
    return nir_problem(value)
