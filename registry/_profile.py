"""Metadata profiles: which codes the registry accepts beyond IHE's structural rules.

``ihe`` is ITI TF-3 §4.2 alone (any code in any code system), for testers who run IHE test plans with
their own code systems. ``dmp`` adds the DMP's value sets (the JDV of the ANS "Terminologies de santé",
stored as data in ``registry/valuesets/``, one file per JDV with its version) and the DMP's rules on them
(``docs/conformance.md``): a new release of a value set is a data change, not a code change.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from registry._catalogue import Problem
from registry._errors import RegistryError
from registry._rim import Classification, RimObject
from registry._vocabulary import Scheme

HL7_CONFIDENTIALITY = "2.16.840.1.113883.5.25"  # TRE_A08 (HL7 Confidentiality N/R/V)


class MetadataProfile(enum.Enum):
    IHE = "ihe"
    DMP = "dmp"


@dataclass(frozen=True)
class ValueSet:
    """One JDV: its name and version, and the accepted codes by codingScheme (OID, or ``URN``/``ASTM`` for
    the two ANS nomenclatures named that way)."""

    name: str
    version: str
    codes: dict[str, frozenset[str]]

    def __contains__(self, coded: tuple[str, str]) -> bool:
        scheme, code = coded
        return code in self.codes.get(scheme, frozenset())

    @property
    def label(self) -> str:
        return f"{self.name} version {self.version}"


def _read(name: str) -> Any:
    return json.loads((resources.files("registry") / "valuesets" / f"{name}.json").read_text(encoding="utf-8"))


def _value_set(name: str) -> ValueSet:
    raw = _read(name)
    return ValueSet(raw["name"], raw["version"],
                    {s["oid"]: frozenset(s["codes"]) for s in raw["systems"]})


@dataclass(frozen=True)
class DmpValueSets:
    by_scheme: dict[Scheme, ValueSet]
    # (typeCode scheme, typeCode) -> (classCode scheme, classCode), from ASS_X16
    type_class: dict[tuple[str, str], tuple[str, str]]
    type_class_label: str


@cache
def dmp_value_sets() -> DmpValueSets:
    files = {
        Scheme.DE_CLASS_CODE: "JDV_J57-ClassCode-DMP",
        Scheme.DE_TYPE_CODE: "JDV_J66-TypeCode-DMP",
        Scheme.DE_FORMAT_CODE: "JDV_J60-FormatCode-DMP",
        Scheme.DE_HCFT_CODE: "JDV_J61-HealthcareFacilityTypeCode-DMP",
        Scheme.DE_PRACTICE_SETTING_CODE: "JDV_J62-PracticeSettingCode-DMP",
        Scheme.DE_CONFIDENTIALITY_CODE: "JDV_J58-ConfidentialityCode-DMP",
        Scheme.SS_CONTENT_TYPE_CODE: "JDV_J59-ContentTypeCode-DMP",
    }
    x16 = _read("ASS_X16-CorrespondanceType-Classe-DMP")
    type_class = {(g["type_system"], p["type"]): (g["class_system"], p["class"])
                  for g in x16["map"] for p in g["pairs"]}
    return DmpValueSets({s: _value_set(f) for s, f in files.items()}, type_class,
                        f"{x16['name']} version {x16['version']}")


def _coded(cl: Classification) -> tuple[str, str]:
    coding = cl.slot("codingScheme")
    return (coding.values[0] if coding and coding.values else "", cl.node_representation or "")


def dmp_problems(obj: RimObject, schemes: tuple[Scheme, ...]) -> list[RegistryError]:
    """What the DMP profile refuses in one DocumentEntry or SubmissionSet, each naming the attribute and the
    value (DMP profile of the CI-SIS, docs/conformance.md §7): codes outside their JDV, a typeCode whose ASS_X16
    class is not the classCode, a confidentialityCode list without exactly one HL7 code."""
    vs = dmp_value_sets()
    problems: list[RegistryError] = []
    for scheme in schemes:
        allowed = vs.by_scheme[scheme]
        for cl in obj.classified(scheme.uuid):
            coded = _coded(cl)
            if coded[1] and coded[0] and coded not in allowed:
                problems.append(Problem.CODE_NOT_IN_VALUE_SET(obj.id, attribute=scheme.attribute, code=coded[1],
                                                              scheme=coded[0], value_set=allowed.label))
    if Scheme.DE_TYPE_CODE in schemes:
        types = [_coded(c) for c in obj.classified(Scheme.DE_TYPE_CODE.uuid)]
        classes = [_coded(c) for c in obj.classified(Scheme.DE_CLASS_CODE.uuid)]
        # Only between codes of their value sets: a code outside them is reported as such above.
        if len(types) == 1 and len(classes) == 1 and types[0] in vs.type_class \
                and classes[0] in vs.by_scheme[Scheme.DE_CLASS_CODE] and vs.type_class[types[0]] != classes[0]:
            problems.append(Problem.TYPE_NOT_IN_CLASS(obj.id, type_code=types[0][1],
                                                      expected=vs.type_class[types[0]][1],
                                                      correspondence=vs.type_class_label, class_code=classes[0][1]))
    if Scheme.DE_CONFIDENTIALITY_CODE in schemes:
        hl7 = [c for s, c in map(_coded, obj.classified(Scheme.DE_CONFIDENTIALITY_CODE.uuid))
               if s == HL7_CONFIDENTIALITY]
        if len(hl7) != 1:
            problems.append(Problem.HL7_CONFIDENTIALITY_COUNT(obj.id, scheme=HL7_CONFIDENTIALITY, count=len(hl7),
                                                              codes=f" ({', '.join(hl7)})" if hl7 else ""))
    return problems


DE_PROFILE_SCHEMES = (Scheme.DE_CLASS_CODE, Scheme.DE_TYPE_CODE, Scheme.DE_FORMAT_CODE, Scheme.DE_HCFT_CODE,
                      Scheme.DE_PRACTICE_SETTING_CODE, Scheme.DE_CONFIDENTIALITY_CODE)
SS_PROFILE_SCHEMES = (Scheme.SS_CONTENT_TYPE_CODE,)
