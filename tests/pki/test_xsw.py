"""XML signature wrapping (XSW): a document that still carries a cryptographically valid signature, arranged so
that a reader of the input tree sees data the signature does not cover. Each forgery is first shown to fool a
naive verifier (plain signxml, then reading the input tree), then refused by VihfVerifier.

Variants after Somorovsky et al., "On Breaking SAML: Be Whoever You Want to Be" (USENIX Security 2012), and the
2018 comment-truncation attacks on SAML libraries.
"""

from __future__ import annotations

import copy

import pytest
from lxml import etree
from signxml import SignatureConfiguration, XMLSigner, XMLVerifier
from vihf_support import (
    NOW,
    Pkis,
    envelope,
    first_value,
    hospital_claims,
    refusal,
    reparse,
    signed_vihf,
    verifier,
)

from pki import PurposeOfUse, VihfError, VihfRefusal, find_assertion

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
PURPOSE = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"
RESOURCE_ID = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"
VICTIM = "185052A01234579^^^&1.2.250.1.213.1.4.10&ISO^NH"


def s(local: str) -> str:
    return f"{{{SAML}}}{local}"


def naive_accepts(doc: etree._Element, pkis: Pkis) -> bool:
    """signxml finds a valid signature (anywhere in the document) made by ALICE's certificate."""
    try:
        XMLVerifier().verify(copy.deepcopy(doc), x509_cert=pkis.alice.signature.certificate, id_attribute="ID",
                                  expect_config=SignatureConfiguration(location=".//", verification_time=NOW))
    except Exception:
        return False
    return True


def forged_from(original: etree._Element, *, new_id: str | None) -> etree._Element:
    """A copy of the signed assertion with the attacker's claims: bris de glace on another patient."""
    forged = copy.deepcopy(original)
    if new_id is not None:
        forged.set("ID", new_id)
    first_value(forged, PURPOSE)[0].set("code", PurposeOfUse.BREAK_GLASS.value)
    first_value(forged, RESOURCE_ID).text = VICTIM
    return forged


def without_signature(assertion: etree._Element) -> etree._Element:
    bare = copy.deepcopy(assertion)
    sig = bare.find(f"{{{DS}}}Signature")
    assert sig is not None
    bare.remove(sig)
    return bare


def naive_resource_id(doc: etree._Element) -> str | None:
    """What a reader of the input tree's own AttributeStatement sees."""
    value = doc.find(f"{s('AttributeStatement')}/{s('Attribute')}[@Name='{RESOURCE_ID}']/{s('AttributeValue')}")
    assert value is not None
    return value.text


# --- the signed assertion wrapped inside a forged one -----------------------------------------------------------


def test_original_moved_into_advice_of_a_forged_assertion(pkis: Pkis) -> None:
    original = signed_vihf(pkis.alice.signature.signer())
    forged = forged_from(original, new_id="_forged")
    advice = etree.Element(s("Advice"))
    advice.append(without_signature(original))
    forged.find(s("Subject")).addnext(advice)  # type: ignore[union-attr]
    assert naive_accepts(forged, pkis)
    assert naive_resource_id(forged) == VICTIM
    assert refusal(verifier(pkis), forged).reason is VihfRefusal.MALFORMED_ASSERTION


def test_original_hidden_in_an_attribute_value_of_a_forged_assertion(pkis: Pkis) -> None:
    """Same wrap where the schema allows anything (xs:anyType): the Reference no longer names the assertion."""
    original = signed_vihf(pkis.alice.signature.signer())
    forged = forged_from(original, new_id="_forged")
    holder = etree.SubElement(forged.find(s("AttributeStatement")), s("Attribute"), Name="Extension")  # type: ignore[arg-type]
    etree.SubElement(holder, s("AttributeValue")).append(without_signature(original))
    assert naive_accepts(forged, pkis)
    assert naive_resource_id(forged) == VICTIM
    assert refusal(verifier(pkis), forged).reason is VihfRefusal.REFERENCE_MISMATCH


def test_forged_assertion_reusing_the_original_id(pkis: Pkis) -> None:
    original = signed_vihf(pkis.alice.signature.signer())
    forged = forged_from(original, new_id=None)
    holder = etree.SubElement(forged.find(s("AttributeStatement")), s("Attribute"), Name="Extension")  # type: ignore[arg-type]
    etree.SubElement(holder, s("AttributeValue")).append(without_signature(original))
    assert refusal(verifier(pkis), forged).reason is VihfRefusal.DUPLICATE_ID


# --- a second assertion -------------------------------------------------------------------------------------


@pytest.mark.parametrize("forged_first", [True, False])
def test_second_unsigned_assertion_in_the_security_header(pkis: Pkis, forged_first: bool) -> None:
    original = signed_vihf(pkis.alice.signature.signer())
    forged = without_signature(forged_from(original, new_id="_forged"))
    pair = (forged, original) if forged_first else (original, forged)
    with pytest.raises(VihfError) as info:
        find_assertion(reparse(envelope(*pair)))
    assert info.value.reason is VihfRefusal.MULTIPLE_ASSERTIONS
    # Had the server handed over the forged one anyway:
    assert refusal(verifier(pkis), forged).reason is VihfRefusal.SIGNATURE_MISSING


