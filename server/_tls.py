"""Mutual TLS for ``dmp serve --tls``: the client certificate reaches the app.

No ASGI server hands the app the TLS client certificate, so uvicorn's HTTP protocol is subclassed: asyncio
calls ``connection_made`` after the handshake, and every request scope of the connection then gets the ASGI TLS
extension, ``scope["extensions"]["tls"]["client_cert_chain"]`` (the leaf only: Python 3.11's ssl does not expose
the verified chain).

A refused handshake (TLS 1.0/1.1 offered, no client certificate, an untrusted one) must end with the fatal
alert RFC 8446 §6.2 and RFC 5246 §7.2 require (``protocol_version``, ``certificate_required``, ``unknown_ca``):
asyncio's SSL transport drops the alert OpenSSL prepared (CPython gh-98078, fixed upstream by flushing it
before closing, not in 3.11), so clients saw an "empty reply". :class:`AlertingSSLProtocol` does that flush and
:func:`send_tls_alerts` installs it in the serving process.

The SSL context requires a client certificate (``CERT_REQUIRED``) chaining to ``tls_client_ca`` and TLS 1.2 or
later. Revocation and the key-usage profile of the client certificate are checked by the VIHF verifier against
the node's trust store (the TLS peer check of the VIHF verification), not by OpenSSL.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextlib
import ssl
from collections.abc import Callable
from typing import Any, cast

from uvicorn.config import Config as UvicornConfig

from server._http import GuardedHttpToolsProtocol

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


class MTLSProtocol(GuardedHttpToolsProtocol):
    """uvicorn's httptools protocol (with the header deadline and size limit), adding the ASGI ``tls``
    extension to every scope of a TLS connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        so = transport.get_extra_info("ssl_object")
        if so is None:
            return   # plain HTTP: no "tls" key (ASGI TLS extension spec)
        der = so.getpeercert(binary_form=True)
        tls = {"server_cert": None, "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
               "client_cert_name": None, "client_cert_error": None,
               "tls_version": _TLS_VERSIONS.get(so.version() or ""), "cipher_suite": None}
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            scope["extensions"] = {**(scope.get("extensions") or {}), "tls": tls}
            await inner(scope, receive, send)

        self.app = app


class AlertingSSLProtocol(asyncio.sslproto.SSLProtocol):
    """asyncio's SSL protocol, sending what OpenSSL left for the peer (the fatal alert of a failed handshake or
    of invalid data) before the transport is force-closed — the upstream fix of CPython gh-98078. Where
    asyncio already flushes it, the outgoing buffer is empty here and nothing more is sent."""

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        if isinstance(exc, ssl.SSLError) and self._transport is not None:
            with contextlib.suppress(OSError, RuntimeError):  # the peer is gone: nothing can be sent
                cast(Any, self)._process_outgoing()  # private to asyncio.sslproto, not in its stubs
        super()._fatal_error(exc, message)


def send_tls_alerts() -> None:
    """Make this process's asyncio TLS servers send handshake alerts: the event loop builds each connection's
    protocol from ``asyncio.sslproto.SSLProtocol`` at connection time (selector_events, base_events)."""
    asyncio.sslproto.SSLProtocol = AlertingSSLProtocol  # type: ignore[misc]


def ssl_context_factory(config: UvicornConfig, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's context (certificate, key, client CA, CERT_REQUIRED) with TLS 1.2 as the minimum version.
    Module-level so that it can be handed to worker processes; called in each of them before it serves, which
    is where the TLS alerts are turned on (:func:`send_tls_alerts`)."""
    send_tls_alerts()
    context = default()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def tls_options(cert: str, key: str, client_ca: str) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run`` for HTTPS with required client certificates."""
    return {"http": MTLSProtocol, "ssl_certfile": cert, "ssl_keyfile": key, "ssl_ca_certs": client_ca,
            "ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_context_factory": ssl_context_factory}
