"""Structural validation rules (ITI TF-3 §4.2, docs/conformance.md §3) as pure unit tests on ebRIM objects."""

from __future__ import annotations

import pytest
import xds_factory as f

from registry import ErrorCode
from registry._rim import Classification, Kind, RimObject, Slot, read_registry_object_list
from registry._validate import Validator
from registry._vocabulary import NODE_LIMITED_METADATA, NODE_SUBMISSION_SET, Scheme


def submission(docs=None, **kw):
    return read_registry_object_list(f.registry_object_list(docs or [f.Doc(b"x", "Document01")],
                                                            repository_attributes=True, **kw))


def errors(sub, require_repo=True):
    v = Validator(require_repository_attributes=require_repo)
    v.validate(sub)
    return [(e.code, e.context, e.location) for e in v.errors]


def document(sub) -> RimObject:
    return next(o for o in sub.objects if o.kind is Kind.EXTRINSIC_OBJECT)


def test_valid_submission_has_no_error():
    assert errors(submission()) == []


def test_missing_repository_attributes_only_required_for_registration():
    sub = read_registry_object_list(f.registry_object_list([f.Doc(b"x", "D", send_hash=False)]))
    names = {ctx for _, ctx, _ in errors(sub)}
    assert names == {"required slot 'hash' is missing", "required slot 'size' is missing",
                     "required slot 'repositoryUniqueId' is missing"}
    assert errors(sub, require_repo=False) == []


def test_two_submission_sets():
    sub = submission()
    ss = next(o for o in sub.objects if o.kind is Kind.REGISTRY_PACKAGE)
    twin = RimObject(Kind.REGISTRY_PACKAGE, "SS2", slots=list(ss.slots), external_ids=[], classifications=[
        Classification("n2", "SS2", node=NODE_SUBMISSION_SET)])
    sub.objects.append(twin)
    assert any("exactly one SubmissionSet, found 2" in c for _, c, _ in errors(sub))


def test_limited_metadata_is_refused():
    sub = submission()
    document(sub).classifications.append(Classification("lm", "Document01", node=sorted(NODE_LIMITED_METADATA)[0]))
    assert any("limited metadata" in c for _, c, _ in errors(sub))


def test_single_valued_slot_with_two_values():
    sub = submission()
    document(sub).slot("creationTime").values = ["20240101", "20240102"]
    assert (ErrorCode.REGISTRY_METADATA_ERROR, "slot 'creationTime' must have exactly one value, found 2",
            "Document01") in errors(sub)


def test_duplicate_slot_names():
    sub = submission()
    document(sub).slots.append(Slot("languageCode", ["en"]))
    assert any("slot 'languageCode' appears 2 times" in c for _, c, _ in errors(sub))


def test_service_start_after_stop():
    sub = submission()
    document(sub).slot("serviceStartTime").values = ["20240313"]
    assert any("serviceStartTime 20240313 is after serviceStopTime 20240312093000" in c
               for _, c, _ in errors(sub))


def test_same_day_precision_is_not_after():
    sub = submission()
    document(sub).slot("serviceStartTime").values = ["20240312"]
    assert errors(sub) == []


@pytest.mark.parametrize("pid", ["PID-2|x", "PID-4|y", "PID-12|z", "PID-19|1"])
def test_prohibited_pid_fields(pid):
    sub = submission()
    document(sub).slot("sourcePatientInfo").values.append(pid)
    assert any(f"must not carry {pid.split('|')[0]}" in c for _, c, _ in errors(sub))


def test_unknown_ihe_slot_is_registry_error_and_other_urn_slot_is_kept():
    sub = submission()
    document(sub).slots += [Slot("urn:ihe:iti:xds:2099:made-up", ["1"]), Slot("urn:example:extra", ["2"])]
    errs = errors(sub)
    assert [(c, ctx) for c, ctx, _ in errs] == [
        (ErrorCode.REGISTRY_ERROR, "slot 'urn:ihe:iti:xds:2099:made-up' uses the reserved urn:ihe: prefix but is "
                                   "not defined by IHE")]


def test_coded_value_needs_code_and_one_scheme():
    sub = submission()
    cl = next(c for c in document(sub).classifications if c.scheme == Scheme.DE_CLASS_CODE.uuid)
    cl.node_representation = ""
    cl.slots = [Slot("codingScheme", ["a", "b"])]
    ctx = [c for _, c, _ in errors(sub)]
    assert any("empty nodeRepresentation" in c for c in ctx)
    assert any("needs exactly one codingScheme value" in c for c in ctx)


def test_author_classification_rules():
    sub = submission()
    cl = next(c for c in document(sub).classifications if c.scheme == Scheme.DE_AUTHOR.uuid)
    cl.node_representation = "x"
    cl.slots = [Slot("authorRole", ["r"])]
    ctx = [c for _, c, _ in errors(sub)]
    assert any('must have nodeRepresentation=""' in c for c in ctx)
    assert any("needs authorPerson, authorInstitution or authorTelecommunication" in c for c in ctx)


def test_document_not_member_of_submission_set():
    sub = submission()
    sub.objects = [o for o in sub.objects if o.kind is not Kind.ASSOCIATION]
    assert (ErrorCode.REGISTRY_METADATA_ERROR,
            "DocumentEntry Document01 is not a member of the SubmissionSet (HasMember association missing)",
            "Document01") in errors(sub)


def test_submission_set_status_required_and_checked():
    sub = submission()
    assoc = next(o for o in sub.objects if o.kind is Kind.ASSOCIATION)
    assoc.slots = [Slot("SubmissionSetStatus", ["Copied"])]
    assert any("SubmissionSetStatus 'Copied'" in c for _, c, _ in errors(sub))
    assoc.slots = []
    assert any("needs exactly one SubmissionSetStatus" in c for _, c, _ in errors(sub))


def test_duplicate_ids_and_malformed_uuid():
    sub = submission()
    de = document(sub)
    de.classifications[0].id = de.classifications[1].id
    de.external_ids[0].id = "urn:uuid:not-a-uuid"
    ctx = [c for _, c, _ in errors(sub)]
    assert any(f"id '{de.classifications[1].id}' is used by 2 objects" in c for c in ctx)
    assert any("urn:uuid:not-a-uuid" in c and "not a valid UUID" in c for c in ctx)


def test_itl57_association_types_refused_in_registration():
    sub = submission()
    sub.objects.append(RimObject(Kind.ASSOCIATION, "u1", association_type=
                                 "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus",
                                 source="SubmissionSet01", target="urn:uuid:d831e2f9-aade-4783-b37d-fbe69811e11d"))
    assert any("belong to ITI-57" in c for _, c, _ in errors(sub))


def test_relationship_source_must_be_in_submission():
    sub = submission()
    sub.objects.append(RimObject(Kind.ASSOCIATION, "r1", association_type="urn:ihe:iti:2007:AssociationType:RPLC",
                                 source="urn:uuid:d831e2f9-aade-4783-b37d-fbe69811e11d", target="Document01"))
    assert any("source of a RPLC association must be a DocumentEntry of this submission" in c
               for _, c, _ in errors(sub))


def test_every_problem_reported_once_each():
    sub = submission()
    de = document(sub)
    de.mime_type = None
    de.object_type = "urn:uuid:00000000-0000-0000-0000-000000000000"
    de.slots = [s for s in de.slots if s.name not in ("languageCode", "sourcePatientId")]
    de.classifications = [c for c in de.classifications if c.scheme != Scheme.DE_TYPE_CODE.uuid]
    errs = errors(sub)
    assert len(errs) == 5
    assert {loc for _, _, loc in errs} == {"Document01"}
