"""ITI-18 Registry Stored Query and ITI-51 Multi-Patient Stored Query through real HTTP against a real
`dmp serve` (ITI TF-2a 3.18): data registered once per node with ITI-42, then every stored query, its parameters
(OR lists, AND of OR-groups, LIKE, time ranges with mixed precision, statuses, objectTypes), its response
(LeafClass / ObjectRef) and its error codes. Results are compared as exact sets of registry ids, resolved
from the registry's tables (not through the queries under test)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
import zeep
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from nodes import RunningNode, make_node, start_node
from sqlalchemy import select
from vihf_client import alice_claims, fresh_vihf, patient_ins, security_header
from xds_client import FRESH_VIHF, ITI18, ITI42, ITI51, Reply, adhoc_query, parse_reply, post
from xds_factory import AUTHOR, INSTITUTION, OTHER_PATIENT, PATIENT, REPOSITORY_ID, Doc, document_entry, submission_set

from registry import Problem, Registry, Store, _model, _rim, _rim_write
from registry._query_args import MAX_AND_GROUPS
from registry._query_params import QueryError, parse_values
from registry._schema import association, registry_object
from registry._vocabulary import AssociationType
from soap_wsdl import ns, response_envelope

# --- query ids and fixed values (ITI TF-2a 3.18.4.1.2.3.7, ITI TF-3 4.2.5) ----------------------------------------

FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
FIND_BY_REFERENCE_ID = "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492"
FIND_SUBMISSION_SETS = "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9"
FIND_FOLDERS = "urn:uuid:958f3006-baad-4929-a4de-ff1114824431"
GET_ALL = "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
GET_FOLDERS = "urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4"
GET_ASSOCIATIONS = "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155"
GET_DOCUMENTS_AND_ASSOCIATIONS = "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a"
GET_SUBMISSION_SETS = "urn:uuid:51224314-5390-4169-9b91-b1980040715a"
GET_SUBMISSION_SET_AND_CONTENTS = "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83"
GET_FOLDER_AND_CONTENTS = "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7"
GET_FOLDERS_FOR_DOCUMENT = "urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578"
GET_RELATED_DOCUMENTS = "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6"
FIND_DOCUMENTS_MPQ = "urn:uuid:3d1bdb10-39a2-11de-89c2-2f44d94eaa9f"
FIND_FOLDERS_MPQ = "urn:uuid:50d3f5ac-39a2-11de-a1ca-b366239e58df"

APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
STABLE = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
ON_DEMAND = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"
HAS_MEMBER = AssociationType.HAS_MEMBER.value
RPLC = AssociationType.RPLC.value
APND = AssociationType.APND.value
DE_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
UNKNOWN_PATIENT = "255069999999934^^^&1.2.250.1.213.1.4.10&ISO"
RIM = ns.RIM

C = _model.Code
CLASS_SCHEME = "1.2.250.1.213.1.1.4.1"
MASK_SCHEME = "1.2.250.1.213.1.1.4.13"  # TRE_A07-StatutVisibiliteDocument (ANS Terminologies de santé)
NORMAL = C("N", "2.16.840.1.113883.5.25", "Normal")
RESTRICTED = C("R", "2.16.840.1.113883.5.25", "Restreint")
MASQUE_PS = C("MASQUE_PS", MASK_SCHEME, "Masqué aux professionnels de santé")
INVISIBLE_PATIENT = C("INVISIBLE_PATIENT", MASK_SCHEME, "Non visible par le patient")
EVENT_1 = C("E1", "1.2.250.1.999.7", "Evènement 1")
EVENT_2 = C("E2", "1.2.250.1.999.7", "Evènement 2")
FOLDER_1 = C("FC1", "1.2.250.1.999.9", "Suivi")
FOLDER_2 = C("FC2", "1.2.250.1.999.9", "Diabète")
PDF_FORMAT = C("urn:ihe:iti:xds-sd:pdf:2008", "1.3.6.1.4.1.19376.1.2.3", "PDF")
ACCESSION = "ACC1^^^&1.2.250.1.999.1&ISO^urn:ihe:iti:xds:2013:accession"
ORDER = "ORD9^^^&1.2.250.1.999.2&ISO^urn:ihe:iti:xds:2013:order"
DURAND = "^DURAND^Paul"
MARTINEZ = "802222222222^MARTINEZ^Luc^^^^^^&1.2.250.1.71.4.2.1&ISO"
DUPONT = "803333333333^DUPONT^Anne^^^^^^&1.2.250.1.71.4.2.1&ISO"


def code(c: _model.Code) -> str:
    return f"{c.code}^^{c.scheme}"


def q(value: str) -> str:
    """One quoted value, inner quotes doubled (ITI TF-2a 3.18.4.1.2.3.1)."""
    return "'" + value.replace("'", "''") + "'"


def ql(*values: str) -> str:
    """An OR list ``('a','b')``."""
    return "(" + ",".join(q(v) for v in values) + ")"


# --- the registered data ----------------------------------------------------------------------------------------


@dataclass
class Submission:
    """One ITI-42 submission; objects get symbolic ids (the labels) that the registry replaces by UUIDs."""

    label: str
    ss: _model.SubmissionSet
    docs: list[tuple[str, Doc]] = field(default_factory=list)
    folders: list[tuple[str, _model.Folder]] = field(default_factory=list)
    folder_members: list[tuple[str, str]] = field(default_factory=list)  # (folder label, document label)
    relations: list[tuple[str, str, str]] = field(default_factory=list)  # (type, new doc label, existing label)


def _doc(label: str, patient: str = PATIENT, **meta: Any) -> tuple[str, Doc]:
    return label, Doc(f"content of {label}".encode(), label, patient_id=patient, meta=meta)


def _ss(patient: str = PATIENT, **changes: Any) -> _model.SubmissionSet:
    return dataclasses.replace(submission_set(patient), **changes)


def _folder(patient: str, *codes: _model.Code) -> _model.Folder:
    return _model.Folder(entry_uuid="", title=_model.Text("Dossier"), patient_id=patient,
                         unique_id=f"1.2.250.1.999.1.1.8121.5.{uuid.uuid4().int % 10**12}", codes=list(codes))


def submissions() -> list[Submission]:
    """Patient P (PATIENT): d1..d7, folders F1 (FC1) and F2 (FC1, FC2); patient O: o1 in folder FO (FC1).

    | doc | class | conf | events | creation | service start / stop | author | other |
    | d1 | 10 | N | - | 20240312093000 | 20240312090000 / 20240312093000 | MARTIN | in F1 |
    | d2 | 11 | N, MASQUE_PS | E1 | 2023 | 202306 / 20230615 | DURAND | type 34133-9, ref ACC1, in F2 |
    | d3 | 31 | N, INVISIBLE_PATIENT | - | 20230101 | none | MARTINEZ | pdf, 18748-4, SA02, AMBULATOIRE, ACC1+ORD9 |
    | d4 | 10 | R, MASQUE_PS | E1, E2 | 20230615120000 | 20230615 / 20230616 | DUPONT | |
    | d5 | 10 | N | - | 20240101 | default | MARTIN | on-demand, no hash/size |
    | d6 | 10 | N | - | 20220101 | 20220101 / 20220102 | MARTIN | replaced by d7 (Deprecated) |
    | d7 | 10 | N | - | 20220102 | 20220101 / 20220102 | MARTIN | RPLC -> d6 |
    """
    return [
        Submission("SS1", _ss(), docs=[_doc("d1")], folders=[("F1", _folder(PATIENT, FOLDER_1))],
                   folder_members=[("F1", "d1")]),
        Submission("SS2", _ss(source_id="1.2.250.1.999.1.1.8122", submission_time="20230701",
                              authors=[_model.Author(person=DURAND)],
                              content_type_code=C("07", "1.2.250.1.213.2.2", "Consultations soins externes")),
                   docs=[
                       _doc("d2", class_code=C("11", CLASS_SCHEME, "Synthèse"),
                            type_code=C("34133-9", "2.16.840.1.113883.6.1", "Summary"),
                            confidentiality_codes=[NORMAL, MASQUE_PS], event_codes=[EVENT_1],
                            creation_time="2023", service_start_time="202306", service_stop_time="20230615",
                            authors=[_model.Author(person=DURAND)], reference_ids=[ACCESSION]),
                       _doc("d3", class_code=C("31", CLASS_SCHEME, "Imagerie médicale"),
                            type_code=C("18748-4", "2.16.840.1.113883.6.1", "CR d'imagerie médicale"),
                            confidentiality_codes=[NORMAL, INVISIBLE_PATIENT], creation_time="20230101",
                            service_start_time=None, service_stop_time=None, format_code=PDF_FORMAT,
                            healthcare_facility_type_code=C("SA02", "1.2.250.1.71.4.2.4", "Privé"),
                            practice_setting_code=C("AMBULATOIRE", "1.2.250.1.213.1.1.4.9", "Ambulatoire"),
                            authors=[_model.Author(person=MARTINEZ, institutions=[INSTITUTION])],
                            reference_ids=[ACCESSION, ORDER]),
                       _doc("d4", confidentiality_codes=[RESTRICTED, MASQUE_PS], event_codes=[EVENT_1, EVENT_2],
                            creation_time="20230615120000", service_start_time="20230615",
                            service_stop_time="20230616", authors=[_model.Author(person=DUPONT)]),
                   ],
                   folders=[("F2", _folder(PATIENT, FOLDER_1, FOLDER_2))], folder_members=[("F2", "d2")]),
        Submission("SS3", _ss(submission_time="20240101120000"),
                   docs=[_doc("d5", object_type=ON_DEMAND, hash=None, size=None, creation_time="20240101")]),
        Submission("SS4", _ss(submission_time="20220101"),
                   docs=[_doc("d6", creation_time="20220101", service_start_time="20220101",
                              service_stop_time="20220102")]),
        Submission("SS5", _ss(submission_time="20220102"),
                   docs=[_doc("d7", creation_time="20220102", service_start_time="20220101",
                              service_stop_time="20220102")],
                   relations=[(RPLC, "d7", "d6")]),
        Submission("SSO", _ss(OTHER_PATIENT), docs=[_doc("o1", OTHER_PATIENT)],
                   folders=[("FO", _folder(OTHER_PATIENT, FOLDER_1))], folder_members=[("FO", "o1")]),
    ]


@dataclass
class World:
    """Labels -> registry ids (entryUUIDs) and uniqueIds of everything registered."""

    node: RunningNode
    ids: dict[str, str] = field(default_factory=dict)
    unique_ids: dict[str, str] = field(default_factory=dict)

    def __call__(self, *labels: str) -> set[str]:
        return {self.ids[label] for label in labels}

    def label(self, object_id: str) -> str:
        return next(k for k, v in self.ids.items() if v == object_id)


def _member(source: str, target: str, status: str | None = None) -> _rim.RimObject:
    return _model.association_to_rim(_model.Association(
        entry_uuid=f"hm-{source}-{target}", association_type=HAS_MEMBER, source=source, target=target,
        submission_set_status=status))


def submission_request(sub: Submission, world: World) -> etree._Element:
    ss = dataclasses.replace(sub.ss, entry_uuid=sub.label)
    objects: list[_rim.RimObject] = [_model.submission_set_to_rim(ss)]
    for label, d in sub.docs:
        objects.append(_model.document_entry_to_rim(document_entry(d, repository_attributes=True)))
        objects.append(_member(sub.label, label, "Original"))
    for label, fd in sub.folders:
        objects.append(_model.folder_to_rim(dataclasses.replace(fd, entry_uuid=label)))
        objects.append(_member(sub.label, label))
    for fd_label, de_label in sub.folder_members:
        objects.append(_member(fd_label, de_label))
        objects.append(_member(sub.label, f"hm-{fd_label}-{de_label}"))
    for atype, new, old in sub.relations:
        objects.append(_model.association_to_rim(_model.Association(
            entry_uuid=f"rel-{new}-{old}", association_type=atype, source=new, target=world.ids[old])))
    sor = etree.Element(f"{{{ns.LCM}}}SubmitObjectsRequest", nsmap={"lcm": ns.LCM, "rim": ns.RIM})
    rol = etree.SubElement(sor, f"{{{RIM}}}RegistryObjectList")
    for o in objects:
        _rim_write.write_object(o, rol)
    return sor


def _resolve(world: World, sub: Submission) -> None:
    """Read the ids the registry gave to the submission's objects from its tables."""
    store = Store(world.node.config.database_url)
    ro, a = registry_object.c, association.c
    try:
        with store.read() as conn:
            uids = {sub.label: sub.ss.unique_id, **{lb: d.unique_id for lb, d in sub.docs},
                    **{lb: fd.unique_id for lb, fd in sub.folders}}
            for label, uid in uids.items():
                (world.ids[label],) = conn.execute(select(ro.id).where(ro.unique_id == uid)).scalars().all()
                world.unique_ids[label] = uid

            def link(atype: str, source: str, target: str) -> str:
                (found,) = conn.execute(select(a.id).where(a.association_type == atype, a.source == source,
                                                           a.target == target)).scalars().all()
                return str(found)

            ss = world.ids[sub.label]
            for label, _ in [*sub.docs, *sub.folders]:
                world.ids[f"{sub.label}>{label}"] = link(HAS_MEMBER, ss, world.ids[label])
            for fd, de in sub.folder_members:
                inner = world.ids[f"{fd}>{de}"] = link(HAS_MEMBER, world.ids[fd], world.ids[de])
                world.ids[f"{sub.label}>{fd}>{de}"] = link(HAS_MEMBER, ss, inner)
            for atype, new, old in sub.relations:
                world.ids[f"{new}~{old}"] = link(atype, world.ids[new], world.ids[old])
    finally:
        store.dispose()


