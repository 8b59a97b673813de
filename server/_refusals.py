"""The consent checker's refusals on the wire (PDT-INF-527; docs/consent.md "On the wire").

In an XDS transaction, a patient without a DMP on this node is an XDS error in the transaction's own answer
(``XDSUnknownPatientId``, ITI TF-3 Table 4.2.4.1-2), and so is a consent state that cannot be read or written
(``XDSRegistryError``: the database is down, nothing was served); every other refusal refuses the whole request
with a SOAP 1.2 ``Sender`` fault whose Subcode is the DMP's (``DMPAccessDeniedByRightsService``, or
``DMPAccessDenied`` when the request concerns another patient than the VIHF), and whose reason names the rule,
without any identifier.
"""

from __future__ import annotations

from lxml import etree

from consent import AccessRefused, Reason
from registry import (
    Problem,
    RegistryResponse,
    ResponseStatus,
    adhoc_query_response,
    registry_response,
)
from soap_wsdl import Action, FaultCode, FaultSubcode, SerializedElement, SoapFault, ns

XDS_ACTIONS = frozenset(Action)


def refusal_answer(action: str, refused: AccessRefused, relates_to: str | None
                   ) -> tuple[str, etree._Element | SerializedElement]:
    """(response action, body) answering ``refused``, or raise the SoapFault that does."""
    reason = f"access refused [{refused.reason.code}, {refused.reason.dmp_subcode}]: {refused.detail}"
    if action not in XDS_ACTIONS or refused.reason not in (Reason.UNKNOWN_PATIENT, Reason.UNAVAILABLE):
        if refused.reason is Reason.UNAVAILABLE:
            raise SoapFault(FaultCode.RECEIVER, reason, relates_to=relates_to)
        subcode = (FaultSubcode.DMP_ACCESS_DENIED if refused.reason in (Reason.PATIENT_MISMATCH, Reason.UNKNOWN_PATIENT)
                   else FaultSubcode.DMP_ACCESS_DENIED_BY_RIGHTS_SERVICE)
        raise SoapFault(FaultCode.SENDER, reason, subcode, relates_to)
    unknown = refused.reason is Reason.UNKNOWN_PATIENT
    error = Problem.PATIENT_WITHOUT_DMP(None, patient=refused.patient or "") if unknown \
        else Problem.CONSENT_UNAVAILABLE(None)
    if action in (Action.ITI18, Action.ITI51):
        return action + "Response", adhoc_query_response(ResponseStatus.FAILURE, [error])
    response = registry_response(RegistryResponse(ResponseStatus.FAILURE, (error,)))
    if action == Action.ITI43:
        root = etree.Element(f"{{{ns.XDSB}}}RetrieveDocumentSetResponse", nsmap={"xdsb": ns.XDSB, "rs": ns.RS})
        root.append(response)
        return action + "Response", root
    return action + "Response", response
