"""ITI-41 Provide and Register and ITI-43 Retrieve through real HTTP against a real `dmp serve`."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from lxml import etree
from xds_client import ITI41, ITI43, Reply, post, retrieve_request
from xds_factory import OTHER_PATIENT, REPOSITORY_ID, Doc, content_id, provide_and_register, submission_set

from registry import Problem
from soap_wsdl import ns
from soap_wsdl._mtom import OutgoingAttachment


def attachments(docs: list[Doc]) -> list[OutgoingAttachment]:
    return [OutgoingAttachment(content_id(d), d.mime_type, d.content) for d in docs]


def provide(node, docs: list[Doc], *, inline: bool = False, attach: list[Doc] | None = None, **kw) -> Reply:
    body = provide_and_register(docs, inline=inline, attach=attach, **kw)
    sent = [] if inline else attachments(docs if attach is None else attach)
    return post(node.repository, ITI41, body, attachments=sent, mtom=not inline)


def retrieve(node, uids: list[str], repo: str = REPOSITORY_ID, **kw) -> Reply:
    return post(node.repository, ITI43, retrieve_request(repo, uids, **kw))


def doc(content: bytes, name: str = "Document01", **kw) -> Doc:
    return Doc(content, name, **kw)


TRICKY = [
    b"Compte rendu de consultation du 12/03/2024 - patient fictif.\r\n",
    b"\r\n--MIMEBoundary_a1b2c3\r\nnot a boundary\r\n",
    b"\x00\x01\x02\r\r\n\n\xff" * 100,
    b"",
    b"\n",
    bytes(range(256)) * 40,
]


@pytest.mark.parametrize("content", TRICKY, ids=range(len(TRICKY)))
def test_provide_then_retrieve_is_byte_exact(node, content):
    d = doc(content, mime_type="application/octet-stream")
    reply = provide(node, [d])
    assert reply.http_status == 200
    assert reply.status == "Success", reply.errors
    assert reply.action == "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse"
    back = retrieve(node, [d.unique_id])
    assert back.status == "Success"
    assert back.action == "urn:ihe:iti:2007:RetrieveDocumentSetResponse"
    assert back.content_type.startswith("multipart/related")
    assert back.documents() == {d.unique_id: content}
    dr = back.body.find(f"{{{ns.XDSB}}}DocumentResponse")
    assert dr.findtext(f"{{{ns.XDSB}}}mimeType") == "application/octet-stream"
    assert dr.findtext(f"{{{ns.XDSB}}}RepositoryUniqueId") == REPOSITORY_ID


def test_relates_to_echoes_message_id(node):
    from xds_client import envelope

    d = doc(b"relates")
    mid = f"urn:uuid:{uuid.uuid4()}"
    env = envelope(ITI41, provide_and_register([d]), message_id=mid)
    reply = post(node.repository, ITI41, None, raw_envelope=env, attachments=attachments([d]))
    assert reply.status == "Success"
    assert reply.relates_to == mid


def test_two_documents_in_one_submission_and_partial_retrieve(node):
    docs = [doc(b"first", "Document01"), doc(b"second\r\n", "Document02")]
    assert provide(node, docs).status == "Success"
    missing = "1.2.250.1.999.1.1.8121.1.424242"
    back = retrieve(node, [docs[0].unique_id, missing, docs[1].unique_id], home="urn:oid:1.2.250.1.213.4.1")
    assert back.status == "PartialSuccess"
    assert back.documents() == {docs[0].unique_id: b"first", docs[1].unique_id: b"second\r\n"}
    assert back.error_codes == ["XDSDocumentUniqueIdError"]
    assert back.errors[0]["location"] == missing
    homes = {h.text for h in back.body.iter(f"{{{ns.XDSB}}}HomeCommunityId")}
    assert homes == {"urn:oid:1.2.250.1.213.4.1"}


def test_retrieve_unknown_repository_and_unknown_document(node):
    back = retrieve(node, ["1.2.3.4"], repo="1.2.250.1.999.9.9")
    assert back.status == "Failure"
    assert back.problems == [Problem.RETRIEVE_OTHER_REPOSITORY]
    assert back.body.find(f"{{{ns.XDSB}}}DocumentResponse") is None
    back = retrieve(node, ["1.2.3.4"])
    assert back.status == "Failure"
    assert back.error_codes == ["XDSDocumentUniqueIdError"]


def test_inline_base64_plain_soap_is_accepted(node):
    d = doc(b"inline \x00 bytes\r\n")
    reply = provide(node, [d], inline=True)
    assert reply.status == "Success", reply.errors
    assert reply.content_type.startswith("application/soap+xml")
    assert retrieve(node, [d.unique_id]).documents() == {d.unique_id: d.content}


def test_repository_fills_hash_and_size_when_absent(node):
    d = doc(b"no hash sent", send_hash=False)
    assert provide(node, [d]).status == "Success"
    stored = node.process and _registered(node, d.unique_id)
    assert stored == (hashlib.sha1(d.content).hexdigest(), len(d.content))


def _registered(node, uid: str) -> tuple[str, int]:
    from registry import Registry, Store

    store = Store(node.config.database_url)
    try:
        entry = Registry(store).documents_by_unique_id([uid])[uid]
        return entry.hash, entry.size
    finally:
        store.dispose()


def test_declared_hash_uppercase_is_accepted(node):
    d = doc(b"case", hash_override=hashlib.sha1(b"case").hexdigest().upper())
    assert provide(node, [d]).status == "Success"


def test_wrong_hash_and_size_are_refused_and_nothing_is_stored(node):
    d = doc(b"content", hash_override="0" * 40, size_override="999")
    reply = provide(node, [d])
    assert reply.status == "Failure"
    # A declared hash/size the attached document contradicts: ITI TF-2b 3.41.4.1.3.
    assert reply.problems == [Problem.DECLARED_HASH_MISMATCH, Problem.DECLARED_SIZE_MISMATCH]
    assert all(e["location"] == "Document01" for e in reply.errors)
    assert "0000000000000000000000000000000000000000" in reply.errors[0]["codeContext"]
    assert "999" in reply.errors[1]["codeContext"]
    assert retrieve(node, [d.unique_id]).error_codes == ["XDSDocumentUniqueIdError"]


def test_document_entry_without_document(node):
    d1, d2 = doc(b"a", "Document01"), doc(b"b", "Document02")
    reply = provide(node, [d1, d2], attach=[d1])
    assert reply.status == "Failure"
    assert reply.problems == [Problem.ENTRY_WITHOUT_DOCUMENT]
    assert reply.errors[0]["location"] == "Document02"
    assert retrieve(node, [d1.unique_id]).status == "Failure"


def test_document_without_document_entry(node):
    d1, stray = doc(b"a", "Document01"), doc(b"b", "Stray")
    reply = provide(node, [d1], attach=[d1, stray])
    assert reply.status == "Failure"
    assert reply.problems == [Problem.DOCUMENT_WITHOUT_ENTRY]
    assert reply.errors[0]["location"] == "Stray"


def test_xop_include_to_absent_part(node):
    d = doc(b"a")
    body = provide_and_register([d])
    reply = post(node.repository, ITI41, body, attachments=[])
    assert reply.status == "Failure"
    assert reply.problems == [Problem.DOCUMENT_PART_ABSENT]


def test_unknown_patient_is_refused_and_blob_removed(node):
    provide(node, [doc(b"stored before", "Document01")])
    before = _blob_files(node)
    assert before  # the blob store holds files, so an equality below can fail
    d = doc(b"who?", patient_id="255069999999934^^^&1.2.250.1.213.1.4.10&ISO")
    reply = provide(node, [d])
    assert reply.status == "Failure"
    # The consent checker answers first (the VIHF names that patient, who has no DMP): XDSUnknownPatientId.
    assert reply.problems == [Problem.PATIENT_WITHOUT_DMP]
    assert "255069999999934" in reply.errors[0]["codeContext"]
    assert retrieve(node, [d.unique_id]).status == "Failure"
    assert _blob_files(node) == before  # the refused document's blob and sidecar were removed
    assert not any(p.name.endswith(".tmp") for p in node.config.blob_dir.rglob("*"))


def _blob_files(node) -> set[str]:
    return {p.name for p in node.config.blob_dir.rglob("*") if p.is_file()}


def test_patient_id_mismatch_between_entry_and_submission_set(node):
    d = doc(b"x", patient_id=OTHER_PATIENT)
    from xds_factory import PATIENT

    reply = provide(node, [d], ss=submission_set(PATIENT))
    assert reply.status == "Failure"
    assert reply.problems == [Problem.PATIENT_ID_DIFFERS]
    assert reply.errors[0]["location"] == "Document01"


def test_duplicate_unique_id_in_message(node):
    d1 = doc(b"a", "Document01")
    d2 = doc(b"b", "Document02", unique_id=d1.unique_id)
    reply = provide(node, [d1, d2])
    assert reply.status == "Failure"
    assert Problem.DOCUMENT_UNIQUE_ID_TWICE in reply.problems


def test_submission_set_unique_id_already_registered(node):
    ss = submission_set()
    assert provide(node, [doc(b"one")], ss=ss).status == "Success"
    ss2 = submission_set(unique_id=ss.unique_id)
    reply = provide(node, [doc(b"two")], ss=ss2)
    assert reply.status == "Failure"
    assert reply.problems == [Problem.UNIQUE_ID_REGISTERED]


def test_foreign_repository_unique_id_is_replaced_by_this_repositorys(node):
    d = doc(b"sent with another repository's OID")
    body = provide_and_register([d])
    de = body.find(f".//{{{ns.RIM}}}ExtrinsicObject")
    slot = etree.SubElement(de, f"{{{ns.RIM}}}Slot", name="repositoryUniqueId")
    etree.SubElement(etree.SubElement(slot, f"{{{ns.RIM}}}ValueList"), f"{{{ns.RIM}}}Value").text = "1.2.3.4.5"
    de.insert(0, slot)  # slots come first in an ExtrinsicObject
    reply = post(node.repository, ITI41, body, attachments=attachments([d]))
    assert reply.status == "Success", reply.errors
    assert retrieve(node, [d.unique_id]).documents() == {d.unique_id: d.content}
    assert _registered_repository(node, d.unique_id) == REPOSITORY_ID


def _registered_repository(node, uid: str) -> str:
    from registry import Registry, Store

    store = Store(node.config.database_url)
    try:
        xml = Registry(store).documents_by_unique_id([uid])[uid]
        return xml.repository_unique_id
    finally:
        store.dispose()


def test_same_document_twice_then_other_content_reports_each_difference_once(node):
    d = doc(b"same bytes")
    assert provide(node, [d]).status == "Success"
    assert provide(node, [doc(b"same bytes", unique_id=d.unique_id)]).status == "Success"
    reply = provide(node, [doc(b"other bytes!", unique_id=d.unique_id)])
    assert reply.status == "Failure"
    # Two entries hold the uniqueId; each differing attribute is reported once (ITI TF-3 Table 4.2.4.1-2).
    assert reply.problems == [Problem.REGISTERED_WITH_OTHER_HASH, Problem.REGISTERED_WITH_OTHER_SIZE]


def test_same_document_unique_id_with_other_content(node):
    d = doc(b"original")
    assert provide(node, [d]).status == "Success"
    again = doc(b"changed", unique_id=d.unique_id)
    reply = provide(node, [again])
    assert reply.status == "Failure"
    assert reply.problems == [Problem.REGISTERED_WITH_OTHER_HASH, Problem.REGISTERED_WITH_OTHER_SIZE]
    # The stored original is untouched by the refused submission.
    assert retrieve(node, [d.unique_id]).documents() == {d.unique_id: b"original"}


def test_every_metadata_problem_is_reported_at_once(node):
    from registry import _model

    d = doc(b"bad metadata")
    de_patch = {}

    def broken(doc_, **kw):
        de = _orig(doc_, **kw)
        de.class_code = None
        de.creation_time = "2024-03-12"
        de.language_code = None
        de.mime_type = "textplain"
        de_patch["done"] = True
        return de

    import xds_factory

    _orig = xds_factory.document_entry
    xds_factory.document_entry = broken
    try:
        reply = provide(node, [d])
    finally:
        xds_factory.document_entry = _orig
    assert de_patch
    assert reply.status == "Failure"
    assert sorted(p.name for p in reply.problems) == sorted(
        p.name for p in (Problem.CODE_COUNT, Problem.VALUE_INVALID, Problem.SLOT_MISSING, Problem.MIME_TYPE_INVALID))
    contexts = " | ".join(e["codeContext"] for e in reply.errors)
    for attribute in ("classCode", "creationTime", "languageCode", "mimeType"):
        assert attribute in contexts
    assert {e["location"] for e in reply.errors} == {"Document01"}
    assert _model  # the factory builds through the typed model


GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"


def _query(node, query_id: str, params: list[tuple[str, list[str]]], return_type: str) -> set[str]:
    from xds_client import ITI18, adhoc_query

    reply = post(node.registry, ITI18, adhoc_query(query_id, params, return_type), mtom=False)
    assert reply.status.endswith("Success"), reply.errors
    tag = "ExtrinsicObject" if return_type == "LeafClass" else "ObjectRef"
    return {el.get("id") for el in reply.body.iter(f"{{{ns.RIM}}}{tag}")}


@pytest.mark.parametrize("return_type", ["LeafClass", "ObjectRef"])
def test_get_documents_by_unique_id_returns_every_entry_of_a_document_sent_twice(node, return_type):
    from xds_factory import PATIENT

    d = doc(b"sent twice, same uniqueId, hash and size")
    assert provide(node, [d]).status == "Success"
    assert provide(node, [doc(d.content, unique_id=d.unique_id)]).status == "Success"
    found = _query(node, FIND_DOCUMENTS, [("$XDSDocumentEntryPatientId", [f"'{PATIENT}'"]),
                                          ("$XDSDocumentEntryStatus",
                                           ["('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"])],
                   return_type)
    by_uid = _query(node, GET_DOCUMENTS, [("$XDSDocumentEntryUniqueId", [f"('{d.unique_id}')"])], return_type)
    assert len(by_uid) == 2
    assert by_uid <= found


def test_one_attachment_referenced_by_two_documents(node):
    """Issue 13, defect 6: the spool file was consumed by the first document and the second failed with
    XDSRepositoryError "could not store the documents". Both are stored, each retrievable."""
    a, b = doc(b"shared content\r\n", "Document01"), doc(b"shared content\r\n", "Document02")
    body = provide_and_register([a, b])
    includes = list(body.iter(f"{{{ns.XOP}}}Include"))
    assert len(includes) == 2
    includes[1].set("href", f"cid:{content_id(a)}")
    reply = post(node.repository, ITI41, body, attachments=attachments([a]))
    assert reply.status == "Success", reply.errors
    assert retrieve(node, [a.unique_id, b.unique_id]).documents() == {a.unique_id: a.content,
                                                                      b.unique_id: b.content}
    assert not list((node.config.blob_dir / ".spool").iterdir())


def _empty_dirs(node) -> set[str]:
    return {str(p) for p in node.config.blob_dir.rglob("*") if p.is_dir() and not any(p.iterdir())
            and p.name not in (".spool", ".pending")}


def test_a_refused_submission_leaves_no_empty_directory(node):
    """Issue 13, defect 7: the blob's shard directories survived the refusal."""
    before = _empty_dirs(node)
    docs = [doc(b"refused %d" % i, f"Document0{i}", patient_id="255069999999934^^^&1.2.250.1.213.1.4.10&ISO")
            for i in range(1, 4)]
    reply = provide(node, docs)
    assert reply.status == "Failure"
    assert "XDSUnknownPatientId" in reply.error_codes
    assert _empty_dirs(node) == before == set()


