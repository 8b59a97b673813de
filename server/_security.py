"""The one place where the caller of an XDS request is established.

Every SOAP request passes through :func:`establish_principal` after the envelope is read and the action is
known, and before any handler reads or writes data. It verifies the VIHF (docs/vihf.md §7: signature, trust
chain, revocation, attributes, identity binding with the TLS client certificate, freshness, replay) with a
:class:`~pki.VihfVerifier` built once per node (:class:`Security`), and returns the :class:`~pki.Principal`
the handlers (and later the consent checker) receive — or raises a SoapFault whose reason names the failed
check (docs/vihf.md §8) without stack traces or key material.

Seen assertion IDs outlive a restart (an in-process cache forgot them, and a VIHF already used was accepted
again for the rest of its validity) and are shared by every process that may receive the replay: on a
SQLite node, ``replay.db`` of the data directory (:class:`~pki.SharedReplayStore`: the workers of
``dmp serve --workers N``); when the database is PostgreSQL, its ``seen_assertion`` table
(:class:`~pki.DatabaseReplayStore`: every node of the DMP, docs/deployment.md).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from sqlalchemy import NullPool, create_engine

from pki import (
    DatabaseReplayStore,
    Principal,
    ReplayStore,
    SharedReplayStore,
    TrustStore,
    VihfError,
    VihfRefusal,
    VihfVerifier,
    find_assertion,
)
from registry import AutocommitConnections
from server._config import Config
from soap_wsdl import FaultCode, FaultSubcode, SoapFault, SoapRequest

log = logging.getLogger("dmp.security")

REPLAY_FILE = "replay.db"

#: Refusals about the shape of the wsse:Security header and its assertion (WSS 1.0 ``InvalidSecurity``);
#: every other refusal is about who signed and whether that can be trusted (``FailedAuthentication``).
_INVALID_SECURITY = frozenset({
    VihfRefusal.MISSING_ASSERTION, VihfRefusal.MULTIPLE_ASSERTIONS, VihfRefusal.MALFORMED_ASSERTION,
    VihfRefusal.COMMENT_OR_PI, VihfRefusal.SIGNATURE_MISSING, VihfRefusal.SIGNATURE_MISPLACED,
    VihfRefusal.SIGNATURE_MALFORMED, VihfRefusal.DUPLICATE_ID, VihfRefusal.REFERENCE_MISMATCH,
    VihfRefusal.ALGORITHM_NOT_ALLOWED,
})
#: Details that come from a library rather than from our own checks: replaced by a fixed text.
_FIXED_TEXT = {
    VihfRefusal.SIGNATURE_INVALID: "the signature value or the digest of the assertion does not verify",
}
_MAX_DETAIL = 240


@dataclass(frozen=True)
class RequestContext:
    """What the pipeline knows about a request before dispatch."""

    soap: SoapRequest
    tls_peer_pem: str | None


class Security:
    """The node's VIHF verification, built from the configuration (trust store, replay cache).

    The trust files (anchors and CRLs) are read at start-up and read again when one of them changes (checked
    at most every ``config.trust_recheck_s`` seconds, on the next request): a CA publishes a new CRL before
    the current one's nextUpdate, and a node that kept the old one would accept a card revoked since, then
    refuse every card once that CRL expired (no current CRL: revocation unknown). Files that cannot be loaded
    (half-written, not signed by a configured CA) are reported in the log and the trust in use stays."""

    def __init__(self, config: Config) -> None:
        self.require_vihf = config.require_vihf
        self.verifier: VihfVerifier | None = None
        if not config.require_vihf:
            return
        if not config.trust_anchors:
            raise RuntimeError("VIHF verification is required but no trust_anchors are configured: run "
                               "`dmp init --trust-anchor PEM ...` (or `dmp init` for the demo PKI)")
        self._config = config
        self._files = [config.path(name) for name in (*config.trust_anchors, *config.crls)]
        self._seen = _file_states(self._files)
        self._next_check = time.monotonic() + config.trust_recheck_s
        self._reloading = threading.Lock()
        self._replay: ReplayStore = replay_store(config)
        self.verifier = VihfVerifier(trust_store(config), replay_cache=self._replay)

    def current_verifier(self) -> VihfVerifier | None:
        """The verifier for this request: rebuilt first if the trust files changed since they were read."""
        if self.verifier is not None and time.monotonic() >= self._next_check \
                and self._reloading.acquire(blocking=False):
            try:
                self._next_check = time.monotonic() + self._config.trust_recheck_s
                states = _file_states(self._files)
                if states != self._seen:
                    self._seen = states   # a file that fails to load is retried when it changes again
                    self._reload()
            finally:
                self._reloading.release()
        return self.verifier

    def _reload(self) -> None:
        try:
            trust = trust_store(self._config)
        except (OSError, ValueError, RuntimeError) as failed:
            log.error("trust anchors or CRLs changed but cannot be loaded (%s); the previous ones stay in use",
                      failed)
            return
        self.verifier = VihfVerifier(trust, replay_cache=self._replay)   # the same seen assertion IDs
        log.warning("trust anchors and CRLs reloaded: %s", ", ".join(p.name for p in self._files))


def replay_store(config: Config) -> ReplayStore:
    """Where this node remembers seen assertion IDs: the shared database's table when several nodes may share
    it (PostgreSQL), else ``replay.db`` beside the node's SQLite registry."""
    if config.shared_database:
        # An engine of its own, without a pool: the store's connections are made through it and kept apart
        # (one round trip per check, no ping: registry.AutocommitConnections), away from any registry
        # transaction; at most 12 open (the engine pool's 4 + 8 before), 4 kept idle.
        engine = create_engine(config.database_url, poolclass=NullPool)
        return DatabaseReplayStore(AutocommitConnections(engine, max_open=12, max_idle=4))
    return SharedReplayStore(config.path(REPLAY_FILE))


