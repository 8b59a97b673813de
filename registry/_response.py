"""``rs:RegistryResponse`` XML (ebRS 3.0 rs.xsd; ITI TF-3 4.2.4)."""

from __future__ import annotations

from lxml import etree

from registry._errors import RegistryError, RegistryResponse, Severity
from soap_wsdl import ns


def error_list(errors: tuple[RegistryError, ...] | list[RegistryError]) -> etree._Element:
    highest = Severity.ERROR if any(e.severity is Severity.ERROR for e in errors) else Severity.WARNING
    el = etree.Element(f"{{{ns.RS}}}RegistryErrorList", nsmap={"rs": ns.RS})
    el.set("highestSeverity", highest.value)
    for e in errors:
        re_ = etree.SubElement(el, f"{{{ns.RS}}}RegistryError")
        re_.set("errorCode", e.code.value)
        re_.set("codeContext", e.context)
        re_.set("severity", e.severity.value)
        if e.location:
            re_.set("location", e.location)
    return el


def registry_response(resp: RegistryResponse) -> etree._Element:
    el = etree.Element(f"{{{ns.RS}}}RegistryResponse", nsmap={"rs": ns.RS})
    el.set("status", resp.status.value)
    if resp.errors:
        el.append(error_list(resp.errors))
    return el


def parse_registry_response(el: etree._Element) -> RegistryResponse:
    """Read a RegistryResponse (used by the repository when it talks to a remote registry over ITI-42)."""
    from registry._catalogue import Problem
    from registry._errors import ErrorCode, ResponseStatus

    codes = {c.value: c for c in ErrorCode}
    errors = []
    for re_ in el.iterfind(f"{{{ns.RS}}}RegistryErrorList/{{{ns.RS}}}RegistryError"):
        code = codes.get(re_.get("errorCode", ""), ErrorCode.REGISTRY_ERROR)
        sev = Severity.WARNING if re_.get("severity") == Severity.WARNING.value else Severity.ERROR
        context = re_.get("codeContext", "")
        errors.append(RegistryError(code, context, re_.get("location"), sev, problem=Problem.recognise(code, context)))
    status = {s.value: s for s in ResponseStatus}.get(el.get("status", ""), ResponseStatus.FAILURE)
    return RegistryResponse(status, tuple(errors))
