"""zeep, a WSDL-driven SOAP client, against a real `dmp serve`: it loads our WSDL from ``?wsdl``, sends the real
operations (WS-Addressing headers from the WSDL's wsaw:Action, documents inline as base64) and parses our
answers. The call arguments come from the factory's ebRIM XML, parsed by zeep with the schema it loaded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import zeep
from lxml import etree
from vihf_client import alice_claims, fresh_vihf, patient_ins, security_header
from xds_client import ITI43, post, retrieve_request
from xds_factory import REPOSITORY_ID, Doc, provide_and_register, submission_set, submit_objects_request
from zeep.plugins import HistoryPlugin

from registry import Registry, Store

LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
XDSB = "urn:ihe:iti:xds-b:2007"
WSA = "http://www.w3.org/2005/08/addressing"
SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
REGISTER = "DocumentRegistry_RegisterDocumentSet-b"
PROVIDE = "DocumentRepository_ProvideAndRegisterDocumentSet-b"
RETRIEVE = "DocumentRepository_RetrieveDocumentSet"


class Zeep:
    def __init__(self, wsdl_url: str) -> None:
        self.history = HistoryPlugin()
        self.client = zeep.Client(wsdl_url, plugins=[self.history])

    def arguments(self, element: str, xml: etree._Element) -> dict[str, Any]:
        """The operation's keyword arguments: our request element parsed by zeep into its own objects."""
        obj = self.client.get_element(element).parse(xml, self.client.wsdl.types)
        return {name: obj[name] for name in obj}

    def call(self, operation: str, *, patient: str | None = None, **kwargs: Any) -> Any:
        """The operation, with a fresh VIHF of the default test professional in wsse:Security (zeep
        ``_soapheaders``): the node requires one. It names ``patient`` (default: the default test patient)."""
        vihf = fresh_vihf(claims=alice_claims(patient=patient_ins(patient))) if patient else fresh_vihf()
        return self.client.service[operation](**kwargs, _soapheaders=[security_header(vihf)])

    def header(self, direction: str, local: str) -> list[str]:
        last = self.history.last_sent if direction == "sent" else self.history.last_received
        return [el.text for el in last["envelope"].iter(f"{{{WSA}}}{local}")]

    def close(self) -> None:
        self.client.transport.session.close()


@pytest.fixture(scope="module")
def registry_client(node) -> Iterator[Zeep]:
    z = Zeep(f"{node.registry}?wsdl")
    yield z
    z.close()


@pytest.fixture(scope="module")
def repository_client(node) -> Iterator[Zeep]:
    z = Zeep(f"{node.repository}?wsdl")
    yield z
    z.close()


def registered(node, uid: str) -> bool:
    store = Store(node.config.database_url)
    try:
        return Registry(store).is_registered(uid)
    finally:
        store.dispose()


def assert_addressed(z: Zeep, action: str) -> None:
    """One wsa:Action as the WSDL says; the answer's action and RelatesTo match the request."""
    assert z.header("sent", "Action") == [action]
    (message_id,) = z.header("sent", "MessageID")
    assert z.header("received", "Action") == [action + "Response"]
    assert z.header("received", "RelatesTo") == [message_id]


def test_wsdl_loads_from_the_node(node, registry_client, repository_client):
    for z, endpoint, operations in ((registry_client, node.registry, {REGISTER}),
                                    (repository_client, node.repository, {PROVIDE, RETRIEVE})):
        (service,) = z.client.wsdl.services.values()
        (port,) = service.ports.values()
        assert port.binding_options["address"] == endpoint
        assert operations <= set(port.binding.all())


def test_register_document_set(node, registry_client):
    d = Doc(b"registered through zeep", "Document01")
    args = registry_client.arguments(f"{{{LCM}}}SubmitObjectsRequest",
                                     submit_objects_request([d], repository_attributes=True))
    result = registry_client.call(REGISTER, **args)
    assert result.status == SUCCESS
    assert result.RegistryErrorList is None
    assert_addressed(registry_client, "urn:ihe:iti:2007:RegisterDocumentSet-b")
    assert registered(node, d.unique_id)


def test_register_error_is_parsed(node, registry_client):
    stranger = "255069999999934^^^&1.2.250.1.213.1.4.10&ISO"
    d = Doc(b"unknown patient", "Document01", patient_id=stranger)
    args = registry_client.arguments(f"{{{LCM}}}SubmitObjectsRequest",
                                     submit_objects_request([d], ss=submission_set(stranger),
                                                            repository_attributes=True))
    result = registry_client.call(REGISTER, patient=stranger, **args)
    assert result.status == FAILURE
    (error,) = result.RegistryErrorList.RegistryError
    assert error.errorCode == "XDSUnknownPatientId"
    assert "255069999999934" in error.codeContext
    assert not registered(node, d.unique_id)


def test_provide_and_register_inline(node, repository_client):
    content = b"\r\nsent inline by zeep, CR/LF at both ends\r\n"
    d = Doc(content, "Document01")
    args = repository_client.arguments(f"{{{XDSB}}}ProvideAndRegisterDocumentSetRequest",
                                       provide_and_register([d], inline=True))
    assert [doc_["_value_1"] for doc_ in args["Document"]] == [content]
    result = repository_client.call(PROVIDE, **args)
    assert result.status == SUCCESS
    assert result.RegistryErrorList is None
    assert_addressed(repository_client, "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b")
    sent = repository_client.history.last_sent["envelope"]
    assert sent.find(f".//{{{XDSB}}}Document").text  # inline base64, no xop:Include
    # Stored byte-exact (read back with our own MTOM client, which keeps edge CR/LF).
    back = post(node.repository, ITI43, retrieve_request(REPOSITORY_ID, [d.unique_id]))
    assert back.documents() == {d.unique_id: content}
    assert registered(node, d.unique_id)


def test_retrieve_document_set(node, repository_client):
    # zeep strips CR/LF at the edges of a binary MTOM part: this document has none there.
    content = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\r\n1 0 obj <<>> endobj\x00\xff\r\n\r\ntrailer <<>>\n%%EOF"
    d = Doc(content, "Document01", mime_type="application/pdf")
    args = repository_client.arguments(f"{{{XDSB}}}ProvideAndRegisterDocumentSetRequest",
                                       provide_and_register([d], inline=True))
    assert repository_client.call(PROVIDE, **args).status == SUCCESS

    missing = "1.2.250.1.999.1.1.8121.1.404"
    result = repository_client.call(RETRIEVE, DocumentRequest=[
        {"RepositoryUniqueId": REPOSITORY_ID, "DocumentUniqueId": d.unique_id},
        {"RepositoryUniqueId": REPOSITORY_ID, "DocumentUniqueId": missing},
    ])
    assert_addressed(repository_client, "urn:ihe:iti:2007:RetrieveDocumentSet")
    assert result.RegistryResponse.status == "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
    (error,) = result.RegistryResponse.RegistryErrorList.RegistryError
    assert (error.errorCode, error.location) == ("XDSDocumentUniqueIdError", missing)
    (document,) = result.DocumentResponse
    assert document.RepositoryUniqueId == REPOSITORY_ID
    assert document.DocumentUniqueId == d.unique_id
    assert document.mimeType == "application/pdf"
    assert document.Document == content