def _file_states(files: list[Path]) -> list[tuple[int, int, int] | None]:
    """What tells a rewritten or replaced file: (inode, size, mtime in ns); None for a missing file."""
    states: list[tuple[int, int, int] | None] = []
    for path in files:
        try:
            st = path.stat()
        except OSError:
            states.append(None)
            continue
        states.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return states


def trust_store(config: Config) -> TrustStore:
    """The configured CA certificates (self-signed ones are anchors, the others intermediates) and CRLs."""
    certs = [c for name in config.trust_anchors
             for c in x509.load_pem_x509_certificates(config.path(name).read_bytes())]
    anchors = [c for c in certs if c.subject == c.issuer]
    intermediates = [c for c in certs if c.subject != c.issuer]
    if not anchors:
        raise RuntimeError("trust_anchors hold no self-signed (root) CA certificate")
    crls = [_load_crl(config.path(name).read_bytes()) for name in config.crls]
    return TrustStore(anchors, intermediates, crls)


def _load_crl(data: bytes) -> x509.CertificateRevocationList:
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def establish_principal(ctx: RequestContext, security: Security) -> Principal | None:
    """The caller's identity (the verified VIHF), or SoapFault. None only when the node runs with
    ``--no-vihf`` (development)."""
    verifier = security.current_verifier()
    if verifier is None:
        return None
    peer = x509.load_pem_x509_certificate(ctx.tls_peer_pem.encode()) if ctx.tls_peer_pem else None
    try:
        assertion = find_assertion(ctx.soap.envelope)
        return verifier.verify(assertion, tls_peer=peer)
    except VihfError as exc:
        raise refusal_fault(exc, ctx.soap.message_id) from None


def refusal_fault(exc: VihfError, relates_to: str | None) -> SoapFault:
    """``Sender`` (``Receiver`` when the server is at fault) with a WS-Security subcode; the reason names the
    check (stable code and DMP subcode, docs/vihf.md §8) and says briefly why."""
    refusal = exc.reason
    detail = _FIXED_TEXT.get(refusal) or " ".join(exc.detail.split())
    if len(detail) > _MAX_DETAIL:
        detail = detail[:_MAX_DETAIL - 3] + "..."
    log.info("VIHF refused: %s: %s", refusal.code, exc.detail)
    reason = f"VIHF refused [{refusal.code}, {refusal.dmp_subcode}]: {detail}"
    if not refusal.sender_fault:
        return SoapFault(FaultCode.RECEIVER, reason, relates_to=relates_to)
    subcode = FaultSubcode.INVALID_SECURITY if refusal in _INVALID_SECURITY else FaultSubcode.FAILED_AUTHENTICATION
    return SoapFault(FaultCode.SENDER, reason, subcode, relates_to)