@pytest.fixture(scope="module")
def w(node: RunningNode) -> World:
    world = World(node)
    for sub in submissions():
        reply = post(node.registry, ITI42, submission_request(sub, world), mtom=False)
        assert reply.status == "Success", (sub.label, reply.errors)
        _resolve(world, sub)
    return world


# --- querying -------------------------------------------------------------------------------------------------


def query(node: RunningNode, query_id: str, params: list[tuple[str, list[str]]], return_type: str = "LeafClass",
          action: str = ITI18, patient: str | None = None) -> Reply:
    """One stored query; the VIHF names ``patient`` (default: the query's patient parameter, else PATIENT)."""
    vihf = fresh_vihf(claims=alice_claims(patient=patient_ins(patient))) if patient else FRESH_VIHF
    reply = post(node.registry, action, adhoc_query(query_id, params, return_type), mtom=False, vihf=vihf)
    assert reply.http_status == 200
    assert reply.action == action + "Response"
    return reply


def objects(reply: Reply) -> list[etree._Element]:
    assert reply.status == "Success", reply.errors
    assert reply.errors == []
    assert [etree.QName(c).localname for c in reply.body] == ["RegistryObjectList"]
    return list(reply.body.find(f"{{{RIM}}}RegistryObjectList"))


def found(reply: Reply) -> set[str]:
    """Ids returned (each at most once)."""
    ids = [o.get("id") for o in objects(reply)]
    assert len(ids) == len(set(ids)), ids
    return set(ids)


def by_kind(reply: Reply) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {"SS": set(), "FD": set(), "DE": set(), "AS": set()}
    for o in objects(reply):
        local = etree.QName(o).localname
        if local == "RegistryPackage":
            nodes = {c.get("classificationNode") for c in o.iterfind(f"{{{RIM}}}Classification")}
            kind = "SS" if "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd" in nodes else "FD"
            assert kind == "SS" or "urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2" in nodes
        else:
            kind = {"ExtrinsicObject": "DE", "Association": "AS"}[local]
        out[kind].add(o.get("id"))
    return out


def find_docs(w: World, *params: tuple[str, list[str]], patient: str = PATIENT,
              statuses: tuple[str, ...] = (APPROVED,)) -> set[str]:
    reply = query(w.node, FIND_DOCUMENTS, [("$XDSDocumentEntryPatientId", [q(patient)]),
                                           ("$XDSDocumentEntryStatus", [ql(*statuses)]), *params])
    return found(reply)


def failure(reply: Reply, error_code: str) -> dict[str, str]:
    """Failure with exactly one error of ``error_code``; RegistryErrorList before an empty RegistryObjectList."""
    assert reply.status == "Failure"
    assert reply.error_codes == [error_code], reply.errors
    children = list(reply.body)
    assert [etree.QName(c).localname for c in children] == ["RegistryErrorList", "RegistryObjectList"]
    assert len(children[1]) == 0
    error = reply.errors[0]
    assert reply.problems[0] is not None, error  # a member of the catalogue (registry.Problem)
    assert error["severity"] == "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
    return error


def slot(el: etree._Element, name: str) -> list[str]:
    s = el.find(f"{{{RIM}}}Slot[@name='{name}']")
    return [] if s is None else [v.text or "" for v in s.iterfind(f"{{{RIM}}}ValueList/{{{RIM}}}Value")]


# --- FindDocuments ---------------------------------------------------------------------------------------------

ALL_APPROVED_STABLE = ("d1", "d2", "d3", "d4", "d7")


@pytest.mark.parametrize("status", [APPROVED, "Approved"])
def test_find_documents_by_patient_and_status(w, status):
    assert find_docs(w, statuses=(status,)) == w(*ALL_APPROVED_STABLE)


