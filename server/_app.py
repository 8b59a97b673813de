"""The ASGI application: routes, the SOAP request pipeline, and the wiring of registry and repository.

Pipeline of a POST (DESIGN.md "Data flow"): read the body as a stream (MTOM parts to spool files, the
SOAP part to memory) -> parse the envelope with the hardened parser -> establish the principal -> dispatch
on wsa:Action -> answer (MTOM when the request was MTOM or the answer carries documents). CPU-bound work
runs in the thread pool so the event loop keeps accepting connections.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from lxml import etree
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from registry import Registry, Store, registry_response
from repository import FilesystemBlobStore, RemoteRegistry, Repository
from repository._registry_port import RegistryPort
from server._config import Config
from server._security import RequestContext, establish_principal
from soap_wsdl import (
    FaultCode,
    FaultSubcode,
    MimeError,
    MtomDecoder,
    MtomMessage,
    OutgoingAttachment,
    SoapFault,
    mtom_content_type,
    mtom_stream,
    new_boundary,
    parse_content_type,
    read_envelope,
    response_envelope,
    schema_document,
    wsdl_document,
)

log = logging.getLogger("dmp.server")
Endpoint = Literal["registry", "repository"]
_FEED_BATCH = 1024 * 1024
_OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT)


class Actions:
    ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
    ITI42 = "urn:ihe:iti:2007:RegisterDocumentSet-b"
    ITI43 = "urn:ihe:iti:2007:RetrieveDocumentSet"
    ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
    ITI51 = "urn:ihe:iti:2009:MultiPatientStoredQuery"
    ITI57 = "urn:ihe:iti:2010:UpdateDocumentSet"


@dataclass
class Answer:
    action: str
    body: etree._Element
    attachments: list[OutgoingAttachment] = field(default_factory=list)


@dataclass
class Node:
    """The actors of one node, built from the configuration."""

    config: Config
    store: Store | None
    registry: Registry | None
    repository: Repository

    @classmethod
    def build(cls, config: Config) -> Node:
        store = registry = None
        port: RegistryPort
        if config.registry_url:
            port = RemoteRegistry(config.registry_url)
        else:
            store = Store(config.database_url, sqlite_synchronous=config.sqlite_synchronous)
            if not store.schema_is_current():
                raise RuntimeError(f"database {config.database_url} is not at the current schema: run `dmp init`")
            registry = port = Registry(store, max_query_results=config.max_query_results)
        blobs = FilesystemBlobStore(config.blob_dir)
        removed = blobs.recover(port.is_registered)
        if removed:
            log.warning("removed %d orphan document(s) left by an interrupted submission", len(removed))
        return cls(config, store, registry, Repository(blobs, port, config.repository_unique_id))

    def handlers(self, endpoint: Endpoint) -> dict[str, Callable[[etree._Element, MtomMessage | None], Answer]]:
        if endpoint == "repository":
            return {Actions.ITI41: self._iti41, Actions.ITI43: self._iti43}
        if self.registry is None:
            return {}
        return {Actions.ITI42: self._iti42, Actions.ITI18: self._iti18, Actions.ITI51: self._iti51,
                Actions.ITI57: self._iti57}

    def _iti41(self, body: etree._Element, mime: MtomMessage | None) -> Answer:
        resp = self.repository.provide_and_register(body, mime)
        return Answer(Actions.ITI41 + "Response", registry_response(resp))

    def _iti42(self, body: etree._Element, mime: MtomMessage | None) -> Answer:
        assert self.registry is not None
        return Answer(Actions.ITI42 + "Response", registry_response(self.registry.register_request(body)))

    def _iti57(self, body: etree._Element, mime: MtomMessage | None) -> Answer:
        assert self.registry is not None
        return Answer(Actions.ITI57 + "Response", registry_response(self.registry.update_request(body)))

    def _iti18(self, body: etree._Element, mime: MtomMessage | None) -> Answer:
        assert self.registry is not None
        return Answer(Actions.ITI18 + "Response", self.registry.stored_query(body))

    def _iti51(self, body: etree._Element, mime: MtomMessage | None) -> Answer:
        assert self.registry is not None
        return Answer(Actions.ITI51 + "Response", self.registry.stored_query(body, multi_patient=True))

    def _iti43(self, body: etree._Element, mime: MtomMessage | None) -> Answer:
        result = self.repository.retrieve(body)
        return Answer(Actions.ITI43 + "Response", result.body, result.attachments)


def create_app(config: Config) -> Starlette:
    node = Node.build(config)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "repositoryUniqueId": config.repository_unique_id})

    def endpoint_route(endpoint: Endpoint) -> Callable[[Request], object]:
        async def handle(request: Request) -> Response:
            url = str(request.url.replace(query=""))
            if request.method == "GET":
                return _serve_description(endpoint, request, url)
            return await _soap(node, endpoint, request)
        return handle

    app = Starlette(routes=[
        Route("/health", health),
        Route("/xds/registry", endpoint_route("registry"), methods=["GET", "POST"]),
        Route("/xds/repository", endpoint_route("repository"), methods=["GET", "POST"]),
    ])
    app.state.node = node
    return app


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


async def _soap(node: Node, endpoint: Endpoint, request: Request) -> Response:
    mime: MtomMessage | None = None
    relates_to: str | None = None
    try:
        envelope_bytes, mime = await _read_body(request, node.config)
        soap = await run_in_threadpool(read_envelope, envelope_bytes, max_bytes=node.config.max_soap_bytes)
        relates_to = soap.message_id
        handler = node.handlers(endpoint).get(soap.action)
        if handler is None:
            raise SoapFault(FaultCode.SENDER, f"action '{soap.action}' is not supported on the {endpoint} "
                            "endpoint", FaultSubcode.ACTION_NOT_SUPPORTED, relates_to)
        establish_principal(RequestContext(soap, _tls_peer(request)))
        answer = await run_in_threadpool(handler, soap.body, mime)
    except SoapFault as fault:
        if fault.relates_to is None:
            fault.relates_to = relates_to
        _discard(mime)
        return _fault_response(fault)
    except ClientDisconnect:
        _discard(mime)
        log.info("client went away before the request was complete; nothing was stored")
        return Response(status_code=400)
    except OSError as exc:
        _discard(mime)
        if exc.errno not in _OUT_OF_SPACE:
            log.exception("internal error while processing a SOAP request")
            return _fault_response(SoapFault(FaultCode.RECEIVER, "internal error: the request was not processed",
                                             relates_to=relates_to))
        # The spool (MTOM parts, inline documents) lives beside the blob store: the disk is full, which the
        # sender must hear as such (retry later, elsewhere), not as an unexplained internal error.
        log.error("out of storage space while receiving a request; nothing was stored: %s", exc)
        return _fault_response(SoapFault(FaultCode.RECEIVER, "the repository is out of storage space: the "
                                         "request was not processed and nothing was stored", relates_to=relates_to))
    except Exception:
        _discard(mime)
        log.exception("internal error while processing a SOAP request")
        return _fault_response(SoapFault(FaultCode.RECEIVER, "internal error: the request was not processed",
                                         relates_to=relates_to))
    envelope = response_envelope(answer.action, relates_to, answer.body)
    if mime is None and not answer.attachments:
        _discard(mime)
        return Response(envelope, media_type=f'application/soap+xml; charset=UTF-8; action="{answer.action}"')
    boundary, root_cid = new_boundary(), "root.message@dmp-xds"
    chunks = mtom_stream(envelope, answer.attachments, boundary, root_cid)
    return StreamingResponse(_then_discard(chunks, mime),
                             media_type=mtom_content_type(boundary, root_cid, answer.action))


async def _then_discard(chunks: Iterator[bytes], mime: MtomMessage | None) -> AsyncIterator[bytes]:
    try:
        async for chunk in iterate_in_threadpool(chunks):
            yield chunk
    finally:
        _discard(mime)


def _discard(mime: MtomMessage | None) -> None:
    if mime is not None:
        mime.discard()


async def _read_body(request: Request, config: Config) -> tuple[bytes, MtomMessage | None]:
    """The SOAP envelope bytes, and the MTOM package when the request is multipart/related."""
    media_type, _params = parse_content_type(request.headers.get("content-type", ""))
    if media_type == "multipart/related":
        try:
            decoder = MtomDecoder(request.headers["content-type"], config.blob_dir / ".spool",
                                  max_root_bytes=config.max_soap_bytes)
        except MimeError as exc:
            raise SoapFault(FaultCode.SENDER, f"malformed MTOM/MIME package: {exc}") from None
        try:
            batch = bytearray()
            async for chunk in request.stream():
                batch += chunk
                if len(batch) >= _FEED_BATCH:
                    await run_in_threadpool(decoder.feed, bytes(batch))
                    batch.clear()
            if batch:
                await run_in_threadpool(decoder.feed, bytes(batch))
            message = decoder.close()
        except MimeError as exc:
            decoder.discard()
            raise SoapFault(FaultCode.SENDER, f"malformed MTOM/MIME package: {exc}") from None
        except BaseException:
            decoder.discard()
            raise
        start_info = parse_content_type(message.root_content_type)[1].get("type", "application/soap+xml")
        if start_info not in ("application/soap+xml", ""):
            message.discard()
            raise SoapFault(FaultCode.VERSION_MISMATCH, f"root part type {start_info!r}: SOAP 1.2 expected")
        return message.root, message
    if media_type == "text/xml":
        raise SoapFault(FaultCode.VERSION_MISMATCH, "text/xml is SOAP 1.1; send SOAP 1.2 as application/soap+xml")
    if media_type not in ("application/soap+xml", "application/xml"):
        raise SoapFault(FaultCode.SENDER, f"unsupported Content-Type {media_type!r}: send application/soap+xml "
                        "or multipart/related (MTOM)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > config.max_soap_bytes:
            raise SoapFault(FaultCode.SENDER, f"SOAP message larger than {config.max_soap_bytes} bytes; send large "
                            "documents as MTOM attachments")
    return bytes(body), None


def _tls_peer(request: Request) -> str | None:
    tls = (request.scope.get("extensions") or {}).get("tls")
    chain = tls.get("client_cert_chain") if tls else None
    return chain[0] if chain else None


def _fault_response(fault: SoapFault) -> Response:
    return Response(fault.to_envelope(), status_code=fault.http_status,
                    media_type='application/soap+xml; charset=UTF-8; action="http://www.w3.org/2005/08/addressing/soap/fault"')
