"""How the repository reaches the registry: in-process, or as a separate actor over ITI-42.

Both sides speak :class:`RegistryPort`; the remote one sends a SOAP 1.2 ITI-42 request with WS-Addressing
and relays the registry's RegistryResponse unchanged (ITI TF-2b 3.41.4.1.3; docs/conformance.md §4)."""

from __future__ import annotations

import logging
from typing import Protocol

from registry import (
    Origin,
    Problem,
    Recorder,
    RegistryResponse,
    ResponseStatus,
    RimSubmission,
    parse_registry_response,
    submit_objects_request,
)
from soap_wsdl import Action, SoapFault, ns, read_envelope, request_envelope

log = logging.getLogger(__name__)
ITI42_ACTION = Action.ITI42


class RegistryPort(Protocol):
    def register_submission(self, sub: RimSubmission, *, origin: Origin | None = None,
                            record: Recorder | None = None) -> RegistryResponse:
        """Register ``sub``; ``origin`` and ``record`` as for :meth:`registry.Registry.register_submission`."""
        ...

    def is_registered(self, unique_id: str) -> bool | None:
        """True/False when known; None when this port cannot tell (the caller then keeps waiting)."""
        ...


class RemoteRegistry:
    """A Document Registry reached over ITI-42 at ``url`` (e.g. ``http://host:8080/xds/registry``)."""

    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        import httpx  # here, not at module level: a node with its registry in-process never loads it (~3 MB)

        self.url = url
        self._client = httpx.Client(timeout=timeout)

    def register_submission(self, sub: RimSubmission, *, origin: Origin | None = None,
                            record: Recorder | None = None) -> RegistryResponse:
        if origin is not None or record is not None:
            # The consent state lives with the registry's database; a repository in front of a remote registry
            # has none, and runs without the consent checker (see docs/consent.md).
            raise ValueError("a remote registry cannot record the origin or the access history of a submission")
        import httpx

        envelope = request_envelope(ITI42_ACTION, submit_objects_request(sub), to=self.url)
        try:
            r = self._client.post(self.url, content=envelope, headers={
                "Content-Type": f'application/soap+xml; charset=UTF-8; action="{ITI42_ACTION}"'})
            reply = read_envelope(r.content)
        except (httpx.HTTPError, SoapFault) as exc:
            log.warning("registry %s not reachable: %s", self.url, exc)
            return RegistryResponse(ResponseStatus.FAILURE, (
                Problem.REGISTRY_UNREACHABLE("repository.register", url=self.url, failure=exc),))
        if reply.body.tag != f"{{{ns.RS}}}RegistryResponse":
            return RegistryResponse(ResponseStatus.FAILURE,
                                    (Problem.REGISTRY_ANSWER_NOT_A_RESPONSE("repository.register"),))
        return parse_registry_response(reply.body)

    def is_registered(self, unique_id: str) -> bool | None:
        # Without a query transaction to the remote registry a pending blob left by a crash cannot be
        # confirmed or refuted; it stays pending (never served) until an operator decides.
        return None

    def close(self) -> None:
        self._client.close()

