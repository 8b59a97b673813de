"""Distinguished names as text: the VIHF ``saml2:Issuer`` is the signer's subject DN in RFC 2253/4514 form
(docs/vihf.md §2), with the IGC-Santé attribute names ``GN``, ``SN``, ``title``.

Comparison follows docs/vihf.md §7 step 6: equal after normalisation of the attribute type names (``G``→``GN``,
``S``→``ST``, any case, dotted OIDs), of the order of attributes in a multi-valued RDN, of the RDN order
(RFC 4514 reverses the DER order; some libraries print it forward), and of values by RFC 5280 §7.1's
case-insensitive, space-insensitive matching.
"""

from __future__ import annotations

import unicodedata
from typing import Final

from cryptography import x509
from cryptography.x509.oid import NameOID

from identifiers import is_oid
from pki import _der

#: Names we print: RFC 4514's, plus the IGC-Santé spellings.
_PRINT_NAMES: Final = {
    NameOID.GIVEN_NAME: "GN",
    NameOID.SURNAME: "SN",
    NameOID.TITLE: "title",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.EMAIL_ADDRESS: "E",
}

_RDN_ORDER: Final = {NameOID.COMMON_NAME: 0, NameOID.SURNAME: 1, NameOID.GIVEN_NAME: 2}

#: Names we read (upper-cased) → dotted OID.
_READ_NAMES: Final = {
    "CN": NameOID.COMMON_NAME.dotted_string,
    "SN": NameOID.SURNAME.dotted_string,
    "SURNAME": NameOID.SURNAME.dotted_string,
    "SERIALNUMBER": NameOID.SERIAL_NUMBER.dotted_string,
    "C": NameOID.COUNTRY_NAME.dotted_string,
    "L": NameOID.LOCALITY_NAME.dotted_string,
    "ST": NameOID.STATE_OR_PROVINCE_NAME.dotted_string,
    "S": NameOID.STATE_OR_PROVINCE_NAME.dotted_string,
    "STREET": NameOID.STREET_ADDRESS.dotted_string,
    "O": NameOID.ORGANIZATION_NAME.dotted_string,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME.dotted_string,
    "T": NameOID.TITLE.dotted_string,
    "TITLE": NameOID.TITLE.dotted_string,
    "GN": NameOID.GIVEN_NAME.dotted_string,
    "G": NameOID.GIVEN_NAME.dotted_string,
    "GIVENNAME": NameOID.GIVEN_NAME.dotted_string,
    "INITIALS": NameOID.INITIALS.dotted_string,
    "DC": NameOID.DOMAIN_COMPONENT.dotted_string,
    "UID": NameOID.USER_ID.dotted_string,
    "E": NameOID.EMAIL_ADDRESS.dotted_string,
    "EMAIL": NameOID.EMAIL_ADDRESS.dotted_string,
    "EMAILADDRESS": NameOID.EMAIL_ADDRESS.dotted_string,
}

_SPECIAL: Final = ' "#+,;<=>\\'

NameKey = tuple[frozenset[tuple[str, str]], ...]


class DnError(ValueError):
    """The text is not a distinguished name we can read."""


def dn_string(name: x509.Name) -> str:
    """RFC 4514 text of ``name`` with the IGC-Santé attribute names, multi-valued RDNs written CN first
    as the ANS samples do (``CN=…+SN=…+GN=…,title=…,C=FR``; DER sorts them otherwise)."""
    def rdn_text(rdn: x509.RelativeDistinguishedName) -> str:
        attrs = sorted(rdn, key=lambda a: _RDN_ORDER.get(a.oid, len(_RDN_ORDER)))
        return "+".join(a.rfc4514_string(_PRINT_NAMES) for a in attrs)

    return ",".join(rdn_text(rdn) for rdn in reversed(name.rdns))


def name_key(name: x509.Name) -> NameKey:
    """``name`` in comparison form, RDNs in DER order."""
    return tuple(
        frozenset((a.oid.dotted_string, _normalise(a.value if isinstance(a.value, str) else a.value.hex()))
                  for a in rdn)
        for rdn in name.rdns
    )


def same_name(text: str, name: x509.Name) -> bool:
    """Whether the DN ``text`` names ``name`` (see the module docstring for what is normalised)."""
    try:
        parsed = parse_dn(text)
    except DnError:
        return False
    key = name_key(name)
    return tuple(reversed(parsed)) == key or parsed == key


def parse_dn(text: str) -> NameKey:
    """RDNs of an RFC 4514 (or RFC 2253 / RFC 1779-style) DN string, in the order written."""
    rdns: list[frozenset[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    i, n = 0, len(text)
    if not text.strip():
        raise DnError("empty distinguished name")
    while True:
        eq = text.find("=", i)
        if eq < 0:
            raise DnError("attribute without '='")
        oid = _oid_of(text[i:eq].strip())
        value, i = _read_value(text, eq + 1)
        current.append((oid, _normalise(value)))
        if i >= n:
            rdns.append(frozenset(current))
            return tuple(rdns)
        sep = text[i]
        i += 1
        if sep in ",;":
            rdns.append(frozenset(current))
            current = []


def _oid_of(type_name: str) -> str:
    upper = type_name.upper()
    if upper.startswith("OID."):
        type_name, upper = type_name[4:], upper[4:]
    if upper in _READ_NAMES:
        return _READ_NAMES[upper]
    if is_oid(type_name):
        return type_name
    raise DnError(f"unknown attribute type '{type_name}'")


def _read_value(text: str, i: int) -> tuple[str, int]:
    """The value starting at ``i`` and the index of the separator after it (or ``len(text)``)."""
    n = len(text)
    while i < n and text[i] == " ":
        i += 1
    if i < n and text[i] == "#":
        j = i + 1
        while j < n and text[j] not in ",;+":
            j += 1
        try:
            return _der.decode_string(bytes.fromhex(text[i + 1 : j].strip())), j
        except ValueError as exc:
            raise DnError(f"bad #hex value: {exc}") from None
    quoted = i < n and text[i] == '"'
    if quoted:
        i += 1
    buf = bytearray()
    while i < n:
        c = text[i]
        if quoted and c == '"':
            i += 1
            while i < n and text[i] == " ":
                i += 1
            if i < n and text[i] not in ",;+":
                raise DnError("text after a quoted value")
            break
        if not quoted and c in ",;+":
            break
        if c == "\\":
            pair = text[i + 1 : i + 3]
            if len(pair) == 2 and all(h in "0123456789abcdefABCDEF" for h in pair):
                buf += bytes.fromhex(pair)
                i += 3
                continue
            if i + 1 < n and text[i + 1] in _SPECIAL:
                buf += text[i + 1].encode()
                i += 2
                continue
            raise DnError("bad escape in value")
        buf += c.encode()
        i += 1
    else:
        if quoted:
            raise DnError("unterminated quoted value")
    try:
        return buf.decode("utf-8"), i
    except UnicodeDecodeError:
        raise DnError("value is not UTF-8") from None


def _normalise(value: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())
