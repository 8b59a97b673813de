"""The one place where the caller of an XDS request is established.

Every SOAP request passes through :func:`establish_principal` after the envelope is read and before any
handler reads or writes data. VIHF verification (signature, trust chain, attributes, replay) and the TLS
peer check arrive with the security issue; until then no identity is established and the function only
documents the contract: it returns the authenticated caller or raises a SoapFault.
"""

from __future__ import annotations

from dataclasses import dataclass

from soap_wsdl import SoapRequest


@dataclass(frozen=True)
class RequestContext:
    """What the pipeline knows about a request before dispatch."""

    soap: SoapRequest
    tls_peer_pem: str | None


def establish_principal(ctx: RequestContext) -> None:
    """Return the caller's identity for the consent checker, or raise SoapFault (wsse:InvalidSecurity /
    FailedAuthentication). Without VIHF verification configured, requests are processed unauthenticated."""
    return None
