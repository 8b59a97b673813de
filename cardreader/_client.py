"""The desktop XDS client: ITI-18 through zeep from the node's served WSDL, ITI-41 and ITI-43 through the
project's streaming MTOM codec (constant memory whatever the document size), each request carrying a freshly
signed VIHF for the patient and the purpose of use (docs/vihf.md §1, §3)."""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import requests
import zeep
from lxml import etree
from zeep.transports import Transport

from cardreader._errors import CardError, CardProblem
from cardreader._professional import Professional
from cardreader._submission import DocumentDescription, digest, provide_and_register_request
from pki import PatientIns, PurposeOfUse
from registry import DocumentEntry, Kind, document_entry_from_rim, read_registry_object_list
from soap_wsdl import (
    Action,
    DmpAction,
    MimeError,
    MtomDecoder,
    OutgoingAttachment,
    XmlError,
    mtom_content_type,
    mtom_stream,
    new_boundary,
    ns,
    parse_xml,
    request_envelope,
)

FIND_DOCUMENTS: Final = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
GET_DOCUMENTS: Final = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
APPROVED: Final = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
SUCCESS: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
DMP_SERVICES: Final = "urn:dmp-xds:services"      # the node's DMP services (docs/consent.md)
Progress = Callable[[int], None]
"""Called with the number of document bytes just sent."""


@dataclass(frozen=True)
class DossierStatus:
    """TD0.2's answer: the DMP's ``AUTORISATION`` (NON_EXISTE, VALIDE, INTERDIT, EXPIRE) and ``STATUT_MT``."""

    exists: bool
    closed: bool
    authorization: str
    treating_doctor: bool


@dataclass(frozen=True)
class Submitted:
    unique_id: str
    entry: DocumentEntry