def test_find_documents_leaf_class_objects(w):
    reply = query(w.node, FIND_DOCUMENTS, [("$XDSDocumentEntryPatientId", [q(PATIENT)]),
                                           ("$XDSDocumentEntryStatus", [ql(APPROVED)])])
    eos = objects(reply)
    assert {etree.QName(e).localname for e in eos} == {"ExtrinsicObject"}
    assert {e.get("id") for e in eos} == w(*ALL_APPROVED_STABLE)
    for eo in eos:
        label = w.label(eo.get("id"))
        assert eo.get("status") == APPROVED
        assert eo.get("lid") == eo.get("id")
        assert eo.get("objectType") == STABLE
        assert eo.find(f"{{{RIM}}}VersionInfo").get("versionName") == "1"
        assert slot(eo, "hash") == [Doc(f"content of {label}".encode(), label).sha1]
        assert slot(eo, "size") == [str(len(f"content of {label}"))]
        assert slot(eo, "repositoryUniqueId") == [REPOSITORY_ID]
        ext = {e.get("identificationScheme"): e for e in eo.iterfind(f"{{{RIM}}}ExternalIdentifier")}
        assert ext[DE_PATIENT_ID].get("value") == PATIENT
        assert ext[DE_UNIQUE_ID].get("value") == w.unique_ids[label]
        nested = [*ext.values(), *eo.iterfind(f"{{{RIM}}}Classification")]
        assert len(nested) >= 8
        for el in nested:
            assert el.get("id").startswith("urn:uuid:")
            uuid.UUID(el.get("id").removeprefix("urn:uuid:"))  # symbolic nested ids were replaced
            assert (el.get("registryObject") or el.get("classifiedObject")) == eo.get("id")
    # Stored at their submitted precision, indexed padded (d2 creationTime '2023').
    d2 = next(e for e in eos if e.get("id") == w.ids["d2"])
    assert slot(d2, "creationTime") == ["2023"]


def test_find_documents_object_ref(w):
    params = [("$XDSDocumentEntryPatientId", [q(PATIENT)]), ("$XDSDocumentEntryStatus", [ql(APPROVED)])]
    leaf = [o.get("id") for o in objects(query(w.node, FIND_DOCUMENTS, params))]
    refs = objects(query(w.node, FIND_DOCUMENTS, params, return_type="ObjectRef"))
    assert {etree.QName(r).localname for r in refs} == {"ObjectRef"}
    assert [r.get("id") for r in refs] == leaf
    assert all(len(r) == 0 for r in refs)


def test_find_documents_class_code_or(w):
    c11, c31 = f"11^^{CLASS_SCHEME}", f"31^^{CLASS_SCHEME}"
    assert find_docs(w, ("$XDSDocumentEntryClassCode", [ql(c11, c31)])) == w("d2", "d3")
    assert find_docs(w, ("$XDSDocumentEntryClassCode", [ql(c11), ql(c31)])) == w("d2", "d3")
    assert find_docs(w, ("$XDSDocumentEntryClassCode", [ql(f"10^^{CLASS_SCHEME}")])) == w("d1", "d4", "d7")
    # The code alone does not match: the scheme must too.
    assert find_docs(w, ("$XDSDocumentEntryClassCode", [ql("11^^1.2.250.1.999")])) == set()


def test_find_documents_confidentiality_and_or(w):
    masks = ql(code(MASQUE_PS), code(INVISIBLE_PATIENT))
    p = "$XDSDocumentEntryConfidentialityCode"
    assert find_docs(w, (p, [masks])) == w("d2", "d3", "d4")
    assert find_docs(w, (p, [ql(code(NORMAL))]), (p, [masks])) == w("d2", "d3")  # N AND (MASQUE_PS OR INV.)
    assert find_docs(w, (p, [ql(code(MASQUE_PS))]), (p, [ql(code(INVISIBLE_PATIENT))])) == set()
    assert find_docs(w, (p, [ql(code(NORMAL))])) == w("d1", "d2", "d3", "d7")


def test_find_documents_event_code_list(w):
    p = "$XDSDocumentEntryEventCodeList"
    assert find_docs(w, (p, [ql(code(EVENT_1))])) == w("d2", "d4")
    assert find_docs(w, (p, [ql(code(EVENT_1))]), (p, [ql(code(EVENT_2))])) == w("d4")
    assert find_docs(w, (p, [ql(code(EVENT_2), "E9^^1.2.250.1.999.7")])) == w("d4")


@pytest.mark.parametrize(("param", "value", "expected"), [
    ("TypeCode", "34133-9^^2.16.840.1.113883.6.1", ("d2",)),
    ("TypeCode", "11488-4^^2.16.840.1.113883.6.1", ("d1", "d4", "d7")),
    ("TypeCode", "18748-4^^2.16.840.1.113883.6.1", ("d3",)),
    ("PracticeSettingCode", "AMBULATOIRE^^1.2.250.1.213.1.1.4.9", ("d3",)),
    ("HealthcareFacilityTypeCode", "SA02^^1.2.250.1.71.4.2.4", ("d3",)),
    ("HealthcareFacilityTypeCode", "SA01^^1.2.250.1.71.4.2.4", ("d1", "d2", "d4", "d7")),
    ("FormatCode", code(PDF_FORMAT), ("d3",)),
])
def test_find_documents_other_codes(w, param, value, expected):
    assert find_docs(w, (f"$XDSDocumentEntry{param}", [ql(value)])) == w(*expected)


@pytest.mark.parametrize(("patterns", "expected"), [
    (["%MARTIN^%"], ("d1", "d7")),
    (["%MARTIN%"], ("d1", "d3", "d7")),
    (["80123456789_^%"], ("d1", "d7")),
    (["8012345678_^%"], ()),  # '_' is exactly one character
    (["%^DURAND^%"], ("d2",)),
    (["%DUPONT%", "%DURAND%"], ("d2", "d4")),  # several values: OR
    ([AUTHOR], ("d1", "d7")),  # no wildcard: the whole value
])
def test_find_documents_author_person(w, patterns, expected):
    assert find_docs(w, ("$XDSDocumentEntryAuthorPerson", [ql(*patterns)])) == w(*expected)


@pytest.mark.parametrize(("bounds", "expected"), [
    ({"CreationTimeFrom": "20230101"}, ("d1", "d2", "d3", "d4")),  # stored '2023' = 20230101000000, inclusive
    ({"CreationTimeTo": "20230101"}, ("d7",)),  # To is exclusive
    ({"CreationTimeFrom": "2023", "CreationTimeTo": "2024"}, ("d2", "d3", "d4")),
    ({"CreationTimeFrom": "202301010000", "CreationTimeTo": "20230102"}, ("d2", "d3")),
    ({"CreationTimeFrom": "20230615120000"}, ("d1", "d4")),
    ({"CreationTimeFrom": "20230615120001"}, ("d1",)),
    ({"CreationTimeTo": "20240312093000"}, ("d2", "d3", "d4", "d7")),
    ({"CreationTimeTo": "20240312093001"}, ALL_APPROVED_STABLE),
    # serviceStartTime: d3 has none and never matches a bound
    ({"ServiceStartTimeFrom": "2023", "ServiceStartTimeTo": "2024"}, ("d2", "d4")),
    ({"ServiceStartTimeFrom": "20230615"}, ("d1", "d4")),  # d4 stored '20230615', inclusive
    ({"ServiceStartTimeTo": "20230615"}, ("d2", "d7")),
    ({"ServiceStartTimeFrom": "1900"}, ("d1", "d2", "d4", "d7")),
    ({"ServiceStopTimeFrom": "20230615", "ServiceStopTimeTo": "2023061600"}, ("d2",)),
    ({"ServiceStopTimeTo": "2100"}, ("d1", "d2", "d4", "d7")),
    ({"CreationTimeFrom": "2023", "ServiceStopTimeTo": "20230616"}, ("d2",)),
])
def test_find_documents_time_ranges(w, bounds, expected):
    params = [(f"$XDSDocumentEntry{k}", [v]) for k, v in bounds.items()]
    assert find_docs(w, *params) == w(*expected)


def test_find_documents_quoted_timestamp_is_accepted(w):
    assert find_docs(w, ("$XDSDocumentEntryCreationTimeFrom", ["'2023'"]),
                     ("$XDSDocumentEntryCreationTimeTo", ["'2024'"])) == w("d2", "d3", "d4")


def test_find_documents_entry_type(w):
    t = "$XDSDocumentEntryType"
    assert find_docs(w, (t, [ql(ON_DEMAND)])) == w("d5")
    assert find_docs(w, (t, [ql(STABLE)])) == w(*ALL_APPROVED_STABLE)
    assert find_docs(w, (t, [ql(STABLE, ON_DEMAND)])) == w(*ALL_APPROVED_STABLE, "d5")
    (d5,) = objects(query(w.node, FIND_DOCUMENTS, [("$XDSDocumentEntryPatientId", [q(PATIENT)]),
                                                    ("$XDSDocumentEntryStatus", [ql(APPROVED)]),
                                                    (t, [ql(ON_DEMAND)])]))
    assert d5.get("objectType") == ON_DEMAND
    assert slot(d5, "hash") == slot(d5, "size") == []  # registered without them (allowed for on-demand)


