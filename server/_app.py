"""The ASGI application: routes, the SOAP request pipeline, and the wiring of registry and repository.

Pipeline of a POST (docs/architecture.md, data flow): read the body as a stream (MTOM parts to spool files, the
SOAP part to memory) -> parse the envelope with the hardened parser -> establish the principal -> dispatch
on wsa:Action -> answer (MTOM when the request was MTOM or the answer carries documents). CPU-bound work
runs in the thread pool so the event loop keeps accepting connections.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

from lxml import etree
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from consent import AccessRefused, Admission, DmpServices, Guard, Trace, XdsConsent
from pki import Principal
from portal import PortalDeps, portal_app
from registry import (
    MetadataProfile,
    Origin,
    PatientMismatch,
    Recorder,
    Registry,
    RegistryResponse,
    RimSubmission,
    Store,
    registry_response,
)
from repository import RemoteRegistry, Repository, open_blob_store
from repository._registry_port import RegistryPort
from server import _dmp_endpoint as dmp_endpoint
from server._config import Config
from server._http import GuardedHttpToolsProtocol
from server._intake import Limits, MemoryBudget, RequestRefused, Reservation, body_chunks
from server._logging import install as install_log_redaction
from server._notifications import notification_channels, notification_worker
from server._refusals import refusal_answer
from server._security import RequestContext, Security, establish_principal
from server._threads import run_in_worker
from soap_wsdl import (
    Action,
    FaultCode,
    FaultSubcode,
    MimeError,
    MtomDecoder,
    MtomMessage,
    OutgoingAttachment,
    SerializedElement,
    SoapFault,
    SoapRequest,
    mtom_content_type,
    mtom_stream,
    new_boundary,
    ns,
    parse_content_type,
    read_envelope,
    response_envelope,
    schema_document,
    wsdl_document,
)

log = logging.getLogger("dmp.server")
Endpoint = Literal["registry", "repository", "dmp"]
_FEED_BATCH = 1024 * 1024
_OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT)


Actions = Action   # the one table of actions, shared with the clients (soap_wsdl)


@dataclass
class Answer:
    action: str
    body: etree._Element | SerializedElement
    attachments: list[OutgoingAttachment] = field(default_factory=list)


Handler = Callable[[etree._Element, MtomMessage | None, Principal | None], Answer]
"""An action's handler: the SOAP body, the MTOM package, and the caller established by ``_security`` (None
only on a ``--no-vihf`` development node)."""


@dataclass
class Node:
    """The actors of one node, built from the configuration."""

    config: Config
    store: Store | None
    registry: Registry | None
    repository: Repository
    security: Security
    consent: XdsConsent | None = None
    budget: MemoryBudget = field(init=False)

    def __post_init__(self) -> None:
        self.budget = MemoryBudget(self.config.max_buffered_bytes)

    @classmethod
    def build(cls, config: Config, *, recover: bool = True) -> Node:
        """The node's actors. ``recover`` checks that the database schema is current and repairs what a crash
        left (orphan blobs): only a process that is alone on the data directory may do it — with several workers
        the parent does it before they start (and the workers do not import Alembic, ~7 MB each)."""
        store = registry = None
        port: RegistryPort
        if config.registry_url:
            if config.require_vihf and config.require_consent:
                # The consent state lives in the registry's database: a repository in front of a remote registry
                # could not decide who may read a document (docs/consent.md), so it must not serve at all.
                raise RuntimeError("a repository with a remote registry (--registry-url) cannot apply the DMP "
                                   "consent rules; run it with --no-consent only where the registry's node applies "
                                   "them to every access (test set-ups)")
            port = RemoteRegistry(config.registry_url)
        else:
            store = Store(config.database_url, sqlite_synchronous=config.sqlite_synchronous)
            if recover and not store.schema_is_current():
                raise RuntimeError(f"database {config.database_url} is not at the current schema: run `dmp init`")
            registry = port = Registry(store, max_query_results=config.max_query_results,
                                       metadata_profile=MetadataProfile(config.metadata_profile))
        security = Security(config)   # before anything else: a node without trust must not start
        if config.blob_metadata not in ("auto", "sidecar"):
            raise ValueError(f"blob_metadata must be 'auto' or 'sidecar', not {config.blob_metadata!r}")
        blobs = open_blob_store(config.blob_dir, config.blob_store_url, s3_endpoint_url=config.s3_endpoint_url,
                                sidecars=True if config.blob_metadata == "sidecar" else None,
                                lease_s=config.blob_pending_lease_s)
        if recover:
            removed = blobs.recover(port.is_registered)
            if removed:
                log.warning("removed %d orphan document(s) left by an interrupted submission", len(removed))
        consent = None
        if registry is not None and store is not None and config.require_vihf and config.require_consent:
            consent = XdsConsent(Guard(store), registry)
        return cls(config, store, registry, Repository(blobs, port, config.repository_unique_id), security,
                   consent)

    def handlers(self, endpoint: Endpoint) -> dict[str, Handler]:
        if endpoint == "repository":
            return {Actions.ITI41: self._iti41, Actions.ITI43: self._iti43}
        if endpoint == "dmp":
            return self._dmp_services()
        if self.registry is None:
            return {}
        return {Actions.ITI42: self._iti42, Actions.ITI18: self._iti18, Actions.ITI51: self._iti51,
                Actions.ITI57: self._iti57}

    def _iti41(self, body: etree._Element, mime: MtomMessage | None, principal: Principal | None) -> Answer:
        consent = self._consent(principal)
        admit = None
        if consent is not None and principal is not None:
            def admit(sub: RimSubmission) -> tuple[Origin | None, Recorder | None]:
                admission = consent.admit_submission(principal, sub, "ITI-41")
                return admission.origin, admission.trace
        resp = self.repository.provide_and_register(body, mime, admit=admit)
        return Answer(Actions.ITI41 + "Response", registry_response(resp))

    def _iti42(self, body: etree._Element, mime: MtomMessage | None, principal: Principal | None) -> Answer:
        assert self.registry is not None
        resp = self._submit_objects(body, principal, "ITI-42", XdsConsent.admit_submission,
                                    self.registry.register_submission)
        return Answer(Actions.ITI42 + "Response", registry_response(resp))

    def _iti57(self, body: etree._Element, mime: MtomMessage | None, principal: Principal | None) -> Answer:
        assert self.registry is not None
        resp = self._submit_objects(body, principal, "ITI-57", XdsConsent.admit_update,
                                    self.registry.update_submission)
        return Answer(Actions.ITI57 + "Response", registry_response(resp))

    def _submit_objects(self, body: etree._Element, principal: Principal | None, transaction: str,
                        admit: Callable[[XdsConsent, Principal, RimSubmission, str], Admission],
                        apply: Callable[..., RegistryResponse]) -> RegistryResponse:
        """An lcm:SubmitObjectsRequest (ITI-42 registration, ITI-57 update): read, admitted by the consent
        checker, applied with who filed it and its history entry in the same transaction."""
        assert self.registry is not None
        sub = self.registry.read_request(body)
        if isinstance(sub, RegistryResponse):
            return sub
        consent = self._consent(principal)
        if consent is None or principal is None:
            return apply(sub)
        admission = admit(consent, principal, sub, transaction)
        return apply(sub, origin=admission.origin, record=admission.trace)

    def _iti18(self, body: etree._Element, mime: MtomMessage | None, principal: Principal | None) -> Answer:
        return Answer(Actions.ITI18 + "Response", self._stored_query(body, principal, multi_patient=False))

    def _iti51(self, body: etree._Element, mime: MtomMessage | None, principal: Principal | None) -> Answer:
        return Answer(Actions.ITI51 + "Response", self._stored_query(body, principal, multi_patient=True))

    def _stored_query(self, body: etree._Element, principal: Principal | None, *, multi_patient: bool
                      ) -> SerializedElement:
        assert self.registry is not None
        consent = self._consent(principal)
        if consent is None or principal is None:
            return self.registry.stored_query(body, multi_patient=multi_patient)
        transaction = "ITI-51" if multi_patient else "ITI-18"
        references_only = _return_type(body) == "ObjectRef"
        key, visible, trace = consent.admit_query(principal, references_only, transaction)
        try:
            answer = self.registry.stored_query(body, multi_patient=multi_patient, document_filter=visible,
                                                patient_key=key)
        except PatientMismatch:
            consent.refuse_query(principal, references_only, transaction)
        trace.record()     # before the answer leaves: no access goes untraced
        return answer

    def _iti43(self, body: etree._Element, mime: MtomMessage | None, principal: Principal | None) -> Answer:
        consent = self._consent(principal)
        traces: list[Trace] = []
        readable = None
        if consent is not None and principal is not None:
            def readable(unique_ids: list[str]) -> set[str]:
                allowed, trace = consent.admit_retrieval(principal, unique_ids, "ITI-43")
                traces.append(trace)
                return allowed
        result = self.repository.retrieve(body, readable=readable)
        for trace in traces:
            trace.record()
        return Answer(Actions.ITI43 + "Response", result.body, result.attachments)

    def _dmp_services(self) -> dict[str, Handler]:
        """TD0.2, TD0.3, TD0.4, TD1.6 (``server._dmp_endpoint``): only where the consent checker runs."""
        if self.consent is None:
            return {}
        services = dmp_endpoint.handlers(DmpServices(self.consent.guard))

        def handler(service: dmp_endpoint.ServiceHandler) -> Handler:
            def handle(body: etree._Element, mime: MtomMessage | None, principal: Principal | None) -> Answer:
                assert principal is not None   # the consent checker runs only where a VIHF is required
                return Answer(*service(body, principal))
            return handle

        return {action: handler(service) for action, service in services.items()}

    def _consent(self, principal: Principal | None) -> XdsConsent | None:
        """The consent checker, when this node applies it (a database of its own, VIHF required)."""
        return self.consent if principal is not None else None


def _return_type(body: etree._Element) -> str:
    option = body.find(f"{{{ns.QUERY}}}ResponseOption")
    return option.get("returnType", "") if option is not None else ""


def create_app(config: Config, *, recover: bool = True) -> Starlette:
    install_log_redaction()   # before anything logs: no identifier in any record of this process
    GuardedHttpToolsProtocol.header_timeout_s = config.header_timeout_s
    node = Node.build(config, recover=recover)
    notifier = notification_worker(config, node.store) if node.store is not None else None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # the outbox is sent while the app serves (consent.NotificationWorker), and the sender stops with it
        if notifier is not None:
            notifier.start()
        try:
            yield
        finally:
            if notifier is not None:
                await run_in_threadpool(notifier.stop)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "repositoryUniqueId": config.repository_unique_id})

    def endpoint_route(endpoint: Endpoint) -> Callable[[Request], object]:
        async def handle(request: Request) -> Response:
            if request.method == "GET":   # the URL (Starlette rebuilds it per call) only for descriptions
                return _serve_description(endpoint, request, str(request.url.replace(query="")))
            return await _soap(node, endpoint, request)
        return handle

    app = _NodeApp(routes=[
        Route("/health", health),
        *(Route(path, endpoint_route(endpoint), methods=["GET", "POST"]) for path, endpoint in _SOAP_PATHS.items()),
        *_portal(node),
    ], lifespan=lifespan)
    app.state.node = node
    app.node = node
    return app


_SOAP_PATHS: dict[str, Endpoint] = {"/xds/registry": "registry", "/xds/repository": "repository",
                                    "/dmp/services": "dmp"}


class _NodeApp(Starlette):
    """The node's app: a SOAP request (POST to an endpoint's exact path) goes straight to the SOAP pipeline,
    without Starlette's middleware stack and router (~10 µs of CPU per request, issue 13); the pipeline catches
    every exception itself and answers with the same response objects. Everything else (GET descriptions,
    /health, the portal, other methods and paths, lifespan) is Starlette's, as routed above."""

    node: Node

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            endpoint = _SOAP_PATHS.get(scope["path"])
            if endpoint is not None:
                scope["app"] = self
                response = await _soap(self.node, endpoint, Request(scope, receive))
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def _portal(node: Node) -> list[Mount]:
    """The patients' space at /portal/ (docs/portal.md), where the consent checker runs on this node's database."""
    if node.consent is None or node.store is None or node.registry is None:
        return []
    return [Mount("/portal", app=portal_app(PortalDeps(
        node.store, node.registry, node.repository, node.consent.guard, notification_channels(node.config),
        source_id=node.config.repository_unique_id)))]