class XdsClient:
    """The node at ``url`` (``http(s)://host:port``, the ``/xds/registry`` and ``/xds/repository`` endpoints
    below it) for ``professional``. ``transport_url`` is where HTTP actually goes when it differs (a local TLS
    hop holding the card key, :class:`CardTlsTunnel`); ``ca_file`` and ``client_cert`` are the TLS settings
    when this client itself speaks TLS: ``ca_file`` to verify the node, ``client_cert`` (certificate and key
    files of a software credential) to authenticate."""

    def __init__(self, url: str, professional: Professional, *, transport_url: str | None = None,
                 ca_file: str | None = None, client_cert: tuple[str, str] | None = None,
                 timeout: float = 300) -> None:
        self.url = url.rstrip("/")
        self.professional = professional
        self._base = (transport_url or url).rstrip("/")
        self._ca_file, self._client_cert = ca_file, client_cert
        context = ssl.create_default_context(cafile=ca_file)
        if client_cert:
            context.load_cert_chain(*client_cert)
        self._http = httpx.Client(verify=context, timeout=timeout)
        self._zeep: Any = None

    def close(self) -> None:
        self._http.close()
        if self._zeep is not None:
            self._zeep.transport.session.close()

    def __enter__(self) -> XdsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- ITI-18 ----------------------------------------------------------------------------------------

    def find_documents(self, patient: PatientIns, *, purpose: PurposeOfUse = PurposeOfUse.NORMAL,
                       statuses: Iterable[str] = (APPROVED,)) -> list[DocumentEntry]:
        """FindDocuments (ITI TF-2a §3.18.4.1.2.3.7.1) for ``patient``: the DocumentEntries, LeafClass."""
        status_list = "(" + ",".join(f"'{s}'" for s in statuses) + ")"
        return self._stored_query(FIND_DOCUMENTS, [("$XDSDocumentEntryPatientId", f"'{patient.cx}'"),
                                                   ("$XDSDocumentEntryStatus", status_list)], patient, purpose)

    def get_document(self, unique_id: str, *, patient: PatientIns | None = None,
                     purpose: PurposeOfUse = PurposeOfUse.NORMAL) -> DocumentEntry | None:
        """GetDocuments by uniqueId (ITI TF-2a §3.18.4.1.2.3.7.5)."""
        found = self._stored_query(GET_DOCUMENTS, [("$XDSDocumentEntryUniqueId", f"('{unique_id}')")],
                                   patient, purpose)
        return found[0] if found else None

    def _stored_query(self, query_id: str, slots: list[tuple[str, str]], patient: PatientIns | None,
                      purpose: PurposeOfUse) -> list[DocumentEntry]:
        client = self._zeep_client()
        header = _security(self.professional.vihf(patient, purpose))
        try:
            with client.settings(raw_response=True):
                reply = client.service.DocumentRegistry_RegistryStoredQuery(
                    ResponseOption={"returnType": "LeafClass", "returnComposedObjects": True},
                    AdhocQuery={"id": query_id,
                                "Slot": [{"name": n, "ValueList": {"Value": [v]}} for n, v in slots]},
                    _soapheaders=[header])
        except OSError as exc:
            raise _unreachable(self.url, exc) from None
        body = _body(reply.content)
        _raise_for_registry_errors(body)
        objects = read_registry_object_list(body.find(f"{{{ns.RIM}}}RegistryObjectList")).objects
        return [document_entry_from_rim(o) for o in objects if o.kind is Kind.EXTRINSIC_OBJECT]

    def _zeep_client(self) -> Any:
        if self._zeep is None:
            session = requests.Session()
            session.verify = self._ca_file or True
            # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's CA file: an explicit one wins.
            session.trust_env = self._ca_file is None
            session.cert = self._client_cert
            # Behind a local TLS hop the node writes https://<hop>/... into its WSDL (it serves TLS and sees
            # the hop's Host): those addresses, and the node's own, are reached through the hop.
            hop = urllib.parse.urlsplit(self._base)
            aliases = {self.url, f"https://{hop.netloc}"} - {self._base}
            try:
                self._zeep = zeep.Client(  # type: ignore[no-untyped-call]
                    f"{self._base}/xds/registry?wsdl", transport=_HopTransport(session, self._base, aliases))
            except OSError as exc:
                raise _unreachable(self.url, exc) from None
        return self._zeep

    # --- ITI-41 ----------------------------------------------------------------------------------------

    def submit(self, path: Path, patient: PatientIns, description: DocumentDescription, *,
               purpose: PurposeOfUse = PurposeOfUse.NORMAL, progress: Progress | None = None) -> Submitted:
        """Provide and Register one document (ITI TF-2b §3.41), streamed from ``path`` as an MTOM part."""
        file_digest = digest(path)
        content_id = f"{uuid.uuid4()}@dmp-xds.cps"
        body, entry = provide_and_register_request(self.professional, patient, description, file_digest,
                                                   content_id)
        envelope = request_envelope(Action.ITI41, body, to=f"{self.url}/xds/repository",
                                    assertion=self.professional.vihf(patient, purpose))
        boundary, root = new_boundary(), f"root.{uuid.uuid4().hex}@dmp-xds.cps"
        parts = mtom_stream(envelope, [OutgoingAttachment(content_id, description.mime_type, path)], boundary, root)
        reply = self._post("repository", Action.ITI41, _counting(parts, envelope, progress),
                           mtom_content_type(boundary, root, Action.ITI41))
        _raise_for_registry_errors(_body(_root_part(reply)))
        return Submitted(entry.unique_id, entry)

    # --- ITI-43 ----------------------------------------------------------------------------------------

    def retrieve(self, unique_id: str, repository_unique_id: str, output: Path, *,
                 patient: PatientIns | None = None, purpose: PurposeOfUse = PurposeOfUse.NORMAL) -> Path:
        """Retrieve one document (ITI TF-2b §3.43) into ``output``: the MTOM answer is decoded as it arrives,
        the document spooled beside ``output`` and renamed onto it once complete (never a partial file)."""
        request = etree.Element(f"{{{ns.XDSB}}}RetrieveDocumentSetRequest", nsmap={"xdsb": ns.XDSB})
        doc_request = etree.SubElement(request, f"{{{ns.XDSB}}}DocumentRequest")
        etree.SubElement(doc_request, f"{{{ns.XDSB}}}RepositoryUniqueId").text = repository_unique_id
        etree.SubElement(doc_request, f"{{{ns.XDSB}}}DocumentUniqueId").text = unique_id
        envelope = request_envelope(Action.ITI43, request, to=f"{self.url}/xds/repository",
                                    assertion=self.professional.vihf(patient, purpose))
        boundary, root = new_boundary(), f"root.{uuid.uuid4().hex}@dmp-xds.cps"
        spool = Path(tempfile.mkdtemp(prefix=".cps-", dir=output.resolve().parent))
        try:
            try:
                with self._http.stream("POST", f"{self._base}/xds/repository",
                                       content=mtom_stream(envelope, [], boundary, root),
                                       headers={"Content-Type": mtom_content_type(boundary, root, Action.ITI43)}
                                       ) as r:
                    ctype = r.headers.get("content-type", "")
                    if not ctype.lower().startswith("multipart/related"):
                        r.read()
                        _raise_for_registry_errors(_body(r.content))
                        raise CardError(CardProblem.SERVER_REFUSED, "the node answered without the document")
                    decoder = MtomDecoder(ctype, spool)
                    try:
                        for chunk in r.iter_bytes():
                            decoder.feed(chunk)
                        message = decoder.close()
                    except BaseException:
                        decoder.discard()
                        raise
            except httpx.HTTPError as exc:
                raise _unreachable(self.url, exc) from None
            except MimeError as exc:
                raise CardError(CardProblem.SERVER_REFUSED, f"the node's MTOM answer is malformed: {exc}") from None
            body = _body(message.root)
            _raise_for_registry_errors(body)
            include = body.find(f"{{{ns.XDSB}}}DocumentResponse/{{{ns.XDSB}}}Document/{{{ns.XOP}}}Include")
            attachment = message.resolve(include.get("href", "")) if include is not None else None
            if attachment is None:
                raise CardError(CardProblem.SERVER_REFUSED, f"the node returned no document {unique_id}")
            os.replace(attachment.path, output)
            return output
        finally:
            for leftover in spool.iterdir():
                leftover.unlink()
            spool.rmdir()

    # --- the DMP services (TD0.2, TD0.3; docs/consent.md) -------------------------------------------------

    def existence_test(self, patient: PatientIns) -> DossierStatus:
        """TD0.2: does the patient have a DMP, is this professional authorised on it, the médecin traitant."""
        answer = self._dmp_service(DmpAction.TD02, "ExistenceTestRequest", patient)
        return DossierStatus(
            exists=_child(answer, "exists") == "true", closed=_child(answer, "closed") == "true",
            authorization=_child(answer, "authorization"), treating_doctor=_child(answer, "treatingDoctor") == "true")

    def declare_consent(self, patient: PatientIns, *, remove: bool = False) -> str:
        """TD0.3: declare that the patient consented to this professional's access (R19), or remove one's own
        authorisation; returns the authorisation state after the call (``VALIDE`` / ``NON_EXISTE``)."""
        answer = self._dmp_service(DmpAction.TD03, "SetAuthorizationRequest", patient,
                                   action="SUPPRESSION" if remove else "AJOUT")
        return _child(answer, "authorization")

    def _dmp_service(self, soap_action: DmpAction, request: str, patient: PatientIns, **children: str
                     ) -> etree._Element:
        body = etree.Element(f"{{{DMP_SERVICES}}}{request}", nsmap={"dmp": DMP_SERVICES})
        etree.SubElement(body, f"{{{DMP_SERVICES}}}patientId").text = patient.cx
        for tag, value in children.items():
            etree.SubElement(body, f"{{{DMP_SERVICES}}}{tag}").text = value
        envelope = request_envelope(soap_action, body, to=f"{self.url}/dmp/services",
                                    assertion=self.professional.vihf(patient, PurposeOfUse.NORMAL))
        try:
            reply = self._http.post(f"{self._base}/dmp/services", content=envelope, headers={
                "Content-Type": f'application/soap+xml; charset=UTF-8; action="{soap_action}"'})
        except httpx.HTTPError as exc:
            raise _unreachable(self.url, exc) from None
        answer = _body(reply.content)
        if answer.get("status") != "DMPOk":
            raise CardError(CardProblem.SERVER_REFUSED, f"the node answered {etree.QName(answer).localname} "
                            f"with status {answer.get('status')!r}")
        return answer

    # --- plumbing --------------------------------------------------------------------------------------

    def _post(self, endpoint: str, action: str, content: Iterable[bytes], content_type: str) -> httpx.Response:
        try:
            return self._http.post(f"{self._base}/xds/{endpoint}", content=content,
                                   headers={"Content-Type": content_type})
        except httpx.HTTPError as exc:
            raise _unreachable(self.url, exc) from None


