"""XML-DSig of the VIHF (docs/vihf.md §6): signing through signxml, verification here.

Signing: signxml, parsing only with the project's hardened parser (``soap_wsdl.parse_xml``). signxml re-parses the
serialisations it makes (copies of the tree, the canonical SignedInfo); ``_fromstring`` is its single parsing
hook, routed to our parser (signxml >=5.2,<6 — checked when the pin moves).

Verification: W3C XML Signature 1.1 core validation (§3.2) for the one shape a VIHF signature has, checked
strictly first (:func:`read_signature`): ``SignedInfo`` (exclusive c14n, an RSA PKCS#1 v1.5 method, one
``Reference``), ``SignatureValue``, optional ``KeyInfo``, nothing else; the Reference names the assertion's own
``ID`` with exactly the transforms enveloped-signature then exclusive c14n. :func:`verify_enveloped` then
canonicalises SignedInfo and the assertion with libxml2's exclusive c14n (through lxml), and checks the
signature value with ``cryptography`` (OpenSSL). Nothing is serialised and parsed again: what is digested is
the tree the caller then reads its claims from.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from lxml import etree
from signxml import CanonicalizationMethod, XMLSigner  # type: ignore[attr-defined]

from pki._errors import VihfError, VihfRefusal
from pki._policy import VihfPolicy
from pki._vihf_model import DS
from soap_wsdl import parse_xml

EXC_C14N: Final = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
ENVELOPED: Final = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_EXC_C14N_NS: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"   # InclusiveNamespaces (Exc-C14N §3)

# Algorithm identifiers (XML Signature 1.1 §6, RFC 6931 §2.1.3, §2.3.2). SHA-1 only behind VihfPolicy.accept_sha1.
_SHA2_SIGNATURES: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": hashes.SHA512,
}
_SHA1_SIGNATURE: Final = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
_SHA2_DIGESTS: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "http://www.w3.org/2001/04/xmlenc#sha256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmlenc#sha512": hashes.SHA512,
}
_SHA1_DIGEST: Final = "http://www.w3.org/2000/09/xmldsig#sha1"
_WHITESPACE: Final = re.compile(r"\s+")

# At DEBUG, signxml logs every string it canonicalises: each VIHF in full (the patient's INS, the professional,
# the structure). Identities and health data never go to the logs, whatever the log level.
logging.getLogger("signxml").setLevel(logging.INFO)


class HardenedSigner(XMLSigner):
    def _fromstring(self, xml_string: bytes, **_: Any) -> etree._Element:
        return parse_xml(xml_string)


def _ds(local: str) -> str:
    return f"{{{DS}}}{local}"


_SIGNED_INFO, _SIGNATURE_VALUE, _KEY_INFO = _ds("SignedInfo"), _ds("SignatureValue"), _ds("KeyInfo")
_INCLUSIVE_NAMESPACES = f"{{{_EXC_C14N_NS}}}InclusiveNamespaces"


@dataclass(frozen=True)
class SignatureParts:
    """A ``ds:Signature`` whose layout was checked, with what its verification needs."""

    element: etree._Element
    signed_info: etree._Element
    signed_info_prefixes: tuple[str, ...] | None   # InclusiveNamespaces PrefixList of SignedInfo's c14n
    signature_hash: hashes.HashAlgorithm
    signature_value: bytes
    digest_hash: hashes.HashAlgorithm
    digest_value: bytes
    reference_prefixes: tuple[str, ...] | None     # ... of the Reference's exclusive c14n transform


def read_signature(sig: etree._Element, assertion_id: str, policy: VihfPolicy) -> SignatureParts:
    """The parts of ``sig``, a VIHF's only ``ds:Signature``, or :class:`VihfError` if it has any other shape
    than the one of docs/vihf.md §6 (element order as in the XML Signature schema, §4)."""
    children = _elements(sig)
    if [c.tag for c in children][:2] != [_SIGNED_INFO, _SIGNATURE_VALUE] or any(
            c.tag != _KEY_INFO for c in children[2:]) or len(children) > 3:
        raise VihfError(VihfRefusal.SIGNATURE_MALFORMED,
                        "ds:Signature must hold ds:SignedInfo, ds:SignatureValue and ds:KeyInfo only (no ds:Object)")
    signed_info, signature_value = children[0], children[1]
    parts = _elements(signed_info)
    if sum(1 for c in parts if c.tag == _ds("Reference")) != 1:
        raise VihfError(VihfRefusal.REFERENCE_MISMATCH,
                        f"the signature must have one Reference, to #{assertion_id} (the assertion itself)")
    if [c.tag for c in parts] != [_ds("CanonicalizationMethod"), _ds("SignatureMethod"), _ds("Reference")]:
        raise VihfError(VihfRefusal.SIGNATURE_MALFORMED,
                        "ds:SignedInfo must hold CanonicalizationMethod, SignatureMethod and Reference, in this order")
    c14n, method, reference = parts
    if c14n.get("Algorithm") != EXC_C14N.value:
        raise VihfError(VihfRefusal.ALGORITHM_NOT_ALLOWED,
                        f"SignedInfo canonicalization {c14n.get('Algorithm')} is not exclusive c14n")
    signature_hash = _algorithm(method.get("Algorithm"), _SHA2_SIGNATURES,
                                _SHA1_SIGNATURE if policy.accept_sha1 else None, "signature method")
    if _elements(method):
        raise VihfError(VihfRefusal.SIGNATURE_MALFORMED, "ds:SignatureMethod has no parameters for RSA")
    if reference.get("URI") != f"#{assertion_id}":
        raise VihfError(VihfRefusal.REFERENCE_MISMATCH,
                        f"the signature must have one Reference, to #{assertion_id} (the assertion itself)")
    ref_parts = _elements(reference)
    if [c.tag for c in ref_parts] != [_ds("Transforms"), _ds("DigestMethod"), _ds("DigestValue")]:
        if not ref_parts or ref_parts[0].tag != _ds("Transforms"):
            raise VihfError(VihfRefusal.ALGORITHM_NOT_ALLOWED,
                            "the Reference transforms must be enveloped-signature then exclusive c14n")
        raise VihfError(VihfRefusal.SIGNATURE_MALFORMED,
                        "ds:Reference must hold Transforms, DigestMethod and DigestValue")
    transforms, digest_method, digest_value = ref_parts
    steps = _elements(transforms)
    if [t.tag for t in steps] != [_ds("Transform")] * 2 \
            or [t.get("Algorithm") for t in steps] != [ENVELOPED, EXC_C14N.value] or _elements(steps[0]):
        raise VihfError(VihfRefusal.ALGORITHM_NOT_ALLOWED,
                        "the Reference transforms must be enveloped-signature then exclusive c14n")
    digest_hash = _algorithm(digest_method.get("Algorithm"), _SHA2_DIGESTS,
                             _SHA1_DIGEST if policy.accept_sha1 else None, "digest method")
    if _elements(digest_method):
        raise VihfError(VihfRefusal.SIGNATURE_MALFORMED, "ds:DigestMethod has no parameters")
    return SignatureParts(
        element=sig,
        signed_info=signed_info,
        signed_info_prefixes=_prefix_list(c14n),
        signature_hash=signature_hash,
        signature_value=_base64(signature_value),
        digest_hash=digest_hash,
        digest_value=_base64(digest_value),
        reference_prefixes=_prefix_list(steps[1]),
    )


def verify_enveloped(assertion: etree._Element, parts: SignatureParts, key: CertificatePublicKeyTypes) -> None:
    """Core validation (XML Signature 1.1 §3.2) of ``parts``, the signature of ``assertion`` (a document's
    root, its Reference checked to name it), with ``key``; on success ``parts.element`` has been removed from
    ``assertion`` (the enveloped-signature transform, done in place), so ``assertion`` is exactly what was
    signed. :class:`VihfError` (``SIGNATURE_INVALID``) otherwise."""
    if not isinstance(key, rsa.RSAPublicKey):
        raise VihfError(VihfRefusal.SIGNATURE_INVALID, "the signer certificate's key is not an RSA key")
    signed_info = etree.tostring(parts.signed_info, method="c14n", exclusive=True, with_comments=False,
                                 inclusive_ns_prefixes=parts.signed_info_prefixes)
    try:
        key.verify(parts.signature_value, signed_info, padding.PKCS1v15(), parts.signature_hash)
    except InvalidSignature:
        raise VihfError(VihfRefusal.SIGNATURE_INVALID,
                        "signature verification failed: the SignatureValue does not match SignedInfo") from None
    _remove_keeping_tail(parts.element)
    digest = hashes.Hash(parts.digest_hash)
    digest.update(etree.tostring(assertion, method="c14n", exclusive=True, with_comments=False,
                                 inclusive_ns_prefixes=parts.reference_prefixes))
    if not hmac.compare_digest(digest.finalize(), parts.digest_value):
        raise VihfError(VihfRefusal.SIGNATURE_INVALID,
                        "signature verification failed: the assertion's digest does not match the Reference")


def _elements(parent: etree._Element) -> list[etree._Element]:
    """The child elements of ``parent`` (no comments, PIs, entities): selected by libxml2, not a Python test
    of each child's tag."""
    return list(parent.iterchildren(etree.Element))


