"""The DMP services endpoint (``/dmp/services``): TD0.2, TD0.3, TD0.4 and TD1.6 as SOAP 1.2 operations with
the DMP's action URIs (GIE SESAM-Vitale DMP-LPS samples) and this node's compact bodies (``soap_wsdl/wsdl/dmp.xsd``,
docs/consent.md). The rules and the tracing are the consent checker's (``consent.DmpServices``); this module
reads and writes the XML."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from lxml import etree

from consent import AccessRefused, DmpServices, Reason
from pki import Principal
from registry import patient_key
from soap_wsdl import DmpAction

DMP_SERVICES_NS: Final = "urn:dmp-xds:services"
TD02, TD03, TD04, TD16 = DmpAction.TD02, DmpAction.TD03, DmpAction.TD04, DmpAction.TD16
OK: Final = "DMPOk"

ServiceHandler = Callable[[etree._Element, Principal], tuple[str, etree._Element]]


def _q(local: str) -> str:
    return f"{{{DMP_SERVICES_NS}}}{local}"


def _answer(name: str, **children: str) -> etree._Element:
    el = etree.Element(_q(name), nsmap={"dmp": DMP_SERVICES_NS})
    el.set("status", OK)
    for tag, value in children.items():
        etree.SubElement(el, _q(tag)).text = value
    return el


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _patient(body: etree._Element, principal: Principal) -> str:
    """The body's patientId, which must be the VIHF's resource-id (docs/vihf.md §7 step 9)."""
    given = (body.findtext(_q("patientId")) or "").strip()
    if not given:
        raise AccessRefused(Reason.PATIENT_MISMATCH, f"{etree.QName(body).localname} has no dmp:patientId")
    key = patient_key(given)
    vihf = patient_key(principal.patient.cx) if principal.patient is not None else None
    if key != vihf:
        raise AccessRefused(Reason.PATIENT_MISMATCH, "the request concerns another patient than the VIHF's "
                            "resource-id")
    return key


def _expect(body: etree._Element, name: str) -> None:
    if body.tag != _q(name):
        raise AccessRefused(Reason.NOT_PERMITTED, f"expected dmp:{name}, received {etree.QName(body).localname}")


def handlers(services: DmpServices) -> dict[str, ServiceHandler]:
    def existence(body: etree._Element, principal: Principal) -> tuple[str, etree._Element]:
        _expect(body, "ExistenceTestRequest")
        key = _patient(body, principal)
        e = services.existence_test(principal, key)
        return TD02.response, _answer(
            "ExistenceTestResponse", patientId=key, exists=_bool(e.exists), closed=_bool(e.closed),
            authorization=e.authorization.value, treatingDoctor=_bool(e.treating_doctor))

    def set_authorization(body: etree._Element, principal: Principal) -> tuple[str, etree._Element]:
        _expect(body, "SetAuthorizationRequest")
        key = _patient(body, principal)
        action = (body.findtext(_q("action")) or "").strip()
        if action not in ("AJOUT", "SUPPRESSION"):
            raise AccessRefused(Reason.NOT_PERMITTED, f"dmp:action {action!r}: AJOUT or SUPPRESSION expected")
        state = services.set_authorization(principal, key, grant=action == "AJOUT")
        return TD03.response, _answer("SetAuthorizationResponse", authorization=state.value)

    def list_authorizations(body: etree._Element, principal: Principal) -> tuple[str, etree._Element]:
        _expect(body, "ListAuthorizationsRequest")
        key = _patient(body, principal)
        answer = _answer("ListAuthorizationsResponse")
        for entry in services.list_authorizations(principal, key):
            el = etree.SubElement(answer, _q("authorization"))
            el.set("professional", entry.professional_id)
            el.set("state", entry.state.value)
            el.set("since", entry.since)
        return TD16.response, answer

    def patient_list(body: etree._Element, principal: Principal) -> tuple[str, etree._Element]:
        _expect(body, "PatientListRequest")
        answer = _answer("PatientListResponse")
        for key in services.list_dossiers(principal):
            etree.SubElement(answer, _q("patientId")).text = key
        return TD04.response, answer

    return {TD02: existence, TD03: set_authorization, TD16: list_authorizations, TD04: patient_list}


