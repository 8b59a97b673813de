"""ebRIM objects back to XML: the stored form of every registered object, LeafClass answers, and a
submission forwarded over ITI-42.

The writer produces text directly rather than building an lxml tree: the registry stores one XML string per
object and splices stored strings into query answers, and building ~150 elements per DocumentEntry through
the lxml API cost ten times the formatting (it was most of the bulk load's time). The text is exactly what a
tree would serialize to (escaping as libxml2 does) and :func:`write_object` parses it when a tree is wanted.
Element order follows rim.xsd (ebRIM 3.0 rim.xsd): Slot*, Name?, Description?, VersionInfo?, Classification*,
ExternalIdentifier*.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from lxml import etree

from registry._rim import Classification, LocalizedString, RimObject, RimSubmission, Slot
from soap_wsdl import ns, parse_xml

RIM_DECLARATION = f' xmlns:rim="{ns.RIM}"'
# What libxml2 escapes in attribute values (tab, CR and LF too: a parser would normalize them to spaces) and
# in text (CR: a parser would turn it into LF).
_ATTRIBUTE_SPECIAL = re.compile(r'[&<>"\t\n\r]')
_ATTRIBUTE_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;", "\n": "&#10;",
                      "\r": "&#13;"}
_TEXT_SPECIAL = re.compile(r"[&<>\r]")


def attribute_text(value: str) -> str:
    """``value`` escaped for an attribute value between double quotes."""
    if _ATTRIBUTE_SPECIAL.search(value):
        return _ATTRIBUTE_SPECIAL.sub(lambda m: _ATTRIBUTE_ESCAPES[m.group()], value)
    return value


def _text(value: str) -> str:
    if _TEXT_SPECIAL.search(value):
        return _TEXT_SPECIAL.sub(lambda m: _ATTRIBUTE_ESCAPES[m.group()], value)
    return value


def object_xml(obj: RimObject) -> str:
    """``obj`` as one element, ``rim`` declared on it so that the text stands on its own.

    Raises ValueError for a value XML cannot carry (a control character), as lxml would."""
    out: list[str] = []
    _object(obj, out, RIM_DECLARATION)
    return _checked("".join(out))


def _checked(text: str) -> str:
    if not xml_compatible(text):
        raise ValueError("All strings must be XML compatible: Unicode or ASCII, no NULL bytes or control characters")
    return text


_FORBIDDEN_CHARS = (*(chr(c) for c in (*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20))), "\ufffe", "\uffff")


def xml_compatible(text: str) -> bool:
    """``text`` holds no character XML 1.0 cannot carry at all (§2.2: C0 controls but tab, LF and CR;
    surrogates; U+FFFE, U+FFFF): such text is refused like lxml refuses it, never written.

    Each forbidden character is looked for with ``in`` (a memchr-like scan), and surrogates by the UTF-8 encoder,
    which refuses them, only when the text is not ASCII: a tenth of the CPU of a regular expression's character
    class on a DocumentEntry's ~5 KB of XML, checked for every registered object (issue 13)."""
    if any(c in text for c in _FORBIDDEN_CHARS):
        return False
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:   # a surrogate code point (U+D800-U+DFFF): no UTF-8 form, no XML character
            return False
    return True


def _object(obj: RimObject, out: list[str], declaration: str) -> None:
    tag = f"rim:{obj.kind.value}"
    out.append(f"<{tag}{declaration}")
    for name, value in (("id", obj.id), ("lid", obj.lid), ("objectType", obj.object_type), ("status", obj.status),
                        ("home", obj.home), ("mimeType", obj.mime_type), ("associationType", obj.association_type),
                        ("sourceObject", obj.source), ("targetObject", obj.target)):
        if value is not None:
            out.append(f' {name}="{attribute_text(value)}"')
    if not (obj.slots or obj.name or obj.description or obj.version_name is not None or obj.classifications
            or obj.external_ids):
        out.append("/>")
        return
    out.append(">")
    _slots(obj.slots, out)
    _strings("Name", obj.name, out)
    _strings("Description", obj.description, out)
    if obj.version_name is not None:
        out.append(f'<rim:VersionInfo versionName="{attribute_text(obj.version_name)}"/>')
    for c in obj.classifications:
        _classification(c, out)
    for e in obj.external_ids:
        out.append(f'<rim:ExternalIdentifier id="{attribute_text(e.id)}" '
                   f'registryObject="{attribute_text(e.registry_object)}" '
                   f'identificationScheme="{attribute_text(e.scheme)}" value="{attribute_text(e.value)}"')
        if e.name is None:
            out.append("/>")
        else:
            out.append(">")
            _strings("Name", [LocalizedString(e.name)], out)
            out.append("</rim:ExternalIdentifier>")
    out.append(f"</{tag}>")


