"""Interoperability with an independent XML-DSig implementation: Debian's ``xmlsec1`` (libxmlsec1 + OpenSSL).

A VIHF signed by our code verifies with ``xmlsec1 --verify``; one signed by ``xmlsec1 --sign`` from a template
verifies with ours. Both tools check the certificate chain against the same test PKI, at the same instant.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree
from vihf_support import NOW, Pkis, alice_claims, hospital_claims, refusal, reparse, signed_vihf, verifier

from pki import AuthMode, Credential, VihfClaims, VihfPolicy, VihfRefusal, build_vihf

XMLSEC1 = shutil.which("xmlsec1")
DS = "http://www.w3.org/2000/09/xmldsig#"
SAML_ASSERTION_ID = ["--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"]
AT = ["--verification-gmt-time", NOW.strftime("%Y-%m-%d %H:%M:%S")]


@pytest.fixture(scope="module")
def xmlsec1() -> str:
    assert XMLSEC1, "xmlsec1 is not installed: run scripts/bootstrap.sh test (Debian package xmlsec1)"
    return XMLSEC1


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def xmlsec_verify(xmlsec1: str, pkis: Pkis, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    d = pkis.pki.directory
    return run(xmlsec1, "--verify", "--trusted-pem", str(d / "trust-anchors.pem"),
               "--untrusted-pem", str(d / "ca-personnes.pem"), "--untrusted-pem", str(d / "ca-organisations.pem"),
               *SAML_ASSERTION_ID, *AT, *extra, str(path))


def write(tmp_path: Path, name: str, element: etree._Element) -> Path:
    path = tmp_path / name
    path.write_bytes(etree.tostring(element, xml_declaration=True, encoding="UTF-8"))
    return path


@pytest.mark.parametrize("who", ["alice", "hospital"])
def test_xmlsec1_verifies_our_signature(xmlsec1: str, pkis: Pkis, tmp_path: Path, who: str) -> None:
    vihf = (signed_vihf(pkis.alice.signature.signer()) if who == "alice"
            else signed_vihf(pkis.hospital.seal.signer(), hospital_claims()))
    result = xmlsec_verify(xmlsec1, pkis, write(tmp_path, "vihf.xml", vihf))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout + result.stderr


def test_xmlsec1_refuses_our_signature_once_tampered(xmlsec1: str, pkis: Pkis, tmp_path: Path) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer())
    vihf.find(".//{urn:oasis:names:tc:SAML:2.0:assertion}NameID").text = "810001234567"  # type: ignore[union-attr]
    result = xmlsec_verify(xmlsec1, pkis, write(tmp_path, "vihf.xml", vihf))
    assert result.returncode != 0


def test_xmlsec1_checks_the_chain_of_our_signer(xmlsec1: str, pkis: Pkis, tmp_path: Path) -> None:
    result = xmlsec_verify(xmlsec1, pkis, write(tmp_path, "vihf.xml",
                                                signed_vihf(pkis.foreign_alice.signature.signer())))
    assert result.returncode != 0


RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


def xmlsec_signed(xmlsec1: str, credential: Credential, claims: VihfClaims, tmp_path: Path, *,
                  signature_method: str = RSA_SHA256, digest_method: str = SHA256, prefix_list: str | None = None,
                  pretty: bool = False) -> etree._Element:
    """A VIHF signed by ``xmlsec1 --sign`` from a signature template placed after saml2:Issuer. ``prefix_list``:
    InclusiveNamespaces of both exclusive c14n steps (as the ANS code sends); ``pretty``: indented, so that
    line breaks and spaces surround the signature and fill it."""
    assertion = build_vihf(claims, signer_certificate=credential.certificate, issue_instant=NOW)
    inclusive = "" if prefix_list is None else \
        f'<ec:InclusiveNamespaces xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="{prefix_list}"/>'
    template = etree.fromstring(f"""
<ds:Signature xmlns:ds="{DS}">
  <ds:SignedInfo>
    <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#">{inclusive}</ds:CanonicalizationMethod>
    <ds:SignatureMethod Algorithm="{signature_method}"/>
    <ds:Reference URI="#{assertion.get('ID')}">
      <ds:Transforms>
        <ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
        <ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#">{inclusive}</ds:Transform>
      </ds:Transforms>
      <ds:DigestMethod Algorithm="{digest_method}"/>
      <ds:DigestValue/>
    </ds:Reference>
  </ds:SignedInfo>
  <ds:SignatureValue/>
  <ds:KeyInfo><ds:X509Data/></ds:KeyInfo>