def test_find_documents_other_patient(w):
    assert find_docs(w, patient=OTHER_PATIENT) == w("o1")
    assert find_docs(w, ("$XDSDocumentEntryClassCode", [ql(f"10^^{CLASS_SCHEME}")]), patient=OTHER_PATIENT
                     ) == w("o1")


def test_find_documents_french_patient_id_with_cx5(w):
    # DMP clients add CX.5 (NH for the INS): same patient (docs/conformance.md §3 rule 3).
    assert find_docs(w, patient=PATIENT + "^NH") == w(*ALL_APPROVED_STABLE)


def test_find_documents_unknown_patient_is_unknown_patient_id(w):
    # A patient without a DMP on the node (the VIHF names it too): XDSUnknownPatientId, no objects (docs/consent.md
    # decision order, step 1). Before the consent checker this was an empty Success.
    reply = query(w.node, FIND_DOCUMENTS, [("$XDSDocumentEntryPatientId", [q(UNKNOWN_PATIENT)]),
                                           ("$XDSDocumentEntryStatus", [ql(APPROVED)])])
    assert reply.status == "Failure"
    assert reply.error_codes == ["XDSUnknownPatientId"]
    assert reply.body.find(f"{{{ns.RIM}}}RegistryObjectList") is not None
    assert len(reply.body.find(f"{{{ns.RIM}}}RegistryObjectList")) == 0


def test_find_documents_deprecated_after_replacement(w):
    assert find_docs(w, statuses=(DEPRECATED,)) == w("d6")
    assert find_docs(w, statuses=("Deprecated",)) == w("d6")
    assert find_docs(w, statuses=(APPROVED, DEPRECATED)) == w(*ALL_APPROVED_STABLE, "d6")
    (d6,) = objects(query(w.node, FIND_DOCUMENTS, [("$XDSDocumentEntryPatientId", [q(PATIENT)]),
                                                    ("$XDSDocumentEntryStatus", [ql(DEPRECATED)])]))
    assert d6.get("status") == DEPRECATED
    assert find_docs(w, statuses=("urn:oasis:names:tc:ebxml-regrep:StatusType:Submitted",)) == set()


def _noise(n: int, scheme: str = "1.2.250.1.999.77") -> list[str]:
    """``n`` coded values no document carries."""
    return [f"X{i}^^{scheme}" for i in range(n)]


@pytest.mark.parametrize(("param", "value", "expected"), [
    ("ClassCode", f"11^^{CLASS_SCHEME}", ("d2",)),
    ("TypeCode", "34133-9^^2.16.840.1.113883.6.1", ("d2",)),
    ("EventCodeList", "E2^^1.2.250.1.999.7", ("d4",)),
    ("ConfidentialityCode", "INVISIBLE_PATIENT^^1.2.250.1.213.1.1.4.13", ("d3",)),
])
def test_find_documents_thousand_values_in_one_parameter(w, param, value, expected):
    """Defect (issue 13.1): ~1,000 values in one coded parameter exceeded SQLite's expression depth and the
    answer was "the registry database is unavailable"."""
    values = [*_noise(600), value, *_noise(600, "1.2.250.1.999.78")]
    assert find_docs(w, (f"$XDSDocumentEntry{param}", [ql(*values)])) == w(*expected)


def test_find_documents_thousand_author_patterns(w):
    patterns = [f"%NOBODY{i}^%" for i in range(1200)] + ["%^DURAND^%"]
    assert find_docs(w, ("$XDSDocumentEntryAuthorPerson", [ql(*patterns)])) == w("d2")


def test_find_documents_many_and_groups(w):
    """2,000 confidentialityCode slots: the same OR-group repeated is one condition; up to MAX_AND_GROUPS
    different groups are answered; beyond, a parameter error (issue 13.1: never a false outage)."""
    p = "$XDSDocumentEntryConfidentialityCode"
    same = [(p, [ql(code(MASQUE_PS))])] * 2000
    assert find_docs(w, *same) == w("d2", "d4")
    groups = [(p, [ql(code(NORMAL), f"Z{i}^^1.2.250.1.999.79")]) for i in range(MAX_AND_GROUPS)]
    assert find_docs(w, *groups) == w("d1", "d2", "d3", "d7")
    groups = [(p, [ql(code(NORMAL), f"Z{i}^^1.2.250.1.999.79")]) for i in range(2000)]
    reply = query(w.node, FIND_DOCUMENTS, [("$XDSDocumentEntryPatientId", [q(PATIENT)]),
                                           ("$XDSDocumentEntryStatus", [ql(APPROVED)]), *groups])
    error = failure(reply, "XDSStoredQueryParamNumber")
    assert p in error["codeContext"]
    assert str(MAX_AND_GROUPS) in error["codeContext"]


def test_get_documents_thousand_unique_ids(w):
    d1 = w("d1").pop()
    uids = [f"1.2.250.1.999.5.{i}" for i in range(1500)] + [w.unique_ids["d1"]]
    reply = query(w.node, GET_DOCUMENTS, [("$XDSDocumentEntryUniqueId", [ql(*uids)])])
    assert found(reply) == {d1}


def test_find_documents_past_the_value_limit_is_a_parameter_error(w):
    reply = query(w.node, FIND_DOCUMENTS, [("$XDSDocumentEntryPatientId", [q(PATIENT)]),
                                           ("$XDSDocumentEntryStatus", [ql(APPROVED)]),
                                           ("$XDSDocumentEntryClassCode", [ql(*_noise(10_001))])])
    error = failure(reply, "XDSStoredQueryParamNumber")
    assert "$XDSDocumentEntryClassCode" in error["codeContext"]
    assert "10000" in error["codeContext"]


def test_find_documents_by_reference_id(w):
    p = "$XDSDocumentEntryReferenceIdList"
    params = [("$XDSDocumentEntryPatientId", [q(PATIENT)]), ("$XDSDocumentEntryStatus", [ql(APPROVED)])]
    assert found(query(w.node, FIND_BY_REFERENCE_ID, [*params, (p, [ql(ACCESSION)])])) == w("d2", "d3")
    assert found(query(w.node, FIND_BY_REFERENCE_ID, [*params, (p, [ql(ACCESSION)]), (p, [ql(ORDER)])])) == w("d3")
    assert found(query(w.node, FIND_BY_REFERENCE_ID, [*params, (p, [ql(ORDER, "X^^^&1.2&ISO")])])) == w("d3")
    assert found(query(w.node, FIND_BY_REFERENCE_ID, [*params, (p, [ql(ACCESSION)]),
                                                      ("$XDSDocumentEntryClassCode", [ql(f"31^^{CLASS_SCHEME}")])])
                 ) == w("d3")
    failure(query(w.node, FIND_BY_REFERENCE_ID, params), "XDSStoredQueryMissingParam")


# --- FindSubmissionSets / FindFolders -----------------------------------------------------------------------------


def find_ss(w: World, *params: tuple[str, list[str]], patient: str = PATIENT) -> set[str]:
    return found(query(w.node, FIND_SUBMISSION_SETS, [("$XDSSubmissionSetPatientId", [q(patient)]),
                                                      ("$XDSSubmissionSetStatus", [ql(APPROVED)]), *params]))


def test_find_submission_sets(w):
    assert find_ss(w) == w("SS1", "SS2", "SS3", "SS4", "SS5")
    assert find_ss(w, patient=OTHER_PATIENT) == w("SSO")
    assert find_ss(w, ("$XDSSubmissionSetSourceId", [ql("1.2.250.1.999.1.1.8122")])) == w("SS2")
    assert find_ss(w, ("$XDSSubmissionSetSourceId", [ql("1.2.250.1.999.1.1.8122", "1.2.250.1.999.1.1.8121")])
                   ) == w("SS1", "SS2", "SS3", "SS4", "SS5")
    assert find_ss(w, ("$XDSSubmissionSetSubmissionTimeFrom", ["2023"]),
                   ("$XDSSubmissionSetSubmissionTimeTo", ["2024"])) == w("SS2")
    assert find_ss(w, ("$XDSSubmissionSetSubmissionTimeFrom", ["20240101"])) == w("SS1", "SS3")
    assert find_ss(w, ("$XDSSubmissionSetSubmissionTimeFrom", ["20240101120000"])) == w("SS1", "SS3")
    assert find_ss(w, ("$XDSSubmissionSetSubmissionTimeFrom", ["20240101120001"])) == w("SS1")
    assert find_ss(w, ("$XDSSubmissionSetSubmissionTimeTo", ["20220102"])) == w("SS4")
    assert find_ss(w, ("$XDSSubmissionSetAuthorPerson", [q("%DURAND%")])) == w("SS2")
    assert find_ss(w, ("$XDSSubmissionSetAuthorPerson", [q("%MARTIN^Cl_ire%")])) == w("SS1", "SS3", "SS4", "SS5")
    assert find_ss(w, ("$XDSSubmissionSetContentType", [ql("07^^1.2.250.1.213.2.2")])) == w("SS2")
    assert find_ss(w, ("$XDSSubmissionSetContentType", [ql("04^^1.2.250.1.213.2.2")])) == w(
        "SS1", "SS3", "SS4", "SS5")
    failure(query(w.node, FIND_SUBMISSION_SETS, [("$XDSSubmissionSetPatientId", [q(UNKNOWN_PATIENT)]),
                                                 ("$XDSSubmissionSetStatus", [ql(APPROVED)])]), "XDSUnknownPatientId")
    assert by_kind(query(w.node, FIND_SUBMISSION_SETS, [
        ("$XDSSubmissionSetPatientId", [q(PATIENT)]), ("$XDSSubmissionSetStatus", [ql(APPROVED)])]))["SS"] == w(
        "SS1", "SS2", "SS3", "SS4", "SS5")


