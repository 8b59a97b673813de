"""The identifier rules (docs/identifiers.md): ISO OIDs (ITU-T X.660), the NIR that INS-NIR patient
identifiers carry (INS référentiel, ANS), professionals' and structures' national identifiers (CI-SIS
"Identifiants des acteurs de santé", RPPS, FINESS, SIRET).

Each ``*_problem`` function returns ``None`` when the value is acceptable, otherwise a reason that is safe
to show to the sender. Only ASCII digits count as digits (``str.isdigit`` accepts '²'), and values are taken
as sent: no spaces removed, no case folded.
"""

from __future__ import annotations

import re
from typing import Final

#: INS-NIR assigning authorities (ANS, INS référentiel): production, test patients, demonstration patients.
INS_NIR_OIDS: Final = frozenset({"1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11"})
INS_NIA_OID: Final = "1.2.250.1.213.1.4.9"
IDNAT_PS_OID: Final = "1.2.250.1.71.4.2.1"
STRUCT_IDNAT_OID: Final = "1.2.250.1.71.4.2.2"

_DIGITS = re.compile(r"[0-9]+")
# X.660: first arc 0, 1 or 2; arcs are decimal without leading zeros.
_OID = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*))+")
_NIR = re.compile(r"[0-9]{5}(?:[0-9]{2}|2[AB])[0-9]{6}[0-9]{2}")
# Struct_IdNat = type digit + identifier (docs/identifiers.md):
# 0 ADELI cabinet, 1 FINESS, 2 SIREN, 3 SIRET, 4 RPPS-rang.
_STRUCT = {
    "0": re.compile(r"[0-9]{9}"),
    "1": re.compile(r"[0-9][0-9A-Z]{8}"),
    "2": re.compile(r"[0-9]{9}"),
    "3": re.compile(r"[0-9]{14}"),
    "4": re.compile(r"[0-9]{14}"),
}


def is_digits(value: str, length: int | None = None) -> bool:
    return _DIGITS.fullmatch(value) is not None and (length is None or len(value) == length)


def is_oid(value: str) -> bool:
    """An OID in dot notation (ITU-T X.660 §A.1): first arc 0, 1 or 2, under 0 and 1 a second arc of at most
    39, every arc a decimal number without leading zero."""
    if _OID.fullmatch(value) is None:
        return False
    first, second = value.split(".")[:2]
    return first == "2" or int(second) <= 39


def luhn_valid(digits: str) -> bool:
    """Luhn check over ASCII digits, the last one being the key (RPPS, RPPS-rang, FINESS, SIREN, SIRET)."""
    if not is_digits(digits):
        return False
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def nir_problem(nir: str) -> str | None:
    """NIR: 13 characters (2A/2B allowed for Corsica, département born in 1976 or later) + key =
    97 - (N mod 97) on two digits, where 2A counts as 19 and 2B as 18 (INS référentiel, ANS;
    docs/identifiers.md). Exactly 15 characters: no space, no lower case."""
    if _NIR.fullmatch(nir) is None:
        return f"NIR '{nir}' must be 13 digits (2A/2B for Corsica) and a 2-digit key"
    body = nir[:5] + nir[5:7].replace("2A", "19").replace("2B", "18") + nir[7:13]
    expected = 97 - int(body) % 97
    if int(nir[13:]) != expected:
        return f"NIR '{nir}' has a wrong key: {nir[13:]}, expected {expected:02d}"
    return None


def rpps_problem(rpps: str) -> str | None:
    """RPPS: 11 digits, the last a Luhn key (docs/identifiers.md)."""
    if not is_digits(rpps, 11):
        return f"RPPS '{rpps}' must be 11 digits"
    if not luhn_valid(rpps):
        return f"RPPS '{rpps}' fails the Luhn check"
    return None


def adeli_problem(adeli: str) -> str | None:
    """ADELI: 9 digits (its key algorithm is not published, docs/identifiers.md)."""
    return None if is_digits(adeli, 9) else f"ADELI '{adeli}' must be 9 digits"


def finess_problem(finess: str) -> str | None:
    """FINESS: 9 characters; all-digit ones carry a Luhn key, Corsican/test ones with letters are checked on
    format only (docs/identifiers.md)."""
    if _STRUCT["1"].fullmatch(finess) is None:
        return f"FINESS '{finess}' must be 9 characters (digits, letters only for Corsica or tests)"
    if is_digits(finess) and not luhn_valid(finess):
        return f"FINESS '{finess}' fails the Luhn check"
    return None


def siret_problem(siret: str) -> str | None:
    """SIRET: 14 digits with a Luhn key; La Poste's SIRETs (SIREN 356000000) use digit sum ≡ 0 mod 5."""
    if not is_digits(siret, 14):
        return f"SIRET '{siret}' must be 14 digits"
    la_poste = siret.startswith("356000000")
    ok = sum(ord(c) - 48 for c in siret) % 5 == 0 if la_poste else luhn_valid(siret)
    return None if ok else f"SIRET '{siret}' fails its check digit"


def struct_idnat_problem(value: str) -> str | None:
    """Struct_IdNat: type digit + identifier. The identifier's format is checked for every type; the Luhn key
    only for RPPS-rang (type 4), the one verified on every sample (docs/identifiers.md)."""
    pattern = _STRUCT.get(value[:1])
    if pattern is None or pattern.fullmatch(value[1:]) is None:
        return (f"'{value}' is not a Struct_IdNat (0+ADELI, 1+FINESS, 2+SIREN, 3+SIRET or 4+RPPS-rang)")
    if value[0] == "4" and not luhn_valid(value[1:]):
        return f"Struct_IdNat '{value}': the RPPS-rang fails the Luhn check"
    return None


def idnat_ps_from_rpps(rpps: str) -> str:
    return "8" + rpps


def idnat_ps_from_adeli(adeli: str) -> str:
    return "0" + adeli