</ds:Signature>""")
    if pretty:
        etree.indent(assertion)
        template.tail = assertion[0].tail   # the text after saml2:Issuer: now after the signature
    assertion[0].addnext(template)
    tmpl, out = write(tmp_path, "template.xml", assertion), tmp_path / "signed.xml"
    result = run(xmlsec1, "--sign", "--privkey-pem", f"{credential.key_path},{credential.certificate_path}",
                 *SAML_ASSERTION_ID, "--output", str(out), str(tmpl))
    assert result.returncode == 0, result.stderr
    return reparse_bytes(out.read_bytes())


def reparse_bytes(data: bytes) -> etree._Element:
    from soap_wsdl import parse_xml

    return parse_xml(data)


def test_we_verify_a_signature_made_by_xmlsec1(xmlsec1: str, pkis: Pkis, tmp_path: Path) -> None:
    signed = xmlsec_signed(xmlsec1, pkis.alice.signature, alice_claims(), tmp_path)
    p = verifier(pkis).verify(signed)
    assert p.professional_id == "899700012349"
    assert p.auth_mode is AuthMode.DIRECT
    # xmlsec1 agrees with itself, so the two implementations agree on both directions.
    assert xmlsec_verify(xmlsec1, pkis, tmp_path / "signed.xml").returncode == 0


def test_we_verify_an_indirect_mode_signature_made_by_xmlsec1(xmlsec1: str, pkis: Pkis, tmp_path: Path) -> None:
    signed = xmlsec_signed(xmlsec1, pkis.hospital.seal, hospital_claims(), tmp_path)
    assert verifier(pkis).verify(signed).auth_mode is AuthMode.INDIRECT


def test_we_refuse_an_xmlsec1_signature_once_tampered(xmlsec1: str, pkis: Pkis, tmp_path: Path) -> None:
    signed = xmlsec_signed(xmlsec1, pkis.alice.signature, alice_claims(), tmp_path)
    signed.find(".//{urn:oasis:names:tc:SAML:2.0:assertion}NameID").text = "810001234567"  # type: ignore[union-attr]
    assert refusal(verifier(pkis), signed).reason is VihfRefusal.SIGNATURE_INVALID


def test_we_refuse_an_xmlsec1_signature_by_a_revoked_card(xmlsec1: str, pkis: Pkis, tmp_path: Path) -> None:
    signed = xmlsec_signed(xmlsec1, pkis.revoked.signature, alice_claims(), tmp_path)
    assert refusal(verifier(pkis), reparse(signed)).reason is VihfRefusal.CERTIFICATE_REVOKED


def test_we_verify_an_indented_xmlsec1_signature_with_inclusive_namespaces(xmlsec1: str, pkis: Pkis,
                                                                          tmp_path: Path) -> None:
    """As the ANS code signs (PrefixList ``ds saml #default xsi``), pretty-printed: the line breaks around and
    inside the signature are signed content, and the prefixes listed are rendered even where unused."""
    signed = xmlsec_signed(xmlsec1, pkis.alice.signature, alice_claims(), tmp_path,
                           prefix_list="ds saml2 #default xsi xs", pretty=True)
    after_signature = signed[1].tail
    assert after_signature
    assert "\n" in after_signature
    assert verifier(pkis).verify(signed).professional_id == "899700012349"
    assert xmlsec_verify(xmlsec1, pkis, tmp_path / "signed.xml").returncode == 0
    # The prefix list is part of SignedInfo: changing it breaks the signature.
    listed = signed.find(f".//{{{DS}}}Transform/{{http://www.w3.org/2001/10/xml-exc-c14n#}}InclusiveNamespaces")
    assert listed is not None
    listed.set("PrefixList", "ds")
    assert refusal(verifier(pkis), signed).reason is VihfRefusal.SIGNATURE_INVALID


def test_sha1_signatures_only_when_the_policy_accepts_them(xmlsec1: str, pkis: Pkis, tmp_path: Path) -> None:
    """The 2019-2020 GIE samples sign with rsa-sha1 / sha1 (docs/vihf.md §6)."""
    signed = xmlsec_signed(xmlsec1, pkis.alice.signature, alice_claims(), tmp_path,
                           signature_method="http://www.w3.org/2000/09/xmldsig#rsa-sha1",
                           digest_method="http://www.w3.org/2000/09/xmldsig#sha1")
    assert refusal(verifier(pkis), signed).reason is VihfRefusal.ALGORITHM_NOT_ALLOWED
    lenient = verifier(pkis, policy=VihfPolicy(accept_sha1=True))
    assert lenient.verify(reparse(signed)).professional_id == "899700012349"
    signed.find(".//{urn:oasis:names:tc:SAML:2.0:assertion}NameID").text = "810001234567"  # type: ignore[union-attr]
    assert refusal(lenient, signed).reason is VihfRefusal.SIGNATURE_INVALID