def find_folders(w: World, *params: tuple[str, list[str]], patient: str = PATIENT) -> Reply:
    return query(w.node, FIND_FOLDERS, [("$XDSFolderPatientId", [q(patient)]),
                                        ("$XDSFolderStatus", [ql(APPROVED)]), *params])


def test_find_folders_code_list(w):
    p = "$XDSFolderCodeList"
    assert by_kind(find_folders(w))["FD"] == found(find_folders(w)) == w("F1", "F2")
    assert found(find_folders(w, patient=OTHER_PATIENT)) == w("FO")
    assert found(find_folders(w, (p, [ql(code(FOLDER_1))]))) == w("F1", "F2")
    assert found(find_folders(w, (p, [ql(code(FOLDER_1))]), (p, [ql(code(FOLDER_2))]))) == w("F2")
    assert found(find_folders(w, (p, [ql(code(FOLDER_2), "FC3^^1.2.250.1.999.9")]))) == w("F2")
    assert found(find_folders(w, (p, [ql("FC1^^1.2.250.1.999.8")]))) == set()


def _dtm(value: str, seconds: int) -> str:
    return (datetime.strptime(value, "%Y%m%d%H%M%S") + timedelta(seconds=seconds)).strftime("%Y%m%d%H%M%S")


def test_find_folders_last_update_time(w):
    folders = objects(find_folders(w))
    lut = {f.get("id"): slot(f, "lastUpdateTime")[0] for f in folders}
    assert set(lut) == w("F1", "F2")
    for value in lut.values():
        assert len(value) == 14, value
    t1 = lut[w.ids["F1"]]

    def between(lo: str | None, hi: str | None) -> set[str]:
        params = [*([("$XDSFolderLastUpdateTimeFrom", [lo])] if lo else []),
                  *([("$XDSFolderLastUpdateTimeTo", [hi])] if hi else [])]
        return found(find_folders(w, *params))

    assert between(t1, _dtm(t1, 1)) == {f for f, t in lut.items() if t == t1}
    assert between(None, t1) == {f for f, t in lut.items() if t < t1}  # To exclusive
    assert w.ids["F1"] not in between(None, t1)
    assert between(t1[:8], None) == w("F1", "F2")  # day precision
    assert between("1900", "2000") == set()
    assert between(_dtm(max(lut.values()), 1), None) == set()


# --- GetAll ---------------------------------------------------------------------------------------------------------


def get_all(w: World, de: tuple[str, ...] = (APPROVED,), ss: tuple[str, ...] = (APPROVED,),
            fd: tuple[str, ...] = (APPROVED,), *extra: tuple[str, list[str]], patient: str = PATIENT
            ) -> dict[str, set[str]]:
    return by_kind(query(w.node, GET_ALL, [("$patientId", [q(patient)]), ("$XDSDocumentEntryStatus", [ql(*de)]),
                                           ("$XDSSubmissionSetStatus", [ql(*ss)]),
                                           ("$XDSFolderStatus", [ql(*fd)]), *extra]))


def test_get_all(w):
    reply = query(w.node, GET_ALL, [("$patientId", [q(PATIENT)]), ("$XDSDocumentEntryStatus", [ql(APPROVED)]),
                                    ("$XDSSubmissionSetStatus", [ql(APPROVED)]), ("$XDSFolderStatus", [ql(APPROVED)])])
    kinds = [w.label(o.get("id")) for o in objects(reply)]
    # SubmissionSets, Folders, DocumentEntries, then Associations (ITI TF-2a 3.18.4.1.3), every one with its status.
    order = [0 if k.startswith("SS") and ">" not in k else 1 if k.startswith("F") and ">" not in k
             else 3 if ">" in k or "~" in k else 2 for k in kinds]
    assert order == sorted(order), kinds
    assert {o.get("status") for o in objects(reply)} == {APPROVED}
    assert all(o.get("lid") == o.get("id") for o in objects(reply))
    assert get_all(w) == {
        "SS": w("SS1", "SS2", "SS3", "SS4", "SS5"),
        "FD": w("F1", "F2"),
        "DE": w(*ALL_APPROVED_STABLE),
        "AS": w("SS1>d1", "SS1>F1", "F1>d1", "SS1>F1>d1", "SS2>d2", "SS2>d3", "SS2>d4", "SS2>F2", "F2>d2",
                "SS2>F2>d2", "SS5>d7"),
    }


def test_get_all_status_lists_per_kind(w):
    with_deprecated = get_all(w, (APPROVED, DEPRECATED))
    assert with_deprecated["DE"] == w(*ALL_APPROVED_STABLE, "d6")
    assert with_deprecated["AS"] >= w("SS4>d6", "d7~d6")
    # Only Deprecated documents: the folders' memberships go, the SubmissionSet -> Folder links stay.
    assert get_all(w, (DEPRECATED,)) == {"SS": w("SS1", "SS2", "SS3", "SS4", "SS5"), "FD": w("F1", "F2"),
                                         "DE": w("d6"), "AS": w("SS4>d6", "SS1>F1", "SS2>F2")}
    assert get_all(w, (APPROVED,), (DEPRECATED,), (DEPRECATED,)) == {
        "SS": set(), "FD": set(), "DE": w(*ALL_APPROVED_STABLE), "AS": set()}
    assert get_all(w, patient=OTHER_PATIENT) == {
        "SS": w("SSO"), "FD": w("FO"), "DE": w("o1"), "AS": w("SSO>o1", "SSO>FO", "FO>o1", "SSO>FO>o1")}
    failure(query(w.node, GET_ALL, [("$patientId", [q(UNKNOWN_PATIENT)]), ("$XDSDocumentEntryStatus", [ql(APPROVED)]),
                                    ("$XDSSubmissionSetStatus", [ql(APPROVED)]), ("$XDSFolderStatus", [ql(APPROVED)])]),
            "XDSUnknownPatientId")


def test_get_all_filters(w):
    fmt = ("$XDSDocumentEntryFormatCode", [ql(code(PDF_FORMAT))])
    result = get_all(w, (APPROVED,), (APPROVED,), (APPROVED,), fmt)
    assert result["DE"] == w("d3")
    assert result["AS"] == w("SS1>F1", "SS2>F2", "SS2>d3")
    conf = ("$XDSDocumentEntryConfidentialityCode", [ql(code(MASQUE_PS))])
    assert get_all(w, (APPROVED,), (APPROVED,), (APPROVED,), conf)["DE"] == w("d2", "d4")
    kind = ("$XDSDocumentEntryType", [ql(ON_DEMAND)])
    result = get_all(w, (APPROVED,), (APPROVED,), (APPROVED,), kind)
    assert result["DE"] == w("d5")
    assert result["AS"] == w("SS1>F1", "SS2>F2", "SS3>d5")


# --- Get* by id -----------------------------------------------------------------------------------------------------


def test_get_documents(w):
    p = "$XDSDocumentEntry"
    ids = lambda *labels: [ql(*(w.ids[x] for x in labels))]  # noqa: E731
    assert found(query(w.node, GET_DOCUMENTS, [(p + "EntryUUID", ids("d1", "d2"))])) == w("d1", "d2")
    assert found(query(w.node, GET_DOCUMENTS, [(p + "EntryUUID", [ql(w.ids["d1"]), ql(w.ids["d6"])])])
                 ) == w("d1", "d6")  # any status
    assert found(query(w.node, GET_DOCUMENTS, [(p + "UniqueId", [ql(w.unique_ids["d3"], w.unique_ids["d5"])])])
                 ) == w("d3", "d5")  # any objectType
    assert found(query(w.node, GET_DOCUMENTS, [(p + "LogicalID", ids("d4"))])) == w("d4")
    assert found(query(w.node, GET_DOCUMENTS, [(p + "UniqueId", [ql("1.2.250.1.999.404")])])) == set()
    assert found(query(w.node, GET_DOCUMENTS, [(p + "EntryUUID", ids("d1")), ("$MetadataLevel", ["1"])])
                 ) == w("d1")
    (d6,) = objects(query(w.node, GET_DOCUMENTS, [(p + "EntryUUID", ids("d6"))]))
    assert d6.get("status") == DEPRECATED
    refs = objects(query(w.node, GET_DOCUMENTS, [(p + "EntryUUID", ids("d1", "d2"))], return_type="ObjectRef"))
    assert {r.get("id") for r in refs} == w("d1", "d2")