def _classification(c: Classification, out: list[str], declaration: str = "") -> None:
    out.append(f'<rim:Classification{declaration} id="{attribute_text(c.id)}"')
    if c.scheme is not None:
        out.append(f' classificationScheme="{attribute_text(c.scheme)}"')
    out.append(f' classifiedObject="{attribute_text(c.classified_object)}"')
    if c.node is not None:
        out.append(f' classificationNode="{attribute_text(c.node)}"')
    if c.node_representation is not None:
        out.append(f' nodeRepresentation="{attribute_text(c.node_representation)}"')
    if not (c.slots or c.name):
        out.append("/>")
        return
    out.append(">")
    _slots(c.slots, out)
    _strings("Name", c.name, out)
    out.append("</rim:Classification>")


def _slots(slots: Iterable[Slot], out: list[str]) -> None:
    for s in slots:
        out.append(f'<rim:Slot name="{attribute_text(s.name)}">')
        if s.values:
            out.append("<rim:ValueList>")
            out += [f"<rim:Value>{_text(v)}</rim:Value>" if v else "<rim:Value/>" for v in s.values]
            out.append("</rim:ValueList></rim:Slot>")
        else:
            out.append("<rim:ValueList/></rim:Slot>")


def _strings(tag: str, strings: list[LocalizedString], out: list[str]) -> None:
    if not strings:
        return
    out.append(f"<rim:{tag}>")
    for s in strings:
        out.append("<rim:LocalizedString")
        if s.lang is not None:
            out.append(f' xml:lang="{attribute_text(s.lang)}"')
        if s.charset is not None:
            out.append(f' charset="{attribute_text(s.charset)}"')
        out.append(f' value="{attribute_text(s.value)}"/>')
    out.append(f"</rim:{tag}>")


def write_object(obj: RimObject, parent: etree._Element | None = None) -> etree._Element:
    """``obj`` as an element (appended to ``parent`` when given)."""
    return _element(object_xml(obj), parent)


def write_classification(c: Classification, parent: etree._Element | None = None) -> etree._Element:
    """A Classification standing on its own (one sent at the top level of a submission)."""
    out: list[str] = []
    _classification(c, out, RIM_DECLARATION)
    return _element(_checked("".join(out)), parent)


def _element(text: str, parent: etree._Element | None) -> etree._Element:
    el = parse_xml(text.encode())
    if parent is not None:
        parent.append(el)
    return el


def registry_object_list_xml(sub: RimSubmission) -> str:
    out = [f"<rim:RegistryObjectList{RIM_DECLARATION}>"]
    for obj in sub.objects:
        _object(obj, out, "")
    for cl in sub.classifications:
        _classification(cl, out)
    out += [f'<rim:ObjectRef id="{attribute_text(ref)}"/>' for ref in sub.object_refs]
    out.append("</rim:RegistryObjectList>")
    return _checked("".join(out))


def write_registry_object_list(sub: RimSubmission) -> etree._Element:
    return parse_xml(registry_object_list_xml(sub).encode())


def submit_objects_request(sub: RimSubmission) -> etree._Element:
    sor = etree.Element(f"{{{ns.LCM}}}SubmitObjectsRequest", nsmap={"lcm": ns.LCM, "rim": ns.RIM})
    sor.append(write_registry_object_list(sub))
    return sor