def _serve_description(endpoint: Endpoint, request: Request, url: str) -> Response:
    if "wsdl" in request.query_params:
        return Response(wsdl_document(endpoint, url), media_type="text/xml; charset=utf-8")
    name = request.query_params.get("xsd")
    if name:
        doc = schema_document(name, url)
        if doc is not None:
            return Response(doc, media_type="text/xml; charset=utf-8")
        return Response(f"no schema named {name!r}\n", status_code=404, media_type="text/plain")
    return Response("POST SOAP 1.2 requests here; GET ?wsdl for the service description\n",
                    media_type="text/plain")


# --- the SOAP pipeline -------------------------------------------------------------------------------


@dataclass
class _Caller:
    """Who sent the request and what it asks, established from the envelope before anything is stored."""

    soap: SoapRequest
    handler: Handler
    principal: Principal | None


@dataclass
class _Body:
    """A request body as received: the MTOM decoder with its last unfed bytes, or the plain SOAP bytes; the
    caller once the envelope is known (MTOM: as soon as its root part is complete)."""

    reservation: Reservation
    decoder: MtomDecoder | None = None
    tail: bytes = b""
    mime: MtomMessage | None = None
    caller: _Caller | None = None
    complete: bool = False     # the whole body was read (else the connection cannot carry another request)


