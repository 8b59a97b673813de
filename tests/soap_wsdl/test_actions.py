"""The one table of actions and the one request-envelope builder shared by the node and its clients."""

from __future__ import annotations

from lxml import etree

from soap_wsdl import Action, ns, parse_xml, read_envelope, request_envelope

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"


def test_actions_are_their_uris_and_name_their_responses() -> None:
    assert Action.ITI41 == "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
    assert {Action.ITI18: 1}["urn:ihe:iti:2007:RegistryStoredQuery"] == 1   # dict keys match plain strings
    assert Action.ITI57.response == "urn:ihe:iti:2010:UpdateDocumentSetResponse"


def test_a_request_envelope_reads_back_with_its_headers() -> None:
    assertion = etree.Element(f"{{{SAML}}}Assertion", ID="_a1")
    data = request_envelope(Action.ITI43, etree.Element("{urn:x}Body"), to="https://node/xds/repository",
                            message_id="urn:uuid:1", assertion=assertion)
    request = read_envelope(data)
    assert (request.action, request.message_id, request.to, request.reply_to) == (
        Action.ITI43, "urn:uuid:1", "https://node/xds/repository", ns.WSA_ANONYMOUS)
    assert request.body.tag == "{urn:x}Body"
    assert request.security is not None
    assert [c.get("ID") for c in request.security] == ["_a1"]
    assert parse_xml(data).find(f"{{{ns.SOAP12}}}Header/{{{ns.WSA}}}Action").get(
        f"{{{ns.SOAP12}}}mustUnderstand") == "true"


def test_the_signed_assertion_is_copied_not_taken_from_the_callers_tree() -> None:
    """One VIHF may go into several envelopes (from several threads: moving one lxml element between trees
    concurrently crashed the interpreter)."""
    holder = etree.Element("holder")
    assertion = etree.SubElement(holder, f"{{{SAML}}}Assertion", ID="_a2")
    first = request_envelope(Action.ITI18, etree.Element("q1"), assertion=assertion)
    second = request_envelope(Action.ITI18, etree.Element("q2"), assertion=assertion)
    assert assertion.getparent() is holder
    assert b'ID="_a2"' in first
    assert b'ID="_a2"' in second