def test_get_documents_other_patient_alone(w):
    assert found(query(w.node, GET_DOCUMENTS, [("$XDSDocumentEntryUniqueId", [ql(w.unique_ids["o1"])])],
                       patient=OTHER_PATIENT)) == w("o1")


def test_get_folders(w):
    assert by_kind(query(w.node, GET_FOLDERS, [("$XDSFolderEntryUUID", [ql(w.ids["F1"], w.ids["F2"])])])
                   ) == {"SS": set(), "FD": w("F1", "F2"), "DE": set(), "AS": set()}
    assert found(query(w.node, GET_FOLDERS, [("$XDSFolderUniqueId", [ql(w.unique_ids["F2"])])])) == w("F2")
    assert found(query(w.node, GET_FOLDERS, [("$XDSFolderLogicalID", [ql(w.ids["F1"])])])) == w("F1")
    failure(query(w.node, GET_FOLDERS, [("$XDSFolderEntryUUID", [ql(w.ids["F1"], w.ids["FO"])])]),
            "XDSResultNotSinglePatient")


def test_get_associations(w):
    def assocs(*labels: str) -> set[str]:
        return by_kind(query(w.node, GET_ASSOCIATIONS, [("$uuid", [ql(*(w.ids[x] for x in labels))])]))["AS"]

    reply = query(w.node, GET_ASSOCIATIONS, [("$uuid", [ql(w.ids["d2"])])])
    assert found(reply) == w("SS2>d2", "F2>d2")
    assert assocs("F2") == w("SS2>F2", "F2>d2")
    assert assocs("F2>d2") == w("SS2>F2>d2")
    assert assocs("d6") == w("SS4>d6", "d7~d6")
    assert assocs("d7", "d3") == w("SS5>d7", "d7~d6", "SS2>d3")
    assert assocs("SS3") == w("SS3>d5")


def test_get_documents_and_associations(w):
    reply = query(w.node, GET_DOCUMENTS_AND_ASSOCIATIONS, [("$XDSDocumentEntryEntryUUID", [ql(w.ids["d7"])])])
    assert by_kind(reply) == {"SS": set(), "FD": set(), "DE": w("d7"), "AS": w("SS5>d7", "d7~d6")}
    reply = query(w.node, GET_DOCUMENTS_AND_ASSOCIATIONS,
                  [("$XDSDocumentEntryUniqueId", [ql(w.unique_ids["d6"], w.unique_ids["d1"])])])
    assert by_kind(reply) == {"SS": set(), "FD": set(), "DE": w("d6", "d1"),
                              "AS": w("SS4>d6", "d7~d6", "SS1>d1", "F1>d1")}


def test_get_submission_sets(w):
    reply = query(w.node, GET_SUBMISSION_SETS, [("$uuid", [ql(w.ids["d2"], w.ids["F1"])])])
    assert by_kind(reply) == {"SS": w("SS2", "SS1"), "FD": set(), "DE": set(), "AS": w("SS2>d2", "SS1>F1")}
    reply = query(w.node, GET_SUBMISSION_SETS, [("$uuid", [ql(w.ids["F2>d2"])])])
    assert by_kind(reply) == {"SS": w("SS2"), "FD": set(), "DE": set(), "AS": w("SS2>F2>d2")}
    assert found(query(w.node, GET_SUBMISSION_SETS, [("$uuid", [ql(f"urn:uuid:{uuid.uuid4()}")])])) == set()


def ss_contents(w: World, label: str, *filters: tuple[str, list[str]], by: str = "EntryUUID"
                ) -> dict[str, set[str]]:
    value = w.ids[label] if by == "EntryUUID" else w.unique_ids[label]
    return by_kind(query(w.node, GET_SUBMISSION_SET_AND_CONTENTS, [(f"$XDSSubmissionSet{by}", [q(value)]),
                                                                   *filters]))


def test_get_submission_set_and_contents(w):
    full = {"SS": w("SS2"), "FD": w("F2"), "DE": w("d2", "d3", "d4"),
            "AS": w("SS2>d2", "SS2>d3", "SS2>d4", "SS2>F2", "F2>d2", "SS2>F2>d2")}
    assert ss_contents(w, "SS2") == full
    assert ss_contents(w, "SS2", by="UniqueId") == full
    assert ss_contents(w, "SS5") == {"SS": w("SS5"), "FD": set(), "DE": w("d7"), "AS": w("SS5>d7")}
    # on-demand entries only when asked for
    assert ss_contents(w, "SS3") == {"SS": w("SS3"), "FD": set(), "DE": set(), "AS": set()}
    assert ss_contents(w, "SS3", ("$XDSDocumentEntryType", [ql(ON_DEMAND)])) == {
        "SS": w("SS3"), "FD": set(), "DE": w("d5"), "AS": w("SS3>d5")}


def test_get_submission_set_and_contents_filters(w):
    assert ss_contents(w, "SS2", ("$XDSDocumentEntryFormatCode", [ql(code(PDF_FORMAT))])) == {
        "SS": w("SS2"), "FD": w("F2"), "DE": w("d3"), "AS": w("SS2>d3", "SS2>F2")}
    conf = "$XDSDocumentEntryConfidentialityCode"
    assert ss_contents(w, "SS2", (conf, [ql(code(MASQUE_PS))])) == {
        "SS": w("SS2"), "FD": w("F2"), "DE": w("d2", "d4"), "AS": w("SS2>d2", "SS2>d4", "SS2>F2", "F2>d2",
                                                                    "SS2>F2>d2")}
    assert ss_contents(w, "SS2", (conf, [ql(code(NORMAL))]), (conf, [ql(code(INVISIBLE_PATIENT))])) == {
        "SS": w("SS2"), "FD": w("F2"), "DE": w("d3"), "AS": w("SS2>d3", "SS2>F2")}
    assert found(query(w.node, GET_SUBMISSION_SET_AND_CONTENTS,
                       [("$XDSSubmissionSetUniqueId", [q("1.2.250.1.999.404")])])) == set()


def test_get_folder_and_contents(w):
    reply = query(w.node, GET_FOLDER_AND_CONTENTS, [("$XDSFolderEntryUUID", [q(w.ids["F2"])])])
    assert by_kind(reply) == {"SS": set(), "FD": w("F2"), "DE": w("d2"), "AS": w("F2>d2")}
    reply = query(w.node, GET_FOLDER_AND_CONTENTS, [("$XDSFolderUniqueId", [q(w.unique_ids["F1"])])])
    assert by_kind(reply) == {"SS": set(), "FD": w("F1"), "DE": w("d1"), "AS": w("F1>d1")}
    reply = query(w.node, GET_FOLDER_AND_CONTENTS, [("$XDSFolderEntryUUID", [q(w.ids["F2"])]),
                                                    ("$XDSDocumentEntryConfidentialityCode",
                                                     [ql(code(INVISIBLE_PATIENT))])])
    assert by_kind(reply) == {"SS": set(), "FD": w("F2"), "DE": set(), "AS": set()}
    reply = query(w.node, GET_FOLDER_AND_CONTENTS, [("$XDSFolderEntryUUID", [q(w.ids["F1"])]),
                                                    ("$XDSDocumentEntryFormatCode",
                                                     [ql("urn:ihe:iti:xds-sd:text:2008^^1.3.6.1.4.1.19376.1.2.3")])])
    assert by_kind(reply) == {"SS": set(), "FD": w("F1"), "DE": w("d1"), "AS": w("F1>d1")}


def test_get_folders_for_document(w):
    def folders(label: str, by: str = "EntryUUID", patient: str | None = None) -> set[str]:
        value = w.ids[label] if by == "EntryUUID" else w.unique_ids[label]
        return found(query(w.node, GET_FOLDERS_FOR_DOCUMENT, [(f"$XDSDocumentEntry{by}", [q(value)])],
                           patient=patient))

    assert folders("d1") == w("F1")
    assert folders("d2", "UniqueId") == w("F2")
    assert folders("o1", patient=OTHER_PATIENT) == w("FO")
    assert folders("d3") == set()


def test_get_related_documents(w):
    def related(label: str, types: tuple[str, ...], by: str = "EntryUUID") -> dict[str, set[str]]:
        value = w.ids[label] if by == "EntryUUID" else w.unique_ids[label]
        return by_kind(query(w.node, GET_RELATED_DOCUMENTS, [(f"$XDSDocumentEntry{by}", [q(value)]),
                                                             ("$AssociationTypes", [ql(*types)])]))

    chain = {"SS": set(), "FD": set(), "DE": w("d7", "d6"), "AS": w("d7~d6")}
    assert related("d7", (RPLC,)) == chain
    assert related("d6", (RPLC, APND), by="UniqueId") == chain
    empty = {"SS": set(), "FD": set(), "DE": set(), "AS": set()}
    assert related("d7", (APND,)) == empty
    assert related("d1", (RPLC,)) == empty
    failure(query(w.node, GET_RELATED_DOCUMENTS, [("$XDSDocumentEntryEntryUUID", [q(w.ids["d7"])])]),
            "XDSStoredQueryMissingParam")


