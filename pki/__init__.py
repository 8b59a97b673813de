"""Certificates and the VIHF: who is calling.

- :class:`TrustStore` validates a certificate against configured trust anchors (chain, dates, CA
  constraints, CRL revocation, key usage for a :class:`Usage`).
- :class:`VihfVerifier` turns a signed VIHF (``saml2:Assertion``, docs/vihf.md) into a :class:`Principal`, or
  raises :class:`VihfError` whose :class:`VihfRefusal` names the failed check and its DMP fault subcode;
  :func:`find_assertion` picks the VIHF out of a SOAP envelope.
- :func:`build_vihf` and :func:`sign_assertion` make one; a :class:`Signer` holds the key (software now,
  the CPS card through PKCS#11 later).
- :class:`TestPki` is an IGC-Santé-like CA hierarchy for tests and demos only.
"""

from identifiers import INS_NIR_OIDS, nir_problem, struct_idnat_problem
from pki._ca import WARNING as TEST_PKI_WARNING
from pki._ca import CardCredentials, Credential, StructureCredentials, TestPki
from pki._certs import CertificateIdentity, Profile, PsIdentity, StructureIdentity
from pki._dn import dn_string
from pki._errors import VihfError, VihfRefusal
from pki._policy import VihfPolicy
from pki._principal import Principal
from pki._replay import ReplayCache, ReplayCacheFull, ReplayStore
from pki._replay_shared import DatabaseReplayStore, SharedReplayStore, replay_metadata
from pki._signer import Signer, SoftwareSigner
from pki._trust import CertificateError, CertificateRefusal, TrustStore, Usage
from pki._vihf_build import VihfClaims, build_vihf, sign_assertion, xs_datetime
from pki._vihf_model import AuthMode, CodedValue, PatientIns, PurposeOfUse, Software
from pki._vihf_verify import Clock, VihfVerifier, find_assertion, utc_now

__all__ = [
    "INS_NIR_OIDS",
    "TEST_PKI_WARNING",
    "AuthMode",
    "CardCredentials",
    "CertificateError",
    "CertificateIdentity",
    "CertificateRefusal",
    "Clock",
    "CodedValue",
    "Credential",
    "DatabaseReplayStore",
    "PatientIns",
    "Principal",
    "Profile",
    "PsIdentity",
    "PurposeOfUse",
    "ReplayCache",
    "ReplayCacheFull",
    "ReplayStore",
    "SharedReplayStore",
    "Signer",
    "Software",
    "SoftwareSigner",
    "StructureCredentials",
    "StructureIdentity",
    "TestPki",
    "TrustStore",
    "Usage",
    "VihfClaims",
    "VihfError",
    "VihfPolicy",
    "VihfRefusal",
    "VihfVerifier",
    "build_vihf",
    "dn_string",
    "find_assertion",
    "nir_problem",
    "replay_metadata",
    "sign_assertion",
    "struct_idnat_problem",
    "utc_now",
    "xs_datetime",
]