@dataclass
class _Outcome:
    response: Response | None = None     # a complete answer, built in the worker thread
    answer: Answer | None = None         # or an answer whose documents are streamed from files
    envelope: bytes = b""
    relates_to: str | None = None


async def _soap(node: Node, endpoint: Endpoint, request: Request) -> Response:
    body = _Body(node.budget.reservation())
    tls_peer = _tls_peer(request)
    try:
        await _read_body(request, node, endpoint, body, tls_peer)
        # Everything from here to the answer runs in one worker-thread hop: small requests (most ITI-41/18)
        # pay for a single hand-off, and the event loop never parses or touches the database.
        outcome = await run_in_worker(_process, node, endpoint, body, tls_peer)
    except RequestRefused as refused:
        _discard(body.mime)
        log.info("request refused before it was read whole: HTTP %d: %s", refused.status, refused.fault.reason)
        return _fault_response(refused.fault, status=refused.status, close=True)
    except SoapFault as fault:
        _discard(body.mime)
        return _fault_response(fault, close=not body.complete)
    except ClientDisconnect:
        _discard(body.mime)
        log.info("client went away before the request was complete; nothing was stored")
        return Response(status_code=400)
    except Exception as exc:
        _discard(body.mime)
        return _fault_response(_internal_fault(exc, None), close=not body.complete)
    finally:
        body.reservation.release()   # the envelope was parsed and answered: attachments live in files
    if outcome.response is not None:
        return outcome.response
    assert outcome.answer is not None
    boundary, root_cid = new_boundary(), "root.message@dmp-xds"
    chunks = mtom_stream(outcome.envelope, outcome.answer.attachments, boundary, root_cid)
    return StreamingResponse(_then_discard(chunks, body.mime),
                             media_type=mtom_content_type(boundary, root_cid, outcome.answer.action))


