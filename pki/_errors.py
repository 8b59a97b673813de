"""Why a VIHF is refused: one member per check, each mapped to the DMP fault subcode the server answers
with (docs/vihf.md §8)."""

from __future__ import annotations

import enum

_INVALID_VIHF = "DMPInvalidVIHF"
_INVALID_SIGNATURE = "DMPInvalidSignature"
_INVALID_CERTIFICATE = "DMPInvalidCertificate"
_IDENTITY = "DMPIdentityMismatch"


class VihfRefusal(enum.Enum):
    """(stable code, DMP SOAP fault subcode)."""

    # where the assertion is (docs/vihf.md §7 step 1)
    MISSING_ASSERTION = ("missing-assertion", _INVALID_VIHF)
    MULTIPLE_ASSERTIONS = ("multiple-assertions", _INVALID_VIHF)
    # schema (step 2)
    MALFORMED_ASSERTION = ("malformed-assertion", _INVALID_VIHF)
    COMMENT_OR_PI = ("comment-or-processing-instruction", _INVALID_VIHF)
    # signature (step 3)
    SIGNATURE_MISSING = ("signature-missing", _INVALID_SIGNATURE)
    SIGNATURE_MISPLACED = ("signature-misplaced", _INVALID_SIGNATURE)
    SIGNATURE_MALFORMED = ("signature-malformed", _INVALID_SIGNATURE)
    DUPLICATE_ID = ("duplicate-id", _INVALID_SIGNATURE)
    REFERENCE_MISMATCH = ("reference-mismatch", _INVALID_SIGNATURE)
    ALGORITHM_NOT_ALLOWED = ("algorithm-not-allowed", _INVALID_SIGNATURE)
    SIGNATURE_INVALID = ("signature-invalid", _INVALID_SIGNATURE)
    # signer certificate (steps 4-5)
    CERTIFICATE_MISSING = ("certificate-missing", _INVALID_CERTIFICATE)
    CERTIFICATE_MALFORMED = ("certificate-malformed", _INVALID_CERTIFICATE)
    CERTIFICATE_UNTRUSTED = ("certificate-untrusted", "DMPUntrustedIssuer")
    CERTIFICATE_NOT_YET_VALID = ("certificate-not-yet-valid", _INVALID_CERTIFICATE)
    CERTIFICATE_EXPIRED = ("certificate-expired", "DMPCertificateExpired")
    CERTIFICATE_REVOKED = ("certificate-revoked", "DMPCertificateRevoked")
    REVOCATION_UNKNOWN = ("revocation-unknown", _INVALID_CERTIFICATE)
    CERTIFICATE_USAGE = ("certificate-usage", _INVALID_CERTIFICATE)
    # identity (steps 6-7)
    ISSUER_MISMATCH = ("issuer-mismatch", _IDENTITY)
    NAMEID_MISMATCH = ("nameid-mismatch", _IDENTITY)
    PROFESSION_MISMATCH = ("profession-mismatch", _IDENTITY)
    STRUCTURE_MISMATCH = ("structure-mismatch", _IDENTITY)
    TLS_PEER_INVALID = ("tls-peer-invalid", _INVALID_CERTIFICATE)
    TLS_PEER_MISMATCH = ("tls-peer-mismatch", _IDENTITY)
    # attributes (step 8)
    ATTRIBUTE_MISSING = ("attribute-missing", _INVALID_VIHF)
    ATTRIBUTE_DUPLICATED = ("attribute-duplicated", _INVALID_VIHF)
    VERSION_UNSUPPORTED = ("version-unsupported", _INVALID_VIHF)
    MODE_INVALID = ("mode-invalid", _INVALID_VIHF)
    STRUCTURE_ID_INVALID = ("structure-id-invalid", _INVALID_VIHF)
    SECTOR_INVALID = ("sector-invalid", _INVALID_VIHF)
    SUBJECT_ID_INVALID = ("subject-id-invalid", _INVALID_VIHF)
    ROLE_INVALID = ("role-invalid", _INVALID_VIHF)
    SPECIALTY_MISSING = ("specialty-missing", _INVALID_VIHF)
    RESOURCE_ID_INVALID = ("resource-id-invalid", _INVALID_VIHF)
    NIR_INVALID = ("nir-invalid", _INVALID_VIHF)
    RESOURCE_URN_INVALID = ("resource-urn-invalid", _INVALID_VIHF)
    PURPOSE_OF_USE_INVALID = ("purpose-of-use-invalid", _INVALID_VIHF)
    CONFIDENTIALITY_INVALID = ("confidentiality-invalid", _INVALID_VIHF)
    SOFTWARE_INVALID = ("software-invalid", _INVALID_VIHF)
    # freshness and replay (step 10)
    ASSERTION_NOT_YET_VALID = ("assertion-not-yet-valid", _INVALID_VIHF)
    ASSERTION_EXPIRED = ("assertion-expired", "DMPVIHFExpired")
    REPLAY = ("replay", "DMPVIHFReplay")
    REPLAY_CACHE_FULL = ("replay-cache-full", "DMPServiceUnavailable")

    @property
    def code(self) -> str:
        return self.value[0]

    @property
    def dmp_subcode(self) -> str:
        return self.value[1]

    @property
    def sender_fault(self) -> bool:
        """False only when the server, not the request, is at fault (SOAP ``Receiver``)."""
        return self is not VihfRefusal.REPLAY_CACHE_FULL


class VihfError(Exception):
    """A refused VIHF. ``detail`` is safe to return to the sender (no key material, no stack)."""

    def __init__(self, reason: VihfRefusal, detail: str, *, attribute: str | None = None) -> None:
        super().__init__(f"{reason.code}: {detail}")
        self.reason = reason
        self.detail = detail
        self.attribute = attribute   # the saml2:Attribute concerned, for attribute refusals