class _HopTransport(Transport):
    """zeep's transport, sending every URL under one of ``aliases`` to ``base`` instead."""

    def __init__(self, session: requests.Session, base: str, aliases: set[str]) -> None:
        super().__init__(session=session)  # type: ignore[no-untyped-call]
        self._hop_base, self._aliases = base, aliases

    def _hop(self, url: str) -> str:
        for alias in self._aliases:
            if url.startswith(alias):
                return self._hop_base + url[len(alias):]
        return url

    def load(self, url: str) -> bytes:
        return super().load(self._hop(url))  # type: ignore[no-any-return,no-untyped-call]

    def post(self, address: str, message: Any, headers: Any) -> Any:
        return super().post(self._hop(address), message, headers)  # type: ignore[no-untyped-call]


def _counting(parts: Iterator[bytes], envelope: bytes, progress: Progress | None) -> Iterator[bytes]:
    """The MTOM body, reporting the bytes sent beyond the envelope to ``progress``."""
    skip = len(envelope)
    for part in parts:
        yield part
        if progress is not None:
            counted = max(0, len(part) - skip)
            skip = max(0, skip - len(part))
            if counted:
                progress(counted)


def _security(assertion: etree._Element) -> etree._Element:
    security = etree.Element(f"{{{ns.WSSE}}}Security", nsmap={"wsse": ns.WSSE})
    security.append(assertion)
    return security


