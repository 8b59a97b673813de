"""Envelope-level problems get SOAP 1.2 faults (docs/conformance.md §2); hostile XML is refused; the server keeps
serving after each."""

from __future__ import annotations

import httpx
import pytest
from xds_client import ITI41, ITI43, envelope, parse_reply, post, retrieve_request
from xds_factory import REPOSITORY_ID, Doc, provide_and_register

from soap_wsdl import ns

SOAP_CT = "application/soap+xml; charset=UTF-8"


def raw(node, data: bytes, ctype: str = SOAP_CT, path: str = "/xds/repository"):
    r = httpx.post(node.url + path, content=data, headers={"Content-Type": ctype}, timeout=30)
    return parse_reply(r.status_code, r.headers["content-type"], r.content)


def still_serving(node) -> None:
    back = post(node.repository, ITI43, retrieve_request(REPOSITORY_ID, ["1.2.3"]))
    assert back.http_status == 200
    assert back.error_codes == ["XDSDocumentUniqueIdError"]


def assert_fault(reply, code: str, reason_part: str, status: int = 400) -> None:
    assert reply.http_status == status
    assert reply.body.tag == f"{{{ns.SOAP12}}}Fault"
    assert reply.fault_code == f"env:{code}"
    assert reason_part in reply.fault_reason
    assert reply.action == "http://www.w3.org/2005/08/addressing/soap/fault"


