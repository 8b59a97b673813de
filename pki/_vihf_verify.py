"""VIHF verification (docs/vihf.md §7): the assertion → a :class:`~pki.Principal`, or a :class:`~pki.VihfError`.

Against signature wrapping (XSW), the assertion is copied out of its document before anything else, so the
signature's Reference can only resolve inside it; its shape is checked strictly (one Issuer first, one
Signature right after it and nowhere else, no comments, no ID value twice, the Reference naming the
assertion's own ID); the signature is verified over that copy (``pki._xmldsig``), which is then, without its
Signature, exactly the signed content; and every claim is read from that copy — never from the input tree.

Parsed once per distinct certificate (``pki._keyinfo``) and validated once per trust store and validity span
(:class:`~pki.TrustStore` remembers its successes): the signer certificate that an LPS sends with every request.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography import x509
from lxml import etree

from pki._certs import CertificateIdentity
from pki._errors import VihfError, VihfRefusal
from pki._keyinfo import KeyInfoCache, KeyInfoSigner
from pki._policy import VihfPolicy
from pki._principal import Principal
from pki._replay import ReplayCache, ReplayCacheFull, ReplayStore
from pki._trust import CertificateError, CertificateRefusal, TrustStore, Usage
from pki._vihf_model import DS, PROFESSION_SYSTEM, SAML, AuthMode
from pki._vihf_read import SignedVihf, parse_instant, read_signed
from pki._xmldsig import read_signature, verify_enveloped
from soap_wsdl import ns

Clock = Callable[[], datetime]

_ASSERTION = f"{{{SAML}}}Assertion"
_ISSUER = f"{{{SAML}}}Issuer"
_SIGNATURE = f"{{{DS}}}Signature"
# Any attribute that some processor could take for an ID (ID, Id, id, xml:id), and comments or processing
# instructions anywhere: found by libxml2 in one pass each (a Python walk over every attribute cost more).
_ID_VALUES = etree.XPath("descendant-or-self::*/@*[local-name()='ID' or local-name()='Id' or local-name()='id']")
_COMMENT_OR_PI = etree.XPath("(descendant::comment() | descendant::processing-instruction())[1]")
_NCNAME = re.compile(r"[^\W\d][\w.\-]*")   # xs:ID is an NCName (letter or '_' first, no ':')
# Children of a VIHF besides Issuer and Signature, in SAML 2.0 schema order (docs/vihf.md §2). Advice is refused:
# the VIHF has no use for it, and it is where wrapped assertions hide.
_AFTER_ISSUER = ("Subject", "Conditions")
_STATEMENTS = frozenset({"AuthnStatement", "AttributeStatement"})

_CERT_REFUSALS = {
    CertificateRefusal.UNTRUSTED: VihfRefusal.CERTIFICATE_UNTRUSTED,
    CertificateRefusal.NOT_YET_VALID: VihfRefusal.CERTIFICATE_NOT_YET_VALID,
    CertificateRefusal.EXPIRED: VihfRefusal.CERTIFICATE_EXPIRED,
    CertificateRefusal.REVOKED: VihfRefusal.CERTIFICATE_REVOKED,
    CertificateRefusal.REVOCATION_UNKNOWN: VihfRefusal.REVOCATION_UNKNOWN,
    CertificateRefusal.WRONG_USAGE: VihfRefusal.CERTIFICATE_USAGE,
}


def utc_now() -> datetime:
    return datetime.now(UTC)


def find_assertion(envelope: etree._Element) -> etree._Element:
    """The VIHF of a SOAP 1.2 request: the one ``saml2:Assertion`` child of the one ``wsse:Security``
    header block, and no other assertion anywhere in the envelope (docs/vihf.md §1, §7 step 1)."""
    header = envelope.find(ns.q(ns.SOAP12, "Header"))
    blocks = [] if header is None else [c for c in header if c.tag == ns.q(ns.WSSE, "Security")]
    if not blocks:
        raise VihfError(VihfRefusal.MISSING_ASSERTION, "no wsse:Security header")
    if len(blocks) > 1:
        raise VihfError(VihfRefusal.MULTIPLE_ASSERTIONS, f"{len(blocks)} wsse:Security headers")
    direct = [c for c in blocks[0] if c.tag == _ASSERTION]
    if not direct:
        raise VihfError(VihfRefusal.MISSING_ASSERTION, "wsse:Security holds no saml2:Assertion")
    everywhere = sum(1 for _ in envelope.iter(_ASSERTION))
    if everywhere != 1:
        raise VihfError(VihfRefusal.MULTIPLE_ASSERTIONS, f"{everywhere} saml2:Assertion elements in the message")
    return direct[0]


class VihfVerifier:
    """Verifies VIHFs against ``trust``; ``clock`` gives the current UTC time; ``replay_cache`` remembers
    the IDs of accepted assertions until their window ends. Thread-safe if ``replay_cache`` is."""

    def __init__(self, trust: TrustStore, clock: Clock = utc_now, replay_cache: ReplayStore | None = None,
                 *, policy: VihfPolicy | None = None) -> None:
        self._trust = trust
        self._clock = clock
        self._replay: ReplayStore = replay_cache if replay_cache is not None else ReplayCache()
        self._policy = policy or VihfPolicy()
        self._signers = KeyInfoCache()

    @property
    def policy(self) -> VihfPolicy:
        return self._policy

    def verify(self, assertion: etree._Element, *, tls_peer: x509.Certificate | None = None) -> Principal:
        """The caller's identity, or :class:`VihfError` naming the first check that failed.

        ``tls_peer``: the TLS client certificate of the connection, when mutual TLS is used; it must be a
        valid authentication certificate of the same holder (direct mode: same CN) or of the same structure
        (indirect modes: OU = Identifiant_Structure) (docs/vihf.md §7 step 7).
        """
        now = self._clock()
        doc = _standalone(assertion)
        assertion_id = _check_shape(doc)
        signature = read_signature(_the_signature(doc), assertion_id, self._policy)
        signer = self._signers.signer(signature.element)
        cert = signer.certificate
        try:
            self._trust.validate(cert, Usage.SIGNATURE, now, untrusted_intermediates=signer.others)
        except CertificateError as exc:
            raise VihfError(_CERT_REFUSALS[exc.reason], exc.detail) from None
        verify_enveloped(doc, signature, signer.public_key)   # doc is now the signed content, and only that
        claims = read_signed(doc, self._policy)
        if claims.assertion_id != assertion_id:   # cannot happen once the shape is checked; never trust "cannot"
            raise VihfError(VihfRefusal.REFERENCE_MISMATCH, "the signed element is not the assertion")

        if not signer.is_named(claims.issuer):
            raise VihfError(VihfRefusal.ISSUER_MISMATCH,
                            f"saml2:Issuer '{claims.issuer}' is not the signer's subject '{signer.subject}'")
        valid_until = self._check_window(claims, cert, now)
        identity = signer.identity
        self._check_identity(claims, identity)
        if tls_peer is not None:
            self._check_tls_peer(claims, identity, tls_peer, now)
        try:
            first_use = self._replay.remember(claims.assertion_id, valid_until, now)
        except ReplayCacheFull as exc:
            raise VihfError(VihfRefusal.REPLAY_CACHE_FULL, str(exc)) from None
        if not first_use:
            raise VihfError(VihfRefusal.REPLAY, f"assertion {claims.assertion_id} was already used")
        return _principal(claims, signer, valid_until)

    def _check_window(self, claims: SignedVihf, cert: x509.Certificate, now: datetime) -> datetime:
        """Freshness (docs/vihf.md §7 step 10): the end of the window during which the assertion is accepted."""
        p = self._policy
        skew = p.clock_skew
        start = claims.issue_instant if claims.not_before is None else max(claims.issue_instant, claims.not_before)
        max_age = p.air_max_age if claims.mode is AuthMode.INDIRECT_REINFORCED else p.max_age
        end = claims.issue_instant + max_age
        if claims.not_on_or_after is not None:
            end = min(end, claims.not_on_or_after)
        if now < start - skew:
            raise VihfError(VihfRefusal.ASSERTION_NOT_YET_VALID, f"the assertion is valid from {start.isoformat()}")
        if now >= end + skew:
            raise VihfError(VihfRefusal.ASSERTION_EXPIRED, f"the assertion was valid until {end.isoformat()}")
        # The certificate must also have been valid when the assertion was issued (docs/vihf.md §7 step 4).
        if claims.issue_instant < cert.not_valid_before_utc:
            raise VihfError(VihfRefusal.CERTIFICATE_NOT_YET_VALID,
                            "the signer certificate was not valid yet at IssueInstant")
        if claims.issue_instant > cert.not_valid_after_utc:
            raise VihfError(VihfRefusal.CERTIFICATE_EXPIRED, "the signer certificate had expired at IssueInstant")
        return end + skew

    def _check_identity(self, claims: SignedVihf, identity: CertificateIdentity) -> None:
        """docs/vihf.md §7 step 7 and §3.4: who signed must be who the assertion speaks for."""
        if claims.mode is AuthMode.DIRECT:
            if self._policy.strict_nameid and claims.name_id != identity.common_name:
                raise VihfError(VihfRefusal.NAMEID_MISMATCH,
                                f"NameID '{claims.name_id}' is not the signer's IdNat_PS '{identity.common_name}'")
            profession = claims.roles[0]
            if (identity.profession is not None and profession.code.isdigit()
                    and profession.code_system == PROFESSION_SYSTEM
                    and int(profession.code) != int(identity.profession)):
                raise VihfError(VihfRefusal.PROFESSION_MISMATCH,
                                f"profession {profession.code} is not the certificate's ({identity.profession})")
        elif claims.structure_id not in identity.organisational_units:
            raise VihfError(VihfRefusal.STRUCTURE_MISMATCH,
                            f"Identifiant_Structure {claims.structure_id} is not the signer's structure")

    def _check_tls_peer(self, claims: SignedVihf, identity: CertificateIdentity, peer: x509.Certificate,
                        now: datetime) -> None:
        try:
            self._trust.validate(peer, Usage.AUTHENTICATION, now)
        except CertificateError as exc:
            raise VihfError(VihfRefusal.TLS_PEER_INVALID, exc.detail) from None
        peer_identity = CertificateIdentity.of(peer)
        if claims.mode is AuthMode.DIRECT:
            if peer_identity.common_name is None or peer_identity.common_name != identity.common_name:
                raise VihfError(VihfRefusal.TLS_PEER_MISMATCH,
                                "the TLS client certificate and the VIHF signer are not the same holder")
        elif claims.structure_id not in peer_identity.organisational_units:
            raise VihfError(VihfRefusal.TLS_PEER_MISMATCH,
                            "the TLS client certificate does not belong to the VIHF's structure")


def _standalone(assertion: etree._Element) -> etree._Element:
    if not isinstance(assertion.tag, str) or assertion.tag != _ASSERTION:
        raise VihfError(VihfRefusal.MISSING_ASSERTION, "the element is not a saml2:Assertion")
    # A copy in a document of its own: the signature's Reference can then only resolve inside the assertion.
    doc = copy.deepcopy(assertion)
    doc.tail = None   # deepcopy keeps the text that followed the element in its parent
    return doc


def _check_shape(doc: etree._Element) -> str:
    """Schema-level checks (docs/vihf.md §7 step 2) and the XSW guards that need no cryptography."""
    if doc.get("Version") != "2.0":
        raise VihfError(VihfRefusal.MALFORMED_ASSERTION, "Version must be 2.0")
    assertion_id = doc.get("ID") or ""
    if _NCNAME.fullmatch(assertion_id) is None:
        raise VihfError(VihfRefusal.MALFORMED_ASSERTION, "ID is missing or not an xs:ID")
    parse_instant(doc.get("IssueInstant"), "IssueInstant")
    for node in _COMMENT_OR_PI(doc):  # type: ignore[union-attr]
        raise VihfError(VihfRefusal.COMMENT_OR_PI,
                        f"{'comment' if isinstance(node, etree._Comment) else 'processing instruction'} "
                        "inside the assertion (not covered by the signature)")
    ids = [str(v) for v in _ID_VALUES(doc)]  # type: ignore[union-attr]
    if len(set(ids)) != len(ids):
        duplicate = next(v for i, v in enumerate(ids) if v in ids[:i])
        raise VihfError(VihfRefusal.DUPLICATE_ID, f"ID value '{duplicate}' appears more than once")
    children = [etree.QName(c) for c in doc if c.tag != _SIGNATURE]
    if any(c.namespace != SAML for c in children):
        raise VihfError(VihfRefusal.MALFORMED_ASSERTION, "a VIHF holds SAML elements and its signature only")
    local = [c.localname for c in children]
    i = 0
    for name in ("Issuer", *_AFTER_ISSUER):
        if i < len(local) and local[i] == name:
            i += 1
        elif name != "Conditions":
            raise VihfError(VihfRefusal.MALFORMED_ASSERTION, f"saml2:{name} is missing or out of order")
    rest = local[i:]
    if any(n not in _STATEMENTS for n in rest):
        raise VihfError(VihfRefusal.MALFORMED_ASSERTION,
                        "after Subject and Conditions a VIHF holds only AuthnStatement and AttributeStatement")
    if rest.count("AttributeStatement") != 1 or rest.count("AuthnStatement") > 1:
        raise VihfError(VihfRefusal.MALFORMED_ASSERTION,
                        "a VIHF has one AttributeStatement and at most one AuthnStatement")
    return assertion_id


def _the_signature(doc: etree._Element) -> etree._Element:
    """The assertion's only ``ds:Signature``, placed where a VIHF has it (docs/vihf.md §2)."""
    signatures = list(doc.iter(_SIGNATURE))
    if not signatures:
        raise VihfError(VihfRefusal.SIGNATURE_MISSING, "the assertion is not signed")
    sig = signatures[0]
    previous = sig.getprevious()
    if len(signatures) > 1 or sig.getparent() is not doc or previous is None or previous.tag != _ISSUER \
            or doc.index(sig) != 1:
        raise VihfError(VihfRefusal.SIGNATURE_MISPLACED,
                        "exactly one ds:Signature is expected, as the assertion's child right after saml2:Issuer")
    return sig


def _principal(claims: SignedVihf, signer: KeyInfoSigner, valid_until: datetime) -> Principal:
    return Principal(
        assertion_id=claims.assertion_id,
        professional_id=claims.name_id,
        name=claims.subject_name,
        profession=claims.roles[0],
        specialty=claims.roles[1] if len(claims.roles) > 1 else None,
        roles=claims.roles,
        structure_id=claims.structure_id,
        sector=claims.sector,
        auth_mode=claims.mode,
        purpose_of_use=claims.purpose_of_use,
        patient=claims.patient,
        software=claims.software,
        vihf_version=claims.version,
        authn_context=claims.authn_context,
        secret_connection=claims.secret_connection,
        signer_subject=signer.subject,
        issued_at=claims.issue_instant,
        valid_until=valid_until,
    )