@pytest.mark.parametrize(("unique_id", "fragments"), [
    ("1.2.250.1.999.1.1.8121.1.6'", ["\"'\" (U+0027) at position 27", "OID part"]),
    ("1.2.250.1.999.1.1.8121.1.8^a\u2019b", ["'\u2019' (U+2019) at position 29", "printable ASCII"]),
    ("1.2.250.1.999.1.1.8121.1.9^a b", ["' ' (U+0020) at position 29"]),
])
def test_a_unique_id_with_a_bad_character_is_refused_naming_it(node, unique_id, fragments):
    """Issue 13, defect 7: a quote was reported as "characters outside printable ASCII"."""
    reply = provide(node, [doc(b"q", unique_id=unique_id)])
    assert reply.error_codes == ["XDSRegistryMetadataError"]
    for fragment in fragments:
        assert fragment in reply.errors[0]["codeContext"]


def test_a_quote_in_a_unique_id_extension_is_accepted(node):
    d = doc(b"quoted", unique_id="1.2.250.1.999.1.1.8121.1.5^a'b")
    assert provide(node, [d]).status == "Success"
    assert retrieve(node, [d.unique_id]).documents() == {d.unique_id: b"quoted"}


def test_one_lf_framed_part_referenced_by_two_documents_gains_one_lf(node):
    """LF-framed MIME (DRIMbox, docs/mtom.md §4) with a part referenced twice: both documents declare the hash
    of the content with its final LF, which is added once to the shared part (not once per reference)."""
    from xds_client import envelope, parse_reply

    a, b = doc(b"lf framed\n", "Document01"), doc(b"lf framed\n", "Document02")
    request = provide_and_register([a, b])
    list(request.iter(f"{{{ns.XOP}}}Include"))[1].set("href", f"cid:{content_id(a)}")
    body = (b"--lfb\nContent-ID: <root@t>\nContent-Type: application/xop+xml; type=\"application/soap+xml\"\n\n"
            + envelope(ITI41, request) + f"\n--lfb\nContent-ID: <{content_id(a)}>\n\n".encode()
            + b"lf framed" + b"\n--lfb--\n")
    import httpx
    r = httpx.post(node.repository, content=body, timeout=60, headers={
        "Content-Type": 'multipart/related; boundary="lfb"; type="application/xop+xml"; start="<root@t>"'})
    reply = parse_reply(r.status_code, r.headers.get("content-type", ""), r.content)
    assert reply.status == "Success", reply.errors or reply.fault_reason
    assert retrieve(node, [a.unique_id, b.unique_id]).documents() == {a.unique_id: b"lf framed\n",
                                                                      b.unique_id: b"lf framed\n"}
