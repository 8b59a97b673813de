"""The DMP metadata profile (docs/conformance.md): value sets as data, refusals naming attribute and value."""

from __future__ import annotations

import json
from importlib import resources

import pytest
import xds_factory as f

from registry import ErrorCode, MetadataProfile, Problem
from registry._model import Code
from registry._profile import dmp_value_sets
from registry._rim import read_registry_object_list
from registry._validate import Validator
from registry._vocabulary import Scheme

LOINC, TRE_A03, TRE_A05 = "2.16.840.1.113883.6.1", "1.2.250.1.213.1.1.4.1", "1.2.250.1.213.1.1.4.12"
HL7_CONF, TRE_A07 = "2.16.840.1.113883.5.25", "1.2.250.1.213.1.1.4.13"


def errors(profile: MetadataProfile = MetadataProfile.DMP, ss=None, **meta):
    sub = read_registry_object_list(f.registry_object_list([f.Doc(b"x", "Document01", meta=meta)], ss=ss,
                                                           repository_attributes=True))
    v = Validator(require_repository_attributes=True, profile=profile)
    v.validate(sub)
    return [(e.problem, e.context, e.location) for e in v.errors]


def test_factory_metadata_is_dmp_valid():
    assert errors() == []


@pytest.mark.parametrize(("attribute", "code", "jdv"), [
    ("class_code", Code("99", TRE_A03, "Document technique"), "JDV_J57-ClassCode-DMP version 20230922120000"),
    ("format_code", Code("urn:example:format", "1.3.6.1.4.1.19376.1.2.3", "x"), "JDV_J60-FormatCode-DMP"),
    ("healthcare_facility_type_code", Code("XX99", "1.2.250.1.71.4.2.4", "x"),
     "JDV_J61-HealthcareFacilityTypeCode-DMP"),
    ("practice_setting_code", Code("ETABLISSEMENT", "1.2.3.4", "wrong system"), "JDV_J62-PracticeSettingCode-DMP"),
])
def test_code_outside_its_value_set_is_refused_naming_attribute_and_value(attribute, code, jdv):
    found = errors(**{attribute: code})
    assert len(found) == 1, found
    problem, context, location = found[0]
    assert problem is Problem.CODE_NOT_IN_VALUE_SET
    assert problem.code is ErrorCode.REGISTRY_METADATA_ERROR
    assert location == "Document01"
    assert f"'{code.code}' (codingScheme {code.scheme})" in context
    assert jdv in context


def test_ihe_profile_accepts_any_code():
    assert errors(MetadataProfile.IHE, class_code=Code("99", "1.2.3.4.5", "x"),
                  type_code=Code("T", "1.2.3", "t"), confidentiality_codes=[Code("X", "1.2.3", "x")]) == []


def test_type_code_must_belong_to_the_class_code_per_ass_x16():
    found = errors(type_code=Code("18748-4", LOINC, "CR d'imagerie médicale"))  # class 31, factory sends 10
    assert [p for p, _, _ in found] == [Problem.TYPE_NOT_IN_CLASS]
    assert [c for _, c, _ in found] == [
        "typeCode '18748-4' belongs to classCode '31' (ASS_X16-CorrespondanceType-Classe-DMP version "
        "20240223120000), not to classCode '10'"]
    assert errors(type_code=Code("18748-4", LOINC, "x"), class_code=Code("31", TRE_A03, "Imagerie")) == []
    assert errors(type_code=Code("REMB", TRE_A05, "x"), class_code=Code("60", TRE_A03, "Remboursement")) == []


def test_unknown_type_code_is_refused():
    (found,) = errors(type_code=Code("11111-1", LOINC, "x"))
    assert found[0] is Problem.CODE_NOT_IN_VALUE_SET
    assert "typeCode '11111-1' (codingScheme 2.16.840.1.113883.6.1) is not in JDV_J66-TypeCode-DMP" in found[1]


def test_confidentiality_needs_exactly_one_hl7_code_and_tre_a07_codes_in_the_value_set():
    ok = [Code("N", HL7_CONF, "Normal"), Code("MASQUE_PS", TRE_A07, "Masqué aux PS")]
    assert errors(confidentiality_codes=ok) == []
    (only_a07,) = errors(confidentiality_codes=[Code("INVISIBLE_PATIENT", TRE_A07, "x")])
    assert only_a07[0] is Problem.HL7_CONFIDENTIALITY_COUNT
    assert "found 0" in only_a07[1]
    (two,) = errors(confidentiality_codes=[Code("N", HL7_CONF, "x"), Code("R", HL7_CONF, "x")])
    assert "found 2 (N, R)" in two[1]
    (unknown,) = errors(confidentiality_codes=[Code("N", HL7_CONF, "x"), Code("SECRET", TRE_A07, "x")])
    assert unknown[0] is Problem.CODE_NOT_IN_VALUE_SET
    assert "confidentialityCode 'SECRET'" in unknown[1]


def test_submission_set_content_type_code_in_j59():
    ss = f.submission_set()
    ss.content_type_code = Code("99", "1.2.250.1.213.2.2", "x")
    (found,) = errors(ss=ss)
    assert found[0] is Problem.CODE_NOT_IN_VALUE_SET
    assert found[2] == "SubmissionSet01"
    assert "contentTypeCode '99' (codingScheme 1.2.250.1.213.2.2) is not in JDV_J59-ContentTypeCode-DMP" in found[1]


def test_every_value_set_file_names_its_jdv_and_version_and_the_x16_types_are_all_in_j66():
    folder = resources.files("registry") / "valuesets"
    files = sorted(p.name for p in folder.iterdir() if p.name.endswith(".json"))
    assert len(files) == 8
    for name in files:
        raw = json.loads((folder / name).read_text(encoding="utf-8"))
        assert name == f"{raw['name']}.json"
        assert raw["version"]
    vs = dmp_value_sets()
    for (scheme, code), (class_scheme, class_code) in vs.type_class.items():
        assert (scheme, code) in vs.by_scheme[Scheme.DE_TYPE_CODE]
        assert (class_scheme, class_code) in vs.by_scheme[Scheme.DE_CLASS_CODE]