def _authenticate(node: Node, endpoint: Endpoint, envelope: bytes, tls_peer: str | None) -> _Caller:
    """Parse the envelope, find the action's handler and verify the caller (SoapFault otherwise)."""
    soap = read_envelope(envelope, max_bytes=node.config.max_soap_bytes)
    handler = node.handlers(endpoint).get(soap.action)
    if handler is None:
        raise SoapFault(FaultCode.SENDER, f"action '{soap.action}' is not supported on the {endpoint} "
                        "endpoint", FaultSubcode.ACTION_NOT_SUPPORTED, soap.message_id)
    principal = establish_principal(RequestContext(soap, tls_peer), node.security)
    return _Caller(soap, handler, principal)


def _process(node: Node, endpoint: Endpoint, body: _Body, tls_peer: str | None) -> _Outcome:
    """Decode, authenticate, dispatch and answer (in a worker thread). Never raises: failures are faults."""
    relates_to: str | None = None
    try:
        if body.decoder is not None:
            body.mime = _finish_mtom(body.decoder, body.tail)   # the caller is established on the way
        else:
            body.caller = _authenticate(node, endpoint, body.tail, tls_peer)
        caller = body.caller
        if caller is None:   # unreachable: a decoded MTOM package has had its root part
            raise RuntimeError("MTOM package decoded without its root part")
        relates_to = caller.soap.message_id
        try:
            answer = caller.handler(caller.soap.body, body.mime, caller.principal)
        except AccessRefused as refused:
            answer = Answer(*refusal_answer(caller.soap.action, refused, relates_to))
    except SoapFault as fault:
        if fault.relates_to is None:
            fault.relates_to = relates_to
        _discard(body.mime)
        return _Outcome(response=_fault_response(fault))
    except Exception as exc:
        _discard(body.mime)
        return _Outcome(response=_fault_response(_internal_fault(exc, relates_to)))
    # What was asked and answered, never by whom nor about whom (the access history holds identities).
    log.debug("%s on the %s endpoint answered with %s and %d document(s)", caller.soap.action, endpoint,
              answer.action, len(answer.attachments))
    envelope = response_envelope(answer.action, relates_to, answer.body)
    if body.mime is None and not answer.attachments:
        return _Outcome(response=Response(
            envelope, media_type=f'application/soap+xml; charset=UTF-8; action="{answer.action}"'))
    if not answer.attachments:
        # An MTOM request gets an MTOM answer (docs/mtom.md §1); without documents it is small: build it whole.
        _discard(body.mime)
        boundary, root_cid = new_boundary(), "root.message@dmp-xds"
        return _Outcome(response=Response(b"".join(mtom_stream(envelope, [], boundary, root_cid)),
                                          media_type=mtom_content_type(boundary, root_cid, answer.action)))
    return _Outcome(answer=answer, envelope=envelope, relates_to=relates_to)


