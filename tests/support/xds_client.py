"""A small SOAP 1.2 / MTOM client for the end-to-end tests and benchmarks (real HTTP, our codec)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
from lxml import etree
from vihf_client import alice_claims, fresh_vihf, patient_ins

from pki import INS_NIR_OIDS, nir_problem
from registry import Problem
from soap_wsdl import (
    Action,
    MtomDecoder,
    MtomMessage,
    OutgoingAttachment,
    mtom_content_type,
    mtom_stream,
    new_boundary,
    ns,
    parse_xml,
    request_envelope,
)

ITI41, ITI42, ITI43 = Action.ITI41, Action.ITI42, Action.ITI43
ITI18, ITI51, ITI57 = Action.ITI18, Action.ITI51, Action.ITI57
RS_STATUS = {
    "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success": "Success",
    "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure": "Failure",
    "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess": "PartialSuccess",
}


class _Default:
    """The ``vihf`` default: a fresh valid VIHF of the default test professional for each envelope."""

    def __repr__(self) -> str:
        return "FRESH_VIHF"


FRESH_VIHF: Any = _Default()


def envelope(action: str, body: etree._Element, *, message_id: str | None = None, to: str = "",
             vihf: etree._Element | None = FRESH_VIHF) -> bytes:
    """A SOAP 1.2 request. ``vihf``: the saml2:Assertion to send in wsse:Security (default: a fresh one signed
    by the default test professional, new assertion ID each time); None sends no wsse:Security at all."""
    if vihf is FRESH_VIHF:
        patient = request_patient(body)
        vihf = fresh_vihf(claims=alice_claims(patient=patient_ins(patient))) if patient else fresh_vihf()
    return request_envelope(action, body, to=to or None, message_id=message_id, reply_to_anonymous=False,
                            assertion=vihf)


_PATIENT_SCHEMES = ("urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446",   # XDSSubmissionSet.patientId
                    "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427",   # XDSDocumentEntry.patientId
                    "urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a")   # XDSFolder.patientId
_PATIENT_PARAMS = ("$XDSDocumentEntryPatientId", "$XDSSubmissionSetPatientId", "$XDSFolderPatientId", "$patientId")


def request_patient(body: etree._Element) -> str | None:
    """The patient a request is about, as desktop software names it in the VIHF's resource-id (docs/vihf.md §7
    step 9): the submission's patientId, or the stored query's patient parameter; None when the body does not
    say (ITI-43 by uniqueId, queries by id: the default patient then)."""
    for scheme in _PATIENT_SCHEMES:
        for ext in body.iter(f"{{{ns.RIM}}}ExternalIdentifier"):
            value = ext.get("value") or ""
            if ext.get("identificationScheme") == scheme and _is_ins(value):
                return value
    for slot in body.iter(f"{{{ns.RIM}}}Slot"):
        if slot.get("name") in _PATIENT_PARAMS:
            value = slot.findtext(f"{{{ns.RIM}}}ValueList/{{{ns.RIM}}}Value") or ""
            value = value.strip().strip("()").strip().strip("'")
            if _is_ins(value):
                return value
    return None


def _is_ins(value: str) -> bool:
    nir, sep, rest = value.partition("^^^&")
    return bool(sep) and nir_problem(nir) is None and rest.split("&")[0] in INS_NIR_OIDS


@dataclass
class Reply:
    http_status: int
    envelope: etree._Element
    mime: MtomMessage | None
    content_type: str

    @property
    def body(self) -> etree._Element:
        return self.envelope.find(f"{{{ns.SOAP12}}}Body")[0]

    @property
    def action(self) -> str:
        return self.envelope.findtext(f"{{{ns.SOAP12}}}Header/{{{ns.WSA}}}Action") or ""

    @property
    def relates_to(self) -> str:
        return self.envelope.findtext(f"{{{ns.SOAP12}}}Header/{{{ns.WSA}}}RelatesTo") or ""

    @property
    def registry_response(self) -> etree._Element:
        b = self.body
        if b.tag in (f"{{{ns.RS}}}RegistryResponse", f"{{{ns.QUERY}}}AdhocQueryResponse"):
            return b
        return b.find(f"{{{ns.RS}}}RegistryResponse")

    @property
    def status(self) -> str:
        return RS_STATUS[self.registry_response.get("status")]

    @property
    def errors(self) -> list[dict[str, str]]:
        return [dict(e.attrib) for e in self.registry_response.iter(f"{{{ns.RS}}}RegistryError")]

    @property
    def error_codes(self) -> list[str]:
        return [e["errorCode"] for e in self.errors]

    @property
    def problems(self) -> list[Problem | None]:
        """The catalogue member of each error (``registry.Problem``), recognised from its code and codeContext."""
        return [Problem.recognise(e["errorCode"], e.get("codeContext", "")) for e in self.errors]

    @property
    def fault_reason(self) -> str:
        return self.body.findtext(f"{{{ns.SOAP12}}}Reason/{{{ns.SOAP12}}}Text") or ""

    @property
    def fault_code(self) -> str:
        return self.body.findtext(f"{{{ns.SOAP12}}}Code/{{{ns.SOAP12}}}Value") or ""

    @property
    def fault_subcode(self) -> str:
        """The subcode as ``{namespace}local``."""
        value = self.body.find(f"{{{ns.SOAP12}}}Code/{{{ns.SOAP12}}}Subcode/{{{ns.SOAP12}}}Value")
        if value is None or not value.text:
            return ""
        prefix, _, local = value.text.partition(":")
        return f"{{{value.nsmap[prefix]}}}{local}"

    def documents(self) -> dict[str, bytes]:
        """ITI-43: DocumentUniqueId -> bytes."""
        out = {}
        for dr in self.body.iterfind(f"{{{ns.XDSB}}}DocumentResponse"):
            uid = dr.findtext(f"{{{ns.XDSB}}}DocumentUniqueId")
            inc = dr.find(f"{{{ns.XDSB}}}Document/{{{ns.XOP}}}Include")
            assert self.mime is not None
            assert inc is not None
            att = self.mime.resolve(inc.get("href"))
            assert att is not None
            out[uid] = att.path.read_bytes()
        return out


def post(url: str, action: str, body: etree._Element, *, attachments: Iterable[OutgoingAttachment] = (),
         mtom: bool = True, client: httpx.Client | None = None, spool: Path | None = None,
         raw_envelope: bytes | None = None, timeout: float = 120,
         vihf: etree._Element | None = FRESH_VIHF) -> Reply:
    """One request. ``vihf`` as in :func:`envelope` (ignored with ``raw_envelope``)."""
    env = raw_envelope if raw_envelope is not None else envelope(action, body, vihf=vihf)
    if mtom:
        boundary, root = new_boundary(), f"root.{uuid.uuid4().hex}@test"
        content: Iterable[bytes] | bytes = mtom_stream(env, list(attachments), boundary, root)
        ctype = mtom_content_type(boundary, root, action)
    else:
        content, ctype = env, f'application/soap+xml; charset=UTF-8; action="{action}"'
    c = client or httpx.Client(timeout=timeout)
    try:
        r = c.post(url, content=content, headers={"Content-Type": ctype})
        return parse_reply(r.status_code, r.headers.get("content-type", ""), r.content, spool)
    finally:
        if client is None:
            c.close()


@lru_cache(maxsize=1)
def _reply_spool() -> Path:
    """One spool directory per test process for the attachments of MTOM answers, removed at exit (one per
    answer left thousands of empty directories in /tmp)."""
    directory = Path(tempfile.mkdtemp(prefix="dmp-test-replies-"))
    atexit.register(shutil.rmtree, directory, True)
    return directory


def parse_reply(status: int, ctype: str, content: bytes, spool: Path | None = None) -> Reply:
    mime = None
    if ctype.lower().startswith("multipart/related"):
        dec = MtomDecoder(ctype, spool or _reply_spool())
        dec.feed(content)
        mime = dec.close()
        root = mime.root
    else:
        root = content
    return Reply(status, parse_xml(root), mime, ctype)


def retrieve_request(repository_unique_id: str, unique_ids: list[str], home: str | None = None) -> etree._Element:
    x = ns.XDSB
    req = etree.Element(f"{{{x}}}RetrieveDocumentSetRequest", nsmap={"xdsb": x})
    for uid in unique_ids:
        dr = etree.SubElement(req, f"{{{x}}}DocumentRequest")
        if home:
            etree.SubElement(dr, f"{{{x}}}HomeCommunityId").text = home
        etree.SubElement(dr, f"{{{x}}}RepositoryUniqueId").text = repository_unique_id
        etree.SubElement(dr, f"{{{x}}}DocumentUniqueId").text = uid
    return req


def adhoc_query(query_id: str, params: list[tuple[str, list[str]]], return_type: str = "LeafClass",
                home: str | None = None) -> etree._Element:
    """``query:AdhocQueryRequest``; each (name, values) pair is one Slot (repeat a name for AND groups)."""
    req = etree.Element(f"{{{ns.QUERY}}}AdhocQueryRequest", nsmap={"query": ns.QUERY, "rim": ns.RIM})
    etree.SubElement(req, f"{{{ns.QUERY}}}ResponseOption", returnType=return_type, returnComposedObjects="true")
    q = etree.SubElement(req, f"{{{ns.RIM}}}AdhocQuery", id=query_id)
    if home:
        q.set("home", home)
    for name, values in params:
        slot = etree.SubElement(q, f"{{{ns.RIM}}}Slot", name=name)
        vl = etree.SubElement(slot, f"{{{ns.RIM}}}ValueList")
        for v in values:
            etree.SubElement(vl, f"{{{ns.RIM}}}Value").text = v
    return req
