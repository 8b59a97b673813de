"""Builds realistic XDS submissions for tests and benchmarks (a French consultation report with DMP-valid
codes, parameterised).

Objects are built with the typed model and turned into ebRIM XML by ``registry._model``'s writers, so
the factory also exercises the model -> ebRIM direction."""

from __future__ import annotations

import base64
import hashlib
import itertools
import uuid
from dataclasses import dataclass, field

from lxml import etree

from registry import _model, _rim, _rim_write
from registry._vocabulary import NODE_SUBMISSION_SET, AssociationType
from soap_wsdl import ns

PATIENT = "284067512345688^^^&1.2.250.1.213.1.4.10&ISO"
OTHER_PATIENT = "188102B17295264^^^&1.2.250.1.213.1.4.10&ISO"
REPOSITORY_ID = "1.2.250.1.999.1.1.8121.3"
AUTHOR = "801234567897^MARTIN^Claire^^^^^^&1.2.250.1.71.4.2.1&ISO"
INSTITUTION = "CH FICTIF^^^^^&1.2.250.1.71.4.2.2&ISO^^^^1750000000"
_counter = itertools.count(1)


def new_oid(prefix: str = "1.2.250.1.999.1.1.8121") -> str:
    return f"{prefix}.{uuid.uuid4().int % 10**12}.{next(_counter)}"


@dataclass
class Doc:
    content: bytes
    symbolic_id: str
    unique_id: str = field(default_factory=lambda: new_oid("1.2.250.1.999.1.1.8121.1"))
    mime_type: str = "text/plain"
    patient_id: str = PATIENT
    send_hash: bool = True
    hash_override: str | None = None
    size_override: str | None = None
    meta: dict[str, object] = field(default_factory=dict)  # typed DocumentEntry attributes to override

    @property
    def sha1(self) -> str:
        return hashlib.sha1(self.content).hexdigest()


def document_entry(doc: Doc, *, repository_attributes: bool = False) -> _model.DocumentEntry:
    C = _model.Code
    de = _model.DocumentEntry(
        entry_uuid=doc.symbolic_id,
        mime_type=doc.mime_type,
        title=_model.Text("Compte rendu de consultation", "fr-FR"),
        patient_id=doc.patient_id,
        unique_id=doc.unique_id,
        authors=[_model.Author(person=AUTHOR, institutions=[INSTITUTION])],
        class_code=C("10", "1.2.250.1.213.1.1.4.1", "Compte rendu"),
        confidentiality_codes=[C("N", "2.16.840.1.113883.5.25", "Normal")],
        format_code=C("urn:ihe:iti:xds-sd:text:2008", "1.3.6.1.4.1.19376.1.2.3", "Texte brut"),
        healthcare_facility_type_code=C("SA01", "1.2.250.1.71.4.2.4", "Etablissement public de santé"),
        practice_setting_code=C("ETABLISSEMENT", "1.2.250.1.213.1.1.4.9", "Etablissement de santé"),
        type_code=C("11488-4", "2.16.840.1.113883.6.1", "Compte rendu de consultation"),
        creation_time="20240312093000",
        language_code="fr-FR",
        service_start_time="20240312090000",
        service_stop_time="20240312093000",
        source_patient_id="IPP0001^^^&1.2.250.1.999.1.1.8121.4&ISO",
        source_patient_info=["PID-5|DUPONT^Marie^^^^^L", "PID-7|19800101", "PID-8|F"],
    )
    if doc.send_hash or repository_attributes:
        de.hash = doc.hash_override or doc.sha1
    if doc.size_override is not None:
        de.extra_slots.append(_rim.Slot("size", [doc.size_override]))
    elif doc.send_hash or repository_attributes:
        de.size = len(doc.content)
    if repository_attributes:
        de.repository_unique_id = REPOSITORY_ID
    for name, value in doc.meta.items():
        if not hasattr(de, name):
            raise AttributeError(f"DocumentEntry has no attribute {name}")
        setattr(de, name, value)
    return de


def submission_set(patient_id: str = PATIENT, unique_id: str | None = None) -> _model.SubmissionSet:
    return _model.SubmissionSet(
        entry_uuid="SubmissionSet01",
        title=_model.Text("Consultation du 12/03/2024", "fr-FR"),
        patient_id=patient_id,
        unique_id=unique_id or new_oid("1.2.250.1.999.1.1.8121.2"),
        source_id="1.2.250.1.999.1.1.8121",
        submission_time="20240312101500",
        authors=[_model.Author(person=AUTHOR, institutions=[INSTITUTION])],
        content_type_code=_model.Code("04", "1.2.250.1.213.2.2", "Hospitalisation de jour"),
    )


def registry_object_list(docs: list[Doc], *, ss: _model.SubmissionSet | None = None,
                         repository_attributes: bool = False,
                         extra: list[_rim.RimObject] | None = None) -> etree._Element:
    ss = ss or submission_set(docs[0].patient_id if docs else PATIENT)
    objects = [_model.submission_set_to_rim(ss)]
    for d in docs:
        objects.append(_model.document_entry_to_rim(document_entry(d, repository_attributes=repository_attributes)))
        objects.append(_model.association_to_rim(_model.Association(
            entry_uuid=f"assoc-{d.symbolic_id}", association_type=AssociationType.HAS_MEMBER.value,
            source=ss.entry_uuid, target=d.symbolic_id, submission_set_status="Original")))
    objects += extra or []
    rol = etree.Element(f"{{{ns.RIM}}}RegistryObjectList", nsmap={"rim": ns.RIM})
    for o in objects:
        if o.kind is _rim.Kind.REGISTRY_PACKAGE and any(c.node == NODE_SUBMISSION_SET for c in o.classifications):
            # The SubmissionSet's node classification is sent at top level, as NIST samples do.
            node = next(c for c in o.classifications if c.node == NODE_SUBMISSION_SET)
            o.classifications.remove(node)
            _rim_write.write_object(o, rol)
            _rim_write.write_classification(node, rol)
        else:
            _rim_write.write_object(o, rol)
    return rol


def submit_objects_request(docs: list[Doc], **kw: object) -> etree._Element:
    sor = etree.Element(f"{{{ns.LCM}}}SubmitObjectsRequest", nsmap={"lcm": ns.LCM, "rim": ns.RIM})
    sor.append(registry_object_list(docs, **kw))  # type: ignore[arg-type]
    return sor


def provide_and_register(docs: list[Doc], *, inline: bool = False, attach: list[Doc] | None = None,
                         **kw: object) -> etree._Element:
    """``xdsb:ProvideAndRegisterDocumentSetRequest``; documents as xop:Include cid:<symbolic id>@test unless
    ``inline`` (base64). ``attach`` overrides which documents get an xdsb:Document."""
    req = etree.Element(f"{{{ns.XDSB}}}ProvideAndRegisterDocumentSetRequest",
                        nsmap={"xdsb": ns.XDSB, "lcm": ns.LCM, "rim": ns.RIM})
    req.append(submit_objects_request(docs, **kw))
    for d in docs if attach is None else attach:
        el = etree.SubElement(req, f"{{{ns.XDSB}}}Document", id=d.symbolic_id)
        if inline:
            el.text = base64.b64encode(d.content).decode()
        else:
            inc = etree.SubElement(el, f"{{{ns.XOP}}}Include", nsmap={"xop": ns.XOP})
            inc.set("href", f"cid:{content_id(d)}")
    return req


def content_id(d: Doc) -> str:
    return f"{d.symbolic_id}@test.dmp-xds"