def _internal_fault(exc: Exception, relates_to: str | None) -> SoapFault:
    if isinstance(exc, OSError) and exc.errno in _OUT_OF_SPACE:
        # The spool (MTOM parts, inline documents) lives beside the blob store: the disk is full, which the
        # sender must hear as such (retry later, elsewhere), not as an unexplained internal error.
        log.error("out of storage space while receiving a request; nothing was stored: %s", exc)
        return SoapFault(FaultCode.RECEIVER, "the repository is out of storage space: the request was not "
                         "processed and nothing was stored", relates_to=relates_to)
    log.error("internal error while processing a SOAP request", exc_info=exc)
    return SoapFault(FaultCode.RECEIVER, "internal error: the request was not processed", relates_to=relates_to)


def _finish_mtom(decoder: MtomDecoder, tail: bytes) -> MtomMessage:
    try:
        if tail:
            decoder.feed(tail)
        message = decoder.close()
    except MimeError as exc:
        decoder.discard()
        raise SoapFault(FaultCode.SENDER, f"malformed MTOM/MIME package: {exc}") from None
    except BaseException:
        decoder.discard()
        raise
    # The root part's declared type is not checked: node-soap and some .NET stacks label a SOAP 1.2 envelope
    # type="text/xml". The envelope's namespace decides (read_envelope: VersionMismatch outside SOAP 1.2). A
    # Content-Type that does not parse is still a malformed package.
    try:
        parse_content_type(message.root_content_type)
    except MimeError as exc:
        message.discard()
        raise SoapFault(FaultCode.SENDER, f"malformed MTOM/MIME package: root part: {exc}") from None
    return message


