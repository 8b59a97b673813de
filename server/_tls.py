"""Mutual TLS for ``dmp serve --tls``: the client certificate reaches the app.

No ASGI server hands the app the TLS client certificate (STACK.md §6.1), so uvicorn's HTTP protocol is
subclassed (STACK.md §6.2, verified): asyncio calls ``connection_made`` after the handshake, and every request
scope of the connection then gets the ASGI TLS extension, ``scope["extensions"]["tls"]["client_cert_chain"]``
(the leaf only: Python 3.11's ssl does not expose the verified chain).

The SSL context requires a client certificate (``CERT_REQUIRED``) chaining to ``tls_client_ca`` and TLS 1.2 or
later. Revocation and the key-usage profile of the client certificate are checked by the VIHF verifier against
the node's trust store (the TLS peer check of DMP.md §3.7 step 7), not by OpenSSL.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

from uvicorn.config import Config as UvicornConfig

from server._http import GuardedH11Protocol

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


class MTLSH11Protocol(GuardedH11Protocol):
    """uvicorn's h11 protocol (with the header deadline), adding the ASGI ``tls`` extension to every scope of
    a TLS connection."""

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


def ssl_context_factory(config: UvicornConfig, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's context (certificate, key, client CA, CERT_REQUIRED) with TLS 1.2 as the minimum version.
    Module-level so that it can be handed to worker processes."""
    context = default()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def tls_options(cert: str, key: str, client_ca: str) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run`` for HTTPS with required client certificates."""
    return {"http": MTLSH11Protocol, "ssl_certfile": cert, "ssl_keyfile": key, "ssl_ca_certs": client_ca,
            "ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_context_factory": ssl_context_factory}
