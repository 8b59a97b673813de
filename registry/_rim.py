"""ebRIM 3.0 objects as plain data, read from their XML form (``_rim_write`` writes it).

This layer is structural only: it keeps what was on the wire (ids may still be symbolic, values are not
checked). Validation (``_validate``) works on it and reports errors against what the sender wrote;
``_model`` turns validated objects into typed XDS metadata. Element order on output follows rim.xsd
(ebRIM 3.0 rim.xsd): Slot*, Name?, Description?, VersionInfo?, Classification*, ExternalIdentifier*.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from lxml import etree

from soap_wsdl import ns

_RIM = ns.RIM


def _q(local: str) -> str:
    return f"{{{_RIM}}}{local}"


class Kind(enum.Enum):
    EXTRINSIC_OBJECT = "ExtrinsicObject"
    REGISTRY_PACKAGE = "RegistryPackage"
    ASSOCIATION = "Association"


@dataclass
class LocalizedString:
    value: str
    lang: str | None = None
    charset: str | None = None


@dataclass
class Slot:
    name: str
    values: list[str]


@dataclass
class Classification:
    id: str
    classified_object: str
    scheme: str | None = None
    node: str | None = None
    node_representation: str | None = None
    slots: list[Slot] = field(default_factory=list)
    name: list[LocalizedString] = field(default_factory=list)

    def slot(self, name: str) -> Slot | None:
        return _slot(self.slots, name)


@dataclass
class ExternalIdentifier:
    id: str
    registry_object: str
    scheme: str
    value: str
    name: str | None = None


@dataclass
class RimObject:
    """An ExtrinsicObject, RegistryPackage or Association with everything nested in it."""

    kind: Kind
    id: str
    lid: str | None = None
    status: str | None = None
    object_type: str | None = None
    home: str | None = None
    mime_type: str | None = None
    slots: list[Slot] = field(default_factory=list)
    name: list[LocalizedString] = field(default_factory=list)
    description: list[LocalizedString] = field(default_factory=list)
    version_name: str | None = None
    classifications: list[Classification] = field(default_factory=list)
    external_ids: list[ExternalIdentifier] = field(default_factory=list)
    association_type: str | None = None
    source: str | None = None
    target: str | None = None

    def slot(self, name: str) -> Slot | None:
        return _slot(self.slots, name)

    def slot_value(self, name: str) -> str | None:
        s = _slot(self.slots, name)
        return s.values[0] if s is not None and s.values else None

    def classified(self, scheme: str) -> list[Classification]:
        return [c for c in self.classifications if c.scheme == scheme]

    def external_id(self, scheme: str) -> str | None:
        for e in self.external_ids:
            if e.scheme == scheme:
                return e.value
        return None


def _slot(slots: list[Slot], name: str) -> Slot | None:
    # A plain loop: validation and the model look slots up ~35 times per DocumentEntry, and next() over a
    # generator costs twice as much.
    for s in slots:
        if s.name == name:
            return s
    return None


@dataclass
class RimSubmission:
    """The content of an ``lcm:SubmitObjectsRequest``'s ``rim:RegistryObjectList``."""

    objects: list[RimObject] = field(default_factory=list)
    classifications: list[Classification] = field(default_factory=list)  # top-level ones
    object_refs: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # local names of elements we do not accept


# --- XML -> objects ---------------------------------------------------------------------------------


def read_registry_object_list(rol: etree._Element | None) -> RimSubmission:
    sub = RimSubmission()
    if rol is None:
        return sub
    for el in rol:
        if not isinstance(el.tag, str):
            continue
        qn = etree.QName(el)
        if qn.namespace != _RIM:
            sub.unknown.append(qn.localname)
        elif qn.localname in ("ExtrinsicObject", "RegistryPackage", "Association"):
            sub.objects.append(read_object(el))
        elif qn.localname == "Classification":
            sub.classifications.append(_read_classification(el, default_object=""))
        elif qn.localname == "ObjectRef":
            sub.object_refs.append(el.get("id", ""))
        else:
            sub.unknown.append(qn.localname)
    return sub


def read_object(el: etree._Element) -> RimObject:
    kind = Kind(etree.QName(el).localname)
    obj = RimObject(
        kind=kind,
        id=el.get("id", ""),
        lid=el.get("lid"),
        status=el.get("status"),
        object_type=el.get("objectType"),
        home=el.get("home"),
        mime_type=el.get("mimeType"),
        association_type=el.get("associationType"),
        source=el.get("sourceObject"),
        target=el.get("targetObject"),
    )
    for child in el:
        # One dict look-up of the tag ("{namespace}local") instead of two QName objects per child: elements of
        # other namespaces, rim elements that carry nothing we keep, comments and PIs are all skipped.
        local = _OBJECT_CHILDREN.get(child.tag) if isinstance(child.tag, str) else None
        if local is None:
            continue
        if local == "Slot":
            obj.slots.append(_read_slot(child))
        elif local == "Name":
            obj.name = _read_strings(child)
        elif local == "Description":
            obj.description = _read_strings(child)
        elif local == "VersionInfo":
            obj.version_name = child.get("versionName")
        elif local == "Classification":
            obj.classifications.append(_read_classification(child, default_object=obj.id))
        else:
            obj.external_ids.append(
                ExternalIdentifier(
                    id=child.get("id", ""),
                    registry_object=child.get("registryObject", obj.id),
                    scheme=child.get("identificationScheme", ""),
                    value=child.get("value", ""),
                    name=_first_string(child.find(_NAME)),
                )
            )
    return obj


_VALUE_LIST, _VALUE = _q("ValueList"), _q("Value")
_SLOT, _NAME, _LOCALIZED_STRING = _q("Slot"), _q("Name"), _q("LocalizedString")
_OBJECT_CHILDREN = {_q(local): local for local in ("Slot", "Name", "Description", "VersionInfo", "Classification",
                                                   "ExternalIdentifier")}


def _read_slot(el: etree._Element) -> Slot:
    # iterchildren filters by tag in libxml2; iterfind's path goes through lxml's Python ElementPath, and
    # slots are the most numerous elements of a submission (issue 13 profile).
    values = [(v.text or "") for vl in el.iterchildren(_VALUE_LIST) for v in vl.iterchildren(_VALUE)]
    return Slot(el.get("name", ""), values)


def _read_strings(el: etree._Element) -> list[LocalizedString]:
    return [
        LocalizedString(ls.get("value", ""), ls.get(f"{{{ns.XML}}}lang"), ls.get("charset"))
        for ls in el.iterchildren(_LOCALIZED_STRING)
    ]


def _first_string(el: etree._Element | None) -> str | None:
    if el is None:
        return None
    ls = el.find(_LOCALIZED_STRING)
    return ls.get("value") if ls is not None else None


def _read_classification(el: etree._Element, default_object: str) -> Classification:
    c = Classification(
        id=el.get("id", ""),
        classified_object=el.get("classifiedObject", default_object),
        scheme=el.get("classificationScheme"),
        node=el.get("classificationNode"),
        node_representation=el.get("nodeRepresentation"),
    )
    for child in el:
        if not isinstance(child.tag, str):
            continue
        if child.tag == _SLOT:
            c.slots.append(_read_slot(child))
        elif child.tag == _NAME:
            c.name = _read_strings(child)
    return c
