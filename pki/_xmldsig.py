"""signxml, parsing only with the project's hardened parser (``soap_wsdl.parse_xml``).

signxml re-parses the serialisations it makes while signing and verifying (copies of the tree, the
canonical SignedInfo, the signed payload); ``_fromstring`` is its single parsing hook, so both classes route
it to our parser (signxml >=5.2,<6 — checked when the pin moves).
"""

from __future__ import annotations

import logging
from typing import Any, Final

from lxml import etree
from signxml import (  # type: ignore[attr-defined]
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureMethod,
    XMLSigner,
    XMLVerifier,
)

from soap_wsdl import parse_xml

EXC_C14N: Final = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
ENVELOPED: Final = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

#: Signature/digest algorithms a VIHF may use (docs/vihf.md §6); SHA-1 only behind ``VihfPolicy.accept_sha1``.
SHA2_SIGNATURES: Final = frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA384,
                                    SignatureMethod.RSA_SHA512})
SHA2_DIGESTS: Final = frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512})
SHA1_SIGNATURE: Final = SignatureMethod.RSA_SHA1
SHA1_DIGEST: Final = DigestAlgorithm.SHA1

# At DEBUG, signxml logs every string it canonicalises: each VIHF in full (the patient's INS, the professional,
# the structure) on every request. Identities and health data never go to the logs, whatever the log level.
logging.getLogger("signxml").setLevel(logging.INFO)


class HardenedSigner(XMLSigner):
    def _fromstring(self, xml_string: bytes, **_: Any) -> etree._Element:
        return parse_xml(xml_string)


class HardenedVerifier(XMLVerifier):
    def _fromstring(self, xml_string: bytes, **_: Any) -> etree._Element:
        return parse_xml(xml_string)
