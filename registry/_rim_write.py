"""A whole ``rim:RegistryObjectList`` back to XML (used to forward a submission over ITI-42)."""

from __future__ import annotations

from lxml import etree

from registry._rim import RimSubmission, write_classification, write_object
from soap_wsdl import ns


def write_registry_object_list(sub: RimSubmission) -> etree._Element:
    rol = etree.Element(f"{{{ns.RIM}}}RegistryObjectList", nsmap={"rim": ns.RIM})
    for obj in sub.objects:
        write_object(obj, rol)
    for cl in sub.classifications:
        write_classification(cl, rol)
    for ref in sub.object_refs:
        etree.SubElement(rol, f"{{{ns.RIM}}}ObjectRef").set("id", ref)
    return rol


def submit_objects_request(sub: RimSubmission) -> etree._Element:
    sor = etree.Element(f"{{{ns.LCM}}}SubmitObjectsRequest", nsmap={"lcm": ns.LCM, "rim": ns.RIM})
    sor.append(write_registry_object_list(sub))
    return sor