def _algorithm(uri: str | None, allowed: dict[str, type[hashes.HashAlgorithm]], sha1: str | None,
               what: str) -> hashes.HashAlgorithm:
    if uri in allowed:
        return allowed[uri]()
    if sha1 is not None and uri == sha1:
        return hashes.SHA1()  # noqa: S303 -- only behind VihfPolicy.accept_sha1 (2019-2020 GIE samples)
    raise VihfError(VihfRefusal.ALGORITHM_NOT_ALLOWED, f"{what} {uri} is not allowed")


def _prefix_list(method: etree._Element) -> tuple[str, ...] | None:
    """The InclusiveNamespaces PrefixList of an exclusive c14n method (``#default``: the default namespace)."""
    children = _elements(method)
    if not children:
        return None
    if len(children) != 1 or children[0].tag != _INCLUSIVE_NAMESPACES:
        raise VihfError(VihfRefusal.SIGNATURE_MALFORMED,
                        "an exclusive c14n method holds at most one ec:InclusiveNamespaces")
    return tuple((children[0].get("PrefixList") or "").split())


def _base64(element: etree._Element) -> bytes:
    if _elements(element):
        raise VihfError(VihfRefusal.SIGNATURE_MALFORMED, f"ds:{etree.QName(element).localname} must hold text only")
    try:
        return base64.b64decode(_WHITESPACE.sub("", element.text or ""), validate=True)
    except (ValueError, binascii.Error):
        raise VihfError(VihfRefusal.SIGNATURE_MALFORMED,
                        f"ds:{etree.QName(element).localname} is not base64") from None


def _remove_keeping_tail(element: etree._Element) -> None:
    """Remove ``element``; the text after it stays where it was (lxml would drop it with the element)."""
    parent = element.getparent()
    assert parent is not None
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)