# --- ITI-51 Multi-Patient Stored Query --------------------------------------------------------------------------------


def engine_query(w: World, query_id: str, params: list[tuple[str, list[str]]]) -> Reply:
    """An ITI-51 query run by the registry's engine on the node's database, without a caller: the consent
    checker binds every request to the VIHF's one patient, so multi-patient answers exist only here."""
    store = Store(w.node.config.database_url)
    try:
        answer = Registry(store).stored_query(adhoc_query(query_id, params), multi_patient=True)
    finally:
        store.dispose()
    return parse_reply(200, "application/soap+xml", response_envelope(ITI51 + "Response", None, answer))


def test_find_documents_for_multiple_patients(w):
    status = ("$XDSDocumentEntryStatus", [ql(APPROVED)])
    class10 = ("$XDSDocumentEntryClassCode", [ql(f"10^^{CLASS_SCHEME}")])
    both = ("$XDSDocumentEntryPatientId", [ql(PATIENT, OTHER_PATIENT)])
    assert found(engine_query(w, FIND_DOCUMENTS_MPQ, [both, status, class10])) == w("d1", "d4", "d7", "o1")
    assert found(engine_query(w, FIND_DOCUMENTS_MPQ, [status, class10])) == w("d1", "d4", "d7", "o1")
    assert found(engine_query(w, FIND_DOCUMENTS_MPQ, [("$XDSDocumentEntryPatientId", [ql(OTHER_PATIENT)]), status])
                 ) == w("o1")
    assert found(engine_query(w, FIND_DOCUMENTS_MPQ, [status, ("$XDSDocumentEntryEventCodeList",
                                                               [ql(code(EVENT_2))])])) == w("d4")
    failure(engine_query(w, FIND_DOCUMENTS_MPQ, [status]), "XDSStoredQueryMissingParam")


def test_multi_patient_queries_stay_within_the_vihf_patient(w):
    # Over HTTP the VIHF names one patient (docs/vihf.md §7 step 9): ITI-51 answers for that patient only, and a
    # query reaching another patient (or every patient) is refused whole.
    status = ("$XDSDocumentEntryStatus", [ql(APPROVED)])
    class10 = ("$XDSDocumentEntryClassCode", [ql(f"10^^{CLASS_SCHEME}")])
    mine = ("$XDSDocumentEntryPatientId", [ql(PATIENT)])
    assert found(query(w.node, FIND_DOCUMENTS_MPQ, [mine, status, class10], action=ITI51)) == w("d1", "d4", "d7")
    for params in ([("$XDSDocumentEntryPatientId", [ql(PATIENT, OTHER_PATIENT)]), status, class10],
                   [status, class10]):
        reply = post(w.node.registry, ITI51, adhoc_query(FIND_DOCUMENTS_MPQ, params), mtom=False)
        assert reply.http_status == 400
        assert reply.fault_subcode.endswith("DMPAccessDenied")
        assert "patient-mismatch" in reply.fault_reason


def test_find_folders_for_multiple_patients(w):
    status = ("$XDSFolderStatus", [ql(APPROVED)])
    assert found(engine_query(w, FIND_FOLDERS_MPQ, [status, ("$XDSFolderCodeList", [ql(code(FOLDER_1))])])
                 ) == w("F1", "F2", "FO")
    assert found(engine_query(w, FIND_FOLDERS_MPQ, [status, ("$XDSFolderCodeList", [ql(code(FOLDER_1))]),
                                                    ("$XDSFolderPatientId", [ql(OTHER_PATIENT)])])) == w("FO")
    assert found(engine_query(w, FIND_FOLDERS_MPQ, [status, ("$XDSFolderPatientId", [ql(PATIENT, OTHER_PATIENT)])])
                 ) == w("F1", "F2", "FO")


def test_transaction_serves_only_its_own_queries(w):
    reply = query(w.node, FIND_DOCUMENTS_MPQ, [("$XDSDocumentEntryPatientId", [ql(PATIENT)]),
                                               ("$XDSDocumentEntryStatus", [ql(APPROVED)])])
    failure(reply, "XDSUnknownStoredQuery")
    reply = query(w.node, FIND_DOCUMENTS, [("$XDSDocumentEntryPatientId", [q(PATIENT)]),
                                           ("$XDSDocumentEntryStatus", [ql(APPROVED)])], action=ITI51)
    failure(reply, "XDSUnknownStoredQuery")


# --- errors ---------------------------------------------------------------------------------------------------------

PATIENT_SLOT = ("$XDSDocumentEntryPatientId", [q(PATIENT)])
STATUS_SLOT = ("$XDSDocumentEntryStatus", [ql(APPROVED)])

ERRORS = [
    # (id, query, params, errorCode)
    ("unknown query id", f"urn:uuid:{uuid.UUID(int=1)}", [PATIENT_SLOT, STATUS_SLOT], "XDSUnknownStoredQuery"),
    ("missing status", FIND_DOCUMENTS, [PATIENT_SLOT], "XDSStoredQueryMissingParam"),
    ("missing patient", FIND_DOCUMENTS, [STATUS_SLOT], "XDSStoredQueryMissingParam"),
    ("GetDocuments without id", GET_DOCUMENTS, [("$MetadataLevel", ["1"])], "XDSStoredQueryMissingParam"),
    ("GetAll without folder status", GET_ALL, [("$patientId", [q(PATIENT)]), STATUS_SLOT,
                                                ("$XDSSubmissionSetStatus", [ql(APPROVED)])],
     "XDSStoredQueryMissingParam"),
    ("GetDocuments EntryUUID and UniqueId", GET_DOCUMENTS,
     [("$XDSDocumentEntryEntryUUID", [ql(f"urn:uuid:{uuid.UUID(int=2)}")]),
      ("$XDSDocumentEntryUniqueId", [ql("1.2.3")])], "XDSStoredQueryParamNumber"),
    ("repeated single-valued slot", FIND_DOCUMENTS, [PATIENT_SLOT, STATUS_SLOT,
                                                     ("$XDSDocumentEntryCreationTimeFrom", ["2020"]),
                                                     ("$XDSDocumentEntryCreationTimeFrom", ["2021"])],
     "XDSStoredQueryParamNumber"),
    ("two values in one slot", FIND_DOCUMENTS, [PATIENT_SLOT, STATUS_SLOT,
                                                ("$XDSDocumentEntryCreationTimeFrom", ["2020", "2021"])],
     "XDSStoredQueryParamNumber"),
    ("two values in one list", FIND_DOCUMENTS, [PATIENT_SLOT, STATUS_SLOT,
                                                ("$XDSDocumentEntryCreationTimeFrom", ["('2020','2021')"])],
     "XDSStoredQueryParamNumber"),
    ("two patients in FindDocuments", FIND_DOCUMENTS, [("$XDSDocumentEntryPatientId", [ql(PATIENT, OTHER_PATIENT)]),
                                                       STATUS_SLOT], "XDSStoredQueryParamNumber"),
    ("repeated OR-only slot", FIND_DOCUMENTS, [PATIENT_SLOT, STATUS_SLOT,
                                               ("$XDSDocumentEntryClassCode", [ql(f"10^^{CLASS_SCHEME}")]),
                                               ("$XDSDocumentEntryClassCode", [ql(f"11^^{CLASS_SCHEME}")])],
     "XDSStoredQueryParamNumber"),
    ("repeated status", FIND_DOCUMENTS, [PATIENT_SLOT, STATUS_SLOT, STATUS_SLOT], "XDSStoredQueryParamNumber"),
    ("code without scheme", FIND_DOCUMENTS, [PATIENT_SLOT, STATUS_SLOT, ("$XDSDocumentEntryClassCode", [ql("10")])],
     "XDSRegistryError"),
    ("code with one caret", FIND_DOCUMENTS, [PATIENT_SLOT, STATUS_SLOT,
                                             ("$XDSDocumentEntryClassCode", [ql(f"10^{CLASS_SCHEME}")])],
     "XDSRegistryError"),
    ("code as CX-like HD", FIND_DOCUMENTS, [PATIENT_SLOT, STATUS_SLOT,
                                            ("$XDSDocumentEntryClassCode", [ql(f"10^^^&{CLASS_SCHEME}&ISO")])],
     "XDSRegistryError"),
    ("bad DTM format", FIND_DOCUMENTS, [PATIENT_SLOT, STATUS_SLOT,
                                        ("$XDSDocumentEntryCreationTimeFrom", ["2024-01-01"])], "XDSRegistryError"),
    ("bad DTM month", FIND_DOCUMENTS, [PATIENT_SLOT, STATUS_SLOT,
                                       ("$XDSDocumentEntryServiceStopTimeTo", ["20241301"])], "XDSRegistryError"),
    ("bad DTM length", FIND_DOCUMENTS, [PATIENT_SLOT, STATUS_SLOT,
                                        ("$XDSDocumentEntryCreationTimeTo", ["202401011"])], "XDSRegistryError"),
    ("bad status", FIND_DOCUMENTS, [PATIENT_SLOT, ("$XDSDocumentEntryStatus", [ql("Bogus")])], "XDSRegistryError"),
    ("bad status URN", FIND_DOCUMENTS, [PATIENT_SLOT,
                                        ("$XDSDocumentEntryStatus", [ql("urn:oasis:names:tc:ebxml-regrep:Approved")])],
     "XDSRegistryError"),
    ("unterminated quote", FIND_DOCUMENTS, [("$XDSDocumentEntryPatientId", [f"'{PATIENT}"]), STATUS_SLOT],
     "XDSRegistryError"),
    ("unterminated quote in list", FIND_DOCUMENTS, [PATIENT_SLOT, ("$XDSDocumentEntryStatus", [f"('{APPROVED})"])],
     "XDSRegistryError"),
    ("undoubled inner quote", FIND_DOCUMENTS, [PATIENT_SLOT, STATUS_SLOT,
                                               ("$XDSDocumentEntryAuthorPerson", ["('O'Brien')"])],
     "XDSRegistryError"),
    ("unclosed list", FIND_DOCUMENTS, [PATIENT_SLOT, ("$XDSDocumentEntryStatus", [f"('{APPROVED}'"])],
     "XDSRegistryError"),
    ("unopened list", FIND_DOCUMENTS, [PATIENT_SLOT, ("$XDSDocumentEntryStatus", [f"'{APPROVED}')"])],
     "XDSRegistryError"),
    ("unopened list, bare", GET_DOCUMENTS, [("$XDSDocumentEntryUniqueId", ["1.2.3')"])], "XDSRegistryError"),
    ("quotes in a bare value", GET_DOCUMENTS, [("$XDSDocumentEntryUniqueId", ["1.2.3','1.2.4"])],
     "XDSRegistryError"),
    ("empty list", FIND_DOCUMENTS, [PATIENT_SLOT, ("$XDSDocumentEntryStatus", ["()"])], "XDSRegistryError"),
    ("list ending with comma", FIND_DOCUMENTS, [PATIENT_SLOT, ("$XDSDocumentEntryStatus", [f"('{APPROVED}',)"])],
     "XDSRegistryError"),
    ("missing comma", FIND_DOCUMENTS, [PATIENT_SLOT, ("$XDSDocumentEntryStatus", [f"('{APPROVED}' 'Deprecated')"])],
     "XDSRegistryError"),
    ("entryUUID not a UUID", GET_DOCUMENTS, [("$XDSDocumentEntryEntryUUID", [ql("urn:uuid:not-a-uuid")])],
     "XDSRegistryError"),
    ("patient id not a CX", FIND_DOCUMENTS, [("$XDSDocumentEntryPatientId", [q("1' OR '1'='1")]), STATUS_SLOT],
     "XDSRegistryError"),
]


