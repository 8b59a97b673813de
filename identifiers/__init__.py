"""National and ISO identifiers, one rule each, shared by the registry (patient ids in XDS metadata) and the
PKI (certificates, VIHF attributes): OIDs, NIR/INS, RPPS, ADELI, FINESS, SIRET, Struct_IdNat (docs/identifiers.md).

Each ``*_problem`` function returns ``None`` when the value is acceptable, otherwise a reason that is safe to
show to the sender. Pure, no dependencies."""

from identifiers._national import (
    IDNAT_PS_OID,
    INS_NIA_OID,
    INS_NIR_OIDS,
    STRUCT_IDNAT_OID,
    adeli_problem,
    finess_problem,
    idnat_ps_from_adeli,
    idnat_ps_from_rpps,
    is_digits,
    is_oid,
    luhn_valid,
    nir_problem,
    rpps_problem,
    siret_problem,
    struct_idnat_problem,
)

__all__ = [
    "IDNAT_PS_OID",
    "INS_NIA_OID",
    "INS_NIR_OIDS",
    "STRUCT_IDNAT_OID",
    "adeli_problem",
    "finess_problem",
    "idnat_ps_from_adeli",
    "idnat_ps_from_rpps",
    "is_digits",
    "is_oid",
    "luhn_valid",
    "nir_problem",
    "rpps_problem",
    "siret_problem",
    "struct_idnat_problem",
]
