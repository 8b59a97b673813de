"""Structural validation rules (ITI TF-3 §4.2, docs/conformance.md §3) as pure unit tests on ebRIM objects."""

from __future__ import annotations

import pytest
import xds_factory as f

from registry import ErrorCode, Problem
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


def found(sub, require_repo=True) -> list[tuple[Problem | None, str | None]]:
    """(catalogue member, location) of every error."""
    v = Validator(require_repository_attributes=require_repo)
    v.validate(sub)
    return [(e.problem, e.location) for e in v.errors]


def document(sub) -> RimObject:
    return next(o for o in sub.objects if o.kind is Kind.EXTRINSIC_OBJECT)


def test_valid_submission_has_no_error():
    assert errors(submission()) == []


def test_missing_repository_attributes_only_required_for_registration():
    sub = read_registry_object_list(f.registry_object_list([f.Doc(b"x", "D", send_hash=False)]))
    assert found(sub) == [(Problem.SLOT_MISSING, "D")] * 3
    assert {ctx for _, ctx, _ in errors(sub)} == {Problem.SLOT_MISSING("D", slot=s).context
                                                  for s in ("hash", "size", "repositoryUniqueId")}
    assert errors(sub, require_repo=False) == []


def test_two_submission_sets():
    sub = submission()
    ss = next(o for o in sub.objects if o.kind is Kind.REGISTRY_PACKAGE)
    twin = RimObject(Kind.REGISTRY_PACKAGE, "SS2", slots=list(ss.slots), external_ids=[], classifications=[
        Classification("n2", "SS2", node=NODE_SUBMISSION_SET)])
    sub.objects.append(twin)
    assert (Problem.SUBMISSION_SET_COUNT, None) in found(sub)


def test_limited_metadata_is_refused():
    sub = submission()
    document(sub).classifications.append(Classification("lm", "Document01", node=sorted(NODE_LIMITED_METADATA)[0]))
    assert (Problem.LIMITED_METADATA, "Document01") in found(sub)


def test_single_valued_slot_with_two_values():
    sub = submission()
    document(sub).slot("creationTime").values = ["20240101", "20240102"]
    assert found(sub) == [(Problem.SLOT_VALUE_COUNT, "Document01")]
    assert errors(sub)[0][1] == "slot 'creationTime' must have exactly one value, found 2"


def test_duplicate_slot_names():
    sub = submission()
    document(sub).slots.append(Slot("languageCode", ["en"]))
    assert (Problem.SLOT_REPEATED, "Document01") in found(sub)


def test_service_start_after_stop():
    sub = submission()
    document(sub).slot("serviceStartTime").values = ["20240313"]
    assert found(sub) == [(Problem.SERVICE_TIMES_REVERSED, "Document01")]


def test_same_day_precision_is_not_after():
    sub = submission()
    document(sub).slot("serviceStartTime").values = ["20240312"]
    assert errors(sub) == []


@pytest.mark.parametrize("pid", ["PID-2|x", "PID-4|y", "PID-12|z", "PID-19|1"])
def test_prohibited_pid_fields(pid):
    sub = submission()
    document(sub).slot("sourcePatientInfo").values.append(pid)
    assert found(sub) == [(Problem.SOURCE_PATIENT_INFO_PROHIBITED, "Document01")]
    assert pid.split("|")[0] in errors(sub)[0][1]


def test_unknown_ihe_slot_is_registry_error_and_other_urn_slot_is_kept():
    sub = submission()
    document(sub).slots += [Slot("urn:ihe:iti:xds:2099:made-up", ["1"]), Slot("urn:example:extra", ["2"])]
    assert found(sub) == [(Problem.SLOT_RESERVED_PREFIX, "Document01")]
    assert Problem.SLOT_RESERVED_PREFIX.code is ErrorCode.REGISTRY_ERROR


def test_coded_value_needs_code_and_one_scheme():
    sub = submission()
    cl = next(c for c in document(sub).classifications if c.scheme == Scheme.DE_CLASS_CODE.uuid)
    cl.node_representation = ""
    cl.slots = [Slot("codingScheme", ["a", "b"])]
    problems = [p for p, _ in found(sub)]
    assert Problem.CODE_EMPTY in problems
    assert Problem.CODING_SCHEME_COUNT in problems


def test_author_classification_rules():
    sub = submission()
    cl = next(c for c in document(sub).classifications if c.scheme == Scheme.DE_AUTHOR.uuid)
    cl.node_representation = "x"
    cl.slots = [Slot("authorRole", ["r"])]
    problems = [p for p, _ in found(sub)]
    assert Problem.AUTHOR_NODE_REPRESENTATION in problems
    assert Problem.AUTHOR_EMPTY in problems


def test_document_not_member_of_submission_set():
    sub = submission()
    sub.objects = [o for o in sub.objects if o.kind is not Kind.ASSOCIATION]
    assert (Problem.NOT_A_MEMBER, "Document01") in found(sub)


def test_submission_set_status_required_and_checked():
    sub = submission()
    assoc = next(o for o in sub.objects if o.kind is Kind.ASSOCIATION)
    assoc.slots = [Slot("SubmissionSetStatus", ["Copied"])]
    assert (Problem.SUBMISSION_SET_STATUS_UNKNOWN, assoc.id) in found(sub)
    assoc.slots = []
    assert (Problem.SUBMISSION_SET_STATUS_COUNT, assoc.id) in found(sub)


def test_duplicate_ids_and_malformed_uuid():
    sub = submission()
    de = document(sub)
    de.classifications[0].id = de.classifications[1].id
    de.external_ids[0].id = "urn:uuid:not-a-uuid"
    assert (Problem.ID_REPEATED, de.classifications[1].id) in found(sub)
    assert (Problem.ID_NOT_A_UUID, "Document01") in found(sub)


def test_itl57_association_types_refused_in_registration():
    sub = submission()
    sub.objects.append(RimObject(Kind.ASSOCIATION, "u1", association_type=
                                 "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus",
                                 source="SubmissionSet01", target="urn:uuid:d831e2f9-aade-4783-b37d-fbe69811e11d"))
    assert (Problem.UPDATE_ASSOCIATION_IN_REGISTRATION, "u1") in found(sub)


def test_relationship_source_must_be_in_submission():
    sub = submission()
    sub.objects.append(RimObject(Kind.ASSOCIATION, "r1", association_type="urn:ihe:iti:2007:AssociationType:RPLC",
                                 source="urn:uuid:d831e2f9-aade-4783-b37d-fbe69811e11d", target="Document01"))
    assert (Problem.RELATIONSHIP_SOURCE_NOT_IN_SUBMISSION, "r1") in found(sub)


def test_every_problem_reported_once_each():
    sub = submission()
    de = document(sub)
    de.mime_type = None
    de.object_type = "urn:uuid:00000000-0000-0000-0000-000000000000"
    de.slots = [s for s in de.slots if s.name not in ("languageCode", "sourcePatientId")]
    de.classifications = [c for c in de.classifications if c.scheme != Scheme.DE_TYPE_CODE.uuid]
    assert sorted(p.name for p, _ in found(sub)) == sorted(p.name for p in (
        Problem.MIME_TYPE_MISSING, Problem.OBJECT_TYPE_UNKNOWN, Problem.SLOT_MISSING, Problem.SLOT_MISSING,
        Problem.CODE_COUNT))
    assert {loc for _, loc in found(sub)} == {"Document01"}