@pytest.mark.parametrize(("query_id", "params", "error_code"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_query_errors(node, query_id, params, error_code):
    failure(query(node, query_id, params), error_code)


def test_return_type_registry_object(node):
    reply = query(node, FIND_DOCUMENTS, [PATIENT_SLOT, STATUS_SLOT], return_type="RegistryObject")
    error = failure(reply, "XDSRegistryError")
    assert reply.problems == [Problem.RETURN_TYPE_UNSUPPORTED]
    assert "'RegistryObject'" in error["codeContext"]


def test_get_documents_spanning_two_patients(w):
    reply = query(w.node, GET_DOCUMENTS, [("$XDSDocumentEntryEntryUUID", [ql(w.ids["d1"], w.ids["o1"])])])
    failure(reply, "XDSResultNotSinglePatient")
    assert reply.problems == [Problem.RESULT_NOT_SINGLE_PATIENT]
    reply = query(w.node, GET_DOCUMENTS, [("$XDSDocumentEntryUniqueId", [ql(w.unique_ids["d1"]),
                                                                          ql(w.unique_ids["o1"])])])
    failure(reply, "XDSResultNotSinglePatient")


def test_get_associations_spanning_two_patients(w):
    reply = query(w.node, GET_ASSOCIATIONS, [("$uuid", [ql(w.ids["d1"], w.ids["o1"])])])
    failure(reply, "XDSResultNotSinglePatient")


def test_too_many_results(tmp_path):
    cfg = make_node(tmp_path / "small")
    dataclasses.replace(cfg, max_query_results=3).save()
    small = start_node(cfg)
    try:
        docs = [Doc(f"doc {i}".encode(), f"Document{i}") for i in range(4)]
        sub = Submission("SS", _ss(), docs=[(d.symbolic_id, d) for d in docs])
        assert post(small.registry, ITI42, submission_request(sub, World(small)), mtom=False).status == "Success"
        params = [PATIENT_SLOT, STATUS_SLOT]
        reply = query(small, FIND_DOCUMENTS, params)
        error = failure(reply, "XDSTooManyResults")
        assert reply.problems == [Problem.TOO_MANY_ROWS]
        assert error["codeContext"] == Problem.TOO_MANY_ROWS(None, limit=3).context
        # ObjectRef answers may be larger than the LeafClass limit.
        assert len(found(query(small, FIND_DOCUMENTS, params, return_type="ObjectRef"))) == 4
        # Exactly the limit is fine.
        three = [d.unique_id for d in docs[:3]]
        got = objects(query(small, GET_DOCUMENTS, [("$XDSDocumentEntryUniqueId", [ql(*three)])]))
        assert {e.get("value") for o in got for e in o.iterfind(f"{{{RIM}}}ExternalIdentifier")
                if e.get("identificationScheme") == DE_UNIQUE_ID} == set(three)
        # GetAll counts every object: 1 SubmissionSet + 4 DocumentEntries + 4 associations.
        failure(query(small, GET_ALL, [("$patientId", [q(PATIENT)]), STATUS_SLOT,
                                       ("$XDSSubmissionSetStatus", [ql(APPROVED)]),
                                       ("$XDSFolderStatus", [ql(APPROVED)])]), "XDSTooManyResults")
    finally:
        small.stop()


# --- parse_values property ----------------------------------------------------------------------------------------

VALUE = st.text(alphabet=st.sampled_from("ab '(),^&%_\t é"), max_size=8)


@settings(deadline=None, max_examples=100)
@given(st.lists(VALUE, min_size=1, max_size=6), st.integers(min_value=1, max_value=3))
def test_parse_values_round_trip(values, parts):
    # As one list, and spread over several rim:Value elements (one Slot = one OR list).
    assert parse_values([ql(*values)], "$p") == values
    size = -(-len(values) // parts)
    chunks = [values[i : i + size] for i in range(0, len(values), size)]
    assert parse_values([ql(*c) for c in chunks], "$p") == values
    for v in values:
        assert parse_values([q(v)], "$p") == [v]


def test_parse_values_refuses_bad_quoting():
    for raw in ["('a','b'", "'a','b')", "('a)", "('a''')x", "('a',)", "(,'a')", "()", "('a' 'b')", ""]:
        with pytest.raises(QueryError):
            parse_values([raw], "$p")


# --- a WSDL-driven client ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zeep_client(node: RunningNode) -> Iterator[zeep.Client]:
    client = zeep.Client(f"{node.registry}?wsdl")
    yield client
    client.transport.session.close()


def test_zeep_registry_stored_query(w, zeep_client):
    request = adhoc_query(FIND_DOCUMENTS, [PATIENT_SLOT, STATUS_SLOT,
                                           ("$XDSDocumentEntryClassCode", [ql(f"11^^{CLASS_SCHEME}",
                                                                              f"31^^{CLASS_SCHEME}")])])
    element = zeep_client.get_element(f"{{{ns.QUERY}}}AdhocQueryRequest")
    parsed = element.parse(request, zeep_client.wsdl.types)
    # The node requires a VIHF: a fresh one in wsse:Security through zeep's _soapheaders.
    result = zeep_client.service["DocumentRegistry_RegistryStoredQuery"](
        **{k: parsed[k] for k in parsed}, _soapheaders=[security_header(fresh_vihf())])
    assert result.status == "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
    assert result.RegistryErrorList is None
    # rim:RegistryObjectList is a choice of the Identifiable substitution group: zeep gives {element name: object}.
    members = result.RegistryObjectList._value_1
    assert [list(m) for m in members] == [["ExtrinsicObject"]] * 2
    extrinsic = [m["ExtrinsicObject"] for m in members]
    assert {e.id for e in extrinsic} == w("d2", "d3")
    for e in extrinsic:
        assert e.status == APPROVED
        ext = {x.identificationScheme: x.value for x in e.ExternalIdentifier}
        assert ext[DE_UNIQUE_ID] == w.unique_ids[w.label(e.id)]