def _root_part(reply: httpx.Response) -> bytes:
    """The SOAP envelope of an answer, plain or MTOM (the node answers an MTOM request in MTOM)."""
    ctype = reply.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/related"):
        return reply.content
    spool = Path(tempfile.mkdtemp(prefix="cps-"))
    try:
        decoder = MtomDecoder(ctype, spool)
        decoder.feed(reply.content)
        message = decoder.close()
        for attachment in message.attachments.values():
            attachment.path.unlink()
        return message.root
    except MimeError as exc:
        raise CardError(CardProblem.SERVER_REFUSED, f"the node's MTOM answer is malformed: {exc}") from None
    finally:
        shutil.rmtree(spool, ignore_errors=True)


def _body(content: bytes) -> etree._Element:
    try:
        envelope = parse_xml(content)
    except XmlError as exc:
        raise CardError(CardProblem.SERVER_REFUSED, f"the node's answer is not XML: {exc}") from None
    body = envelope.find(f"{{{ns.SOAP12}}}Body")
    if body is None or len(body) == 0:
        raise CardError(CardProblem.SERVER_REFUSED, "the node's answer has no SOAP body")
    first = body[0]
    if first.tag == f"{{{ns.SOAP12}}}Fault":
        reason = first.findtext(f"{{{ns.SOAP12}}}Reason/{{{ns.SOAP12}}}Text") or "SOAP fault"
        raise CardError(CardProblem.SERVER_REFUSED, f"the node refused the request: {reason}")
    return first


def _raise_for_registry_errors(body: etree._Element) -> None:
    response = body if body.tag in (f"{{{ns.RS}}}RegistryResponse", f"{{{ns.QUERY}}}AdhocQueryResponse") \
        else body.find(f"{{{ns.RS}}}RegistryResponse")
    if response is None or response.get("status") == SUCCESS:
        return
    errors = [f"{e.get('errorCode')}: {e.get('codeContext')}" for e in response.iter(f"{{{ns.RS}}}RegistryError")]
    raise CardError(CardProblem.SERVER_REFUSED, "the node refused the request: " + ("; ".join(errors) or
                                                                                    str(response.get("status"))))


def _child(answer: etree._Element, local: str) -> str:
    return (answer.findtext(f"{{{DMP_SERVICES}}}{local}") or "").strip()


def _unreachable(url: str, exc: Exception) -> CardError:
    text = str(exc)
    tls = isinstance(exc, ssl.SSLError) or any(w in text for w in ("SSL", "certificate", "handshake"))
    return CardError(CardProblem.TLS if tls else CardProblem.SERVER_UNREACHABLE,
                     f"the node at {url} could not be reached: {text}")
