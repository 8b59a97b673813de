"""Document lifecycle on registration (ITI TF-3 §4.1.6-4.1.8): RPLC / XFRM_RPLC deprecate the replaced
document and the addenda/transforms that depend on it, and Folders that held it receive the replacement."""

from __future__ import annotations

import pytest
import xds_factory as f
from xds_client import ITI18, ITI42, adhoc_query, post

from registry import _model
from registry._vocabulary import AssociationType
from soap_wsdl import ns

RIM = ns.RIM
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
GET_DOCS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
GET_FOLDER_AND_CONTENTS = "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7"
GET_RELATED = "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6"


def assoc(name, atype, source, target, **kw):
    return _model.association_to_rim(_model.Association(entry_uuid=name, association_type=atype.value,
                                                        source=source, target=target, **kw))


def register(node, docs, extra=()):
    body = f.submit_objects_request(docs, repository_attributes=True, extra=list(extra))
    reply = post(node.registry, ITI42, body, mtom=False)
    assert reply.status == "Success", reply.errors
    return reply


def entry(node, doc):
    q = adhoc_query(GET_DOCS, [("$XDSDocumentEntryUniqueId", [f"('{doc.unique_id}')"])])
    (eo,) = post(node.registry, ITI18, q, mtom=False).body.iter(f"{{{RIM}}}ExtrinsicObject")
    return eo


def with_folder(doc):
    fd = _model.folder_to_rim(_model.Folder(
        entry_uuid="Folder01", title=_model.Text("Grossesse"), patient_id=f.PATIENT, unique_id=f.new_oid(),
        codes=[_model.Code("GROSSESSE", "1.2.250.1.999.9", "Grossesse")]))
    return [fd,
            assoc("a1", AssociationType.HAS_MEMBER, "SubmissionSet01", "Folder01"),
            assoc("a2", AssociationType.HAS_MEMBER, "Folder01", doc.symbolic_id),
            assoc("a3", AssociationType.HAS_MEMBER, "SubmissionSet01", "a2")]


def folder_contents(node, folder_id):
    q = adhoc_query(GET_FOLDER_AND_CONTENTS, [("$XDSFolderEntryUUID", [f"'{folder_id}'"])])
    reply = post(node.registry, ITI18, q, mtom=False)
    assert reply.status == "Success", reply.errors
    return {eo.get("id") for eo in reply.body.iter(f"{{{RIM}}}ExtrinsicObject")}


@pytest.mark.parametrize("replacement", [AssociationType.RPLC, AssociationType.XFRM_RPLC])
def test_replacement_deprecates_dependents_and_updates_folders(node, replacement):
    original = f.Doc(b"v1", "Original")
    register(node, [original], with_folder(original))
    orig = entry(node, original)
    folder_q = adhoc_query("urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578",
                           [("$XDSDocumentEntryEntryUUID", [f"'{orig.get('id')}'"])])
    (folder_el,) = post(node.registry, ITI18, folder_q, mtom=False).body.iter(f"{{{RIM}}}RegistryPackage")
    folder_id = folder_el.get("id")

    addendum = f.Doc(b"addendum", "Addendum")
    register(node, [addendum], [assoc("ap", AssociationType.APND, "Addendum", orig.get("id"))])
    addendum_of_addendum = f.Doc(b"addendum 2", "Addendum2")
    register(node, [addendum_of_addendum],
             [assoc("ap2", AssociationType.APND, "Addendum2", entry(node, addendum).get("id"))])

    new = f.Doc(b"v2", "Replacement")
    register(node, [new], [assoc("r", replacement, "Replacement", orig.get("id"))])

    assert entry(node, original).get("status") == DEPRECATED
    assert entry(node, addendum).get("status") == DEPRECATED
    assert entry(node, addendum_of_addendum).get("status") == DEPRECATED
    assert entry(node, new).get("status") == APPROVED
    # The folder now holds the replacement too (the replaced entry stays a member, Deprecated).
    assert folder_contents(node, folder_id) == {orig.get("id"), entry(node, new).get("id")}

    related = post(node.registry, ITI18, adhoc_query(GET_RELATED, [
        ("$XDSDocumentEntryEntryUUID", [f"'{entry(node, new).get('id')}'"]),
        ("$AssociationTypes", [f"('{replacement.value}')"])]), mtom=False)
    assert {eo.get("id") for eo in related.body.iter(f"{{{RIM}}}ExtrinsicObject")} == \
        {orig.get("id"), entry(node, new).get("id")}


def test_appending_keeps_the_original_approved(node):
    original = f.Doc(b"base", "Base")
    register(node, [original])
    orig = entry(node, original)
    register(node, [f.Doc(b"more", "More")], [assoc("ap", AssociationType.APND, "More", orig.get("id"))])
    assert entry(node, original).get("status") == APPROVED


def test_replacing_twice_is_refused(node):
    original = f.Doc(b"once", "Once")
    register(node, [original])
    orig = entry(node, original)
    register(node, [f.Doc(b"v2", "V2")], [assoc("r", AssociationType.RPLC, "V2", orig.get("id"))])
    body = f.submit_objects_request([f.Doc(b"v3", "V3")], repository_attributes=True,
                                    extra=[assoc("r", AssociationType.RPLC, "V3", orig.get("id"))])
    reply = post(node.registry, ITI42, body, mtom=False)
    assert reply.error_codes == ["XDSRegistryDeprecatedDocumentError"]