def test_signed_assertion_elsewhere_in_the_envelope(pkis: Pkis) -> None:
    """Forged assertion in wsse:Security carrying the original's signature; the original sits in another header
    block, where a document-wide ID lookup would find it."""
    original = signed_vihf(pkis.alice.signature.signer())
    forged = forged_from(original, new_id="_forged")
    env = envelope(forged)
    etree.SubElement(env[0], "{urn:x}Elsewhere").append(without_signature(original))
    assert naive_accepts(env, pkis)
    with pytest.raises(VihfError) as info:
        find_assertion(reparse(env))
    assert info.value.reason is VihfRefusal.MULTIPLE_ASSERTIONS
    # Verified on its own, the forged assertion's Reference points outside it:
    assert refusal(verifier(pkis), forged).reason is VihfRefusal.REFERENCE_MISMATCH


def test_two_security_headers(pkis: Pkis) -> None:
    with pytest.raises(VihfError) as info:
        find_assertion(reparse(envelope(signed_vihf(pkis.alice.signature.signer()), security_blocks=2)))
    assert info.value.reason is VihfRefusal.MULTIPLE_ASSERTIONS


def test_no_security_header_or_no_assertion(pkis: Pkis) -> None:
    for env in (envelope(security_blocks=0), envelope()):
        with pytest.raises(VihfError) as info:
            find_assertion(reparse(env))
        assert info.value.reason is VihfRefusal.MISSING_ASSERTION


# --- the signature moved, or signing something else ---------------------------------------------------------------


def test_signature_moved_to_the_end(pkis: Pkis) -> None:
    """Still cryptographically valid (enveloped), but not where a VIHF has it."""
    vihf = signed_vihf(pkis.alice.signature.signer())
    sig = vihf.find(f"{{{DS}}}Signature")
    assert sig is not None
    vihf.append(sig)
    assert naive_accepts(vihf, pkis)
    assert refusal(verifier(pkis), vihf).reason is VihfRefusal.SIGNATURE_MISPLACED


def test_signature_moved_into_the_subject(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer())
    sig = vihf.find(f"{{{DS}}}Signature")
    assert sig is not None
    vihf.find(s("Subject")).append(sig)  # type: ignore[union-attr]
    assert refusal(verifier(pkis), vihf).reason is VihfRefusal.SIGNATURE_MISPLACED


def test_second_signature(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer())
    sig = vihf.find(f"{{{DS}}}Signature")
    assert sig is not None
    vihf.append(copy.deepcopy(sig))
    assert refusal(verifier(pkis), vihf).reason is VihfRefusal.SIGNATURE_MISPLACED


def test_valid_signature_over_another_element_of_the_assertion(pkis: Pkis) -> None:
    """A trusted key really signed, but only the Subject (Reference to the Subject's ID), not the claims."""
    unsigned = without_signature(signed_vihf(pkis.alice.signature.signer()))
    subject = unsigned.find(s("Subject"))
    assert subject is not None
    subject.set("ID", "_subject")
    unsigned.find(s("Issuer")).addnext(  # type: ignore[union-attr]
        etree.Element(f"{{{DS}}}Signature", Id="placeholder", nsmap={"ds": DS}))
    signed = XMLSigner(c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#").sign(
        unsigned, key=pkis.alice.signature.private_key, cert=[pkis.alice.signature.certificate],
        reference_uri="#_subject")
    assert naive_accepts(signed, pkis)
    assert refusal(verifier(pkis), signed).reason is VihfRefusal.REFERENCE_MISMATCH


# --- comments and duplicate IDs ---------------------------------------------------------------------------------


def test_comment_injected_in_nameid(pkis: Pkis) -> None:
    """Comments are outside exclusive c14n: the signature stays valid while lxml's ``.text`` (a naive reader)
    now stops at the comment."""
    vihf = signed_vihf(pkis.hospital.seal.signer(), hospital_claims())
    name_id = vihf.find(f"{s('Subject')}/{s('NameID')}")
    assert name_id is not None
    assert name_id.text == "1750712184/INT0042"
    name_id.text = "1750712184"
    name_id.append(etree.Comment("x"))
    name_id[0].tail = "/INT0042"
    wire = reparse(vihf)
    assert XMLVerifier().verify(copy.deepcopy(wire), x509_cert=pkis.hospital.seal.certificate,
                                     id_attribute="ID",
                                     expect_config=SignatureConfiguration(verification_time=NOW))
    assert wire.find(f"{s('Subject')}/{s('NameID')}").text == "1750712184"  # type: ignore[union-attr]
    assert refusal(verifier(pkis), vihf).reason is VihfRefusal.COMMENT_OR_PI


def test_comment_injected_in_the_resource_id(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer())
    value = first_value(vihf, RESOURCE_ID)
    value.text = "2840675123"
    value.append(etree.Comment(""))
    value[0].tail = "45688^^^&1.2.250.1.213.1.4.10&ISO^NH"
    assert naive_accepts(vihf, pkis)
    assert refusal(verifier(pkis), vihf).reason is VihfRefusal.COMMENT_OR_PI


def test_processing_instruction_inside_the_assertion(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer())
    vihf.find(s("Subject")).append(etree.ProcessingInstruction("x", "y"))  # type: ignore[union-attr]
    assert refusal(verifier(pkis), vihf).reason is VihfRefusal.COMMENT_OR_PI


@pytest.mark.parametrize("attribute", ["ID", "Id", "id", "{http://www.w3.org/XML/1998/namespace}id"])
def test_duplicate_id_attribute_inside_the_assertion(pkis: Pkis, attribute: str) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer())
    vihf.find(s("AttributeStatement")).set(attribute, vihf.get("ID") or "")  # type: ignore[union-attr]
    assert refusal(verifier(pkis), vihf).reason is VihfRefusal.DUPLICATE_ID