def test_soap11_envelope_is_a_version_mismatch(node):
    data = (b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>')
    assert_fault(raw(node, data), "VersionMismatch", "SOAP 1.1", status=500)
    assert_fault(raw(node, data, "text/xml"), "VersionMismatch", "SOAP 1.1", status=500)
    still_serving(node)


def test_malformed_xml(node):
    assert_fault(raw(node, b"<soap:Envelope xmlns:soap='http://www.w3.org/2003/05/soap-envelope'><soap:Body>"),
                 "Sender", "malformed XML")
    still_serving(node)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><x>&lol9;</x></soap:Body></soap:Envelope>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE e [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><x>&xxe;</x></soap:Body></soap:Envelope>"""

XXE_NET = b"""<?xml version="1.0"?>
<!DOCTYPE e SYSTEM "http://127.0.0.1:9/evil.dtd">
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body/></soap:Envelope>"""


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, XXE, XXE_NET], ids=["bomb", "xxe-file", "xxe-net"])
def test_dtds_and_entities_are_refused(node, payload):
    reply = raw(node, payload)
    assert_fault(reply, "Sender", "DTDs are not allowed")
    assert b"root:" not in reply.envelope.getroottree().getroot().xpath("string()").encode()
    still_serving(node)


def test_deeply_nested_xml_is_refused(node):
    deep = b"<a>" * 500 + b"</a>" * 500
    data = (b'<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>' + deep
            + b"</soap:Body></soap:Envelope>")
    reply = raw(node, data)
    assert reply.http_status == 400
    assert reply.fault_code == "env:Sender"
    still_serving(node)


def test_missing_action(node):
    data = envelope("x", provide_and_register([Doc(b"a", "Document01")])).replace(
        b"<wsa:Action soap:mustUnderstand=\"true\">x</wsa:Action>", b"")
    reply = raw(node, data)
    assert_fault(reply, "Sender", "wsa:Action is required")
    assert reply.body.findtext(f"{{{ns.SOAP12}}}Code/{{{ns.SOAP12}}}Subcode/{{{ns.SOAP12}}}Value") == \
        "sc:MessageAddressingHeaderRequired"


def test_unknown_action_is_action_not_supported(node):
    reply = raw(node, envelope("urn:ihe:iti:2007:RegistryStoredQuery", retrieve_request(REPOSITORY_ID, ["1"])))
    assert_fault(reply, "Sender", "not supported on the repository endpoint")
    assert reply.body.findtext(f"{{{ns.SOAP12}}}Code/{{{ns.SOAP12}}}Subcode/{{{ns.SOAP12}}}Value") == \
        "sc:ActionNotSupported"
    # ITI-41 sent to the registry endpoint is refused the same way.
    reply = raw(node, envelope(ITI41, provide_and_register([Doc(b"a", "D")])), path="/xds/registry")
    assert_fault(reply, "Sender", "not supported on the registry endpoint")


def test_relates_to_on_fault(node):
    env = envelope("urn:unknown", retrieve_request(REPOSITORY_ID, ["1"]), message_id="urn:uuid:1234")
    reply = raw(node, env)
    assert reply.relates_to == "urn:uuid:1234"


def test_must_understand_header_not_understood(node):
    env = envelope(ITI43, retrieve_request(REPOSITORY_ID, ["1"])).replace(
        b"</soap:Header>",
        b'<x:Custom xmlns:x="urn:example" soap:mustUnderstand="true">1</x:Custom></soap:Header>')
    reply = raw(node, env)
    assert_fault(reply, "MustUnderstand", "urn:example", status=500)
    # An unqualified mustUnderstand attribute (DRIMbox) has no SOAP meaning and is accepted.
    env = envelope(ITI43, retrieve_request(REPOSITORY_ID, ["1"])).replace(
        b"</soap:Header>", b'<x:Custom xmlns:x="urn:example" mustUnderstand="true">1</x:Custom></soap:Header>')
    assert raw(node, env).error_codes == ["XDSDocumentUniqueIdError"]


def test_unsupported_content_type(node):
    assert_fault(raw(node, b"hello", "text/plain"), "Sender", "unsupported Content-Type")


@pytest.mark.parametrize(("body", "ctype", "reason"), [
    (b"--b\r\nContent-Type: application/xop+xml\r\n\r\n<x/>", 'multipart/related; boundary="b"', "truncated"),
    (b"no parts at all", 'multipart/related; boundary="b"', ""),
    (b"", "multipart/related", ""),
])
def test_malformed_mime(node, body, ctype, reason):
    reply = raw(node, body, ctype)
    assert_fault(reply, "Sender", "malformed MTOM/MIME package")
    assert reason in reply.fault_reason
    assert not list((node.config.blob_dir / ".spool").iterdir())
    still_serving(node)


def test_empty_body_element(node):
    data = (b'<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" '
            b'xmlns:wsa="http://www.w3.org/2005/08/addressing"><soap:Header><wsa:Action>' + ITI43.encode()
            + b"</wsa:Action></soap:Header><soap:Body/></soap:Envelope>")
    assert_fault(raw(node, data), "Sender", "exactly one element")


def test_wsdl_and_unknown_schema(node):
    r = httpx.get(node.repository + "?wsdl")
    assert r.status_code == 200
    assert b"DocumentRepository_Service" in r.content
    assert httpx.get(node.repository + "?xsd=../../etc/passwd").status_code == 404


def _mtom_labelled_text_xml(envelope_bytes: bytes, docs: list[Doc]) -> tuple[bytes, str]:
    """An MTOM package whose root part says type="text/xml", as node-soap and some .NET stacks send it."""
    from xds_factory import content_id

    from soap_wsdl import OutgoingAttachment, mtom_content_type, mtom_stream, new_boundary

    boundary, root = new_boundary(), "root.text-xml@test"
    parts = [OutgoingAttachment(content_id(d), d.mime_type, d.content) for d in docs]
    data = b"".join(mtom_stream(envelope_bytes, parts, boundary, root))
    labelled = b'application/xop+xml; charset=UTF-8; type="text/xml"'
    assert data.count(b'application/xop+xml; charset=UTF-8; type="application/soap+xml"') == 1
    data = data.replace(b'application/xop+xml; charset=UTF-8; type="application/soap+xml"', labelled)
    ctype = mtom_content_type(boundary, root, ITI41).replace('start-info="application/soap+xml"',
                                                             'start-info="text/xml"')
    return data, ctype


def test_mtom_root_part_labelled_text_xml_holding_soap12_is_accepted(node):
    d = Doc(b"sent by a node-soap client", "Document01")
    data, ctype = _mtom_labelled_text_xml(envelope(ITI41, provide_and_register([d])), [d])
    reply = raw(node, data, ctype)
    assert reply.http_status == 200
    assert reply.status == "Success", reply.errors
    assert post(node.repository, ITI43, retrieve_request(REPOSITORY_ID, [d.unique_id])).documents() == {
        d.unique_id: d.content}


@pytest.mark.parametrize("namespace", ["http://schemas.xmlsoap.org/soap/envelope/", "urn:example:not-soap"])
def test_mtom_envelope_outside_soap12_namespace_is_a_version_mismatch(node, namespace):
    env = f'<s:Envelope xmlns:s="{namespace}"><s:Body/></s:Envelope>'.encode()
    data, ctype = _mtom_labelled_text_xml(env, [])
    assert_fault(raw(node, data, ctype), "VersionMismatch", "SOAP 1.2", status=500)
    still_serving(node)