async def _then_discard(chunks: Iterator[bytes], mime: MtomMessage | None) -> AsyncIterator[bytes]:
    try:
        async for chunk in iterate_in_threadpool(chunks):
            yield chunk
    finally:
        _discard(mime)


def _discard(mime: MtomMessage | None) -> None:
    if mime is not None:
        mime.discard()


async def _read_body(request: Request, node: Node, endpoint: Endpoint, body: _Body, tls_peer: str | None
                     ) -> None:
    """Receive the body into ``body`` within the limits of ``server._intake``.

    MTOM: parts are decoded as they arrive (in the thread pool, a batch at a time) and the caller is verified
    as soon as the root part is complete, before any byte of an attachment is written to disk; the last batch
    is left for the worker that processes the request. Plain SOAP: the envelope is read into memory (at most
    ``max_soap_bytes``) and verified by that worker."""
    config = node.config
    try:
        media_type, _params = parse_content_type(request.headers.get("content-type", ""))
    except MimeError as exc:
        raise SoapFault(FaultCode.SENDER, str(exc)) from None
    if media_type == "multipart/related":
        def on_root(root: bytes, _content_type: str) -> None:
            body.caller = _authenticate(node, endpoint, root, tls_peer)

        try:
            decoder = MtomDecoder(request.headers["content-type"], config.blob_dir / ".spool",
                                  max_root_bytes=config.max_soap_bytes, on_root=on_root)
        except MimeError as exc:
            raise SoapFault(FaultCode.SENDER, f"malformed MTOM/MIME package: {exc}") from None
        limits = Limits(config.max_request_bytes, config.body_timeout_s, config.body_min_progress_bytes)
        try:
            batch = bytearray()
            async for chunk in body_chunks(request, limits, "request"):
                batch += chunk
                body.reservation.resize(len(batch) + decoder.buffered_bytes)
                if len(batch) >= _FEED_BATCH:
                    data, batch = batch, bytearray()
                    await run_in_threadpool(decoder.feed, bytes(data))
        except MimeError as exc:
            decoder.discard()
            raise SoapFault(FaultCode.SENDER, f"malformed MTOM/MIME package: {exc}") from None
        except BaseException:
            decoder.discard()
            raise
        body.decoder, body.tail, body.complete = decoder, bytes(batch), True
        return
    if media_type == "text/xml":
        raise SoapFault(FaultCode.VERSION_MISMATCH, "text/xml is SOAP 1.1; send SOAP 1.2 as application/soap+xml")
    if media_type not in ("application/soap+xml", "application/xml"):
        raise SoapFault(FaultCode.SENDER, f"unsupported Content-Type {media_type!r}: send application/soap+xml "
                        "or multipart/related (MTOM)")
    limits = Limits(config.max_soap_bytes, config.body_timeout_s, config.body_min_progress_bytes)
    data = bytearray()
    async for chunk in body_chunks(request, limits, "SOAP message (send large documents as MTOM attachments)"):
        body.reservation.resize(len(data) + len(chunk))
        data += chunk
    body.reservation.resize(2 * len(data))   # the copy below, briefly
    body.tail, body.complete = bytes(data), True
    del data
    body.reservation.resize(len(body.tail))


def _tls_peer(request: Request) -> str | None:
    tls = (request.scope.get("extensions") or {}).get("tls")
    chain = tls.get("client_cert_chain") if tls else None
    return chain[0] if chain else None


def _fault_response(fault: SoapFault, *, status: int | None = None, close: bool = False) -> Response:
    """The fault; ``close`` when the request body was not read whole (the connection cannot be reused, and
    closing it stops a sender that is still uploading)."""
    return Response(fault.to_envelope(), status_code=status or fault.http_status,
                    headers={"Connection": "close"} if close else None,
                    media_type='application/soap+xml; charset=UTF-8; action="http://www.w3.org/2005/08/addressing/soap/fault"')
