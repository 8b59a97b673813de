"""Certificate validation against configured trust anchors (docs/vihf.md §7 step 4–5; RFC 5280 §6 subset).

A path is built from the certificate to a trust anchor through the configured (and caller-supplied)
intermediates by issuer name and signature; then every certificate of the path is checked, in this order:
validity dates (and PrivateKeyUsagePeriod on the end entity), CA constraints, unknown critical extensions,
revocation by CRL (every certificate below the anchor, fail-closed when no current CRL is known), and the
end entity's key usage for what it is about to do. The first failure is raised as a
:class:`CertificateError` whose ``reason`` says which check failed.

A successful validation is remembered by the store (which never changes once built: a reload builds a new one,
with an empty memory) for the time span around the validation instant in which no certificate date, private key
usage period, CRL thisUpdate or CRL nextUpdate of any candidate path falls: within that span every check gives
the same answer, so the answer is reused; outside it (a notAfter or nextUpdate passed, a newer CRL became
current) the path is validated again. Refusals are never remembered.
"""

from __future__ import annotations

import enum
import itertools
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from pki._dn import dn_string

MAX_PATH_LENGTH: Final = 6
#: Validated certificates a store remembers (the least recently used is forgotten first).
VALIDATED_CACHE_SIZE: Final = 4096

#: Critical extensions we process; any other critical extension makes the certificate unusable (RFC 5280 §4.2).
_HANDLED_CRITICAL: Final = frozenset({
    ExtensionOID.BASIC_CONSTRAINTS,
    ExtensionOID.KEY_USAGE,
    ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    ExtensionOID.CERTIFICATE_POLICIES,
    ExtensionOID.PRIVATE_KEY_USAGE_PERIOD,
})


class Usage(enum.Enum):
    """What the end-entity certificate is about to be used for."""

    SIGNATURE = "signature"            # signs a VIHF: keyUsage nonRepudiation (CPS signature, structure seal)
    AUTHENTICATION = "authentication"  # TLS client: digitalSignature, EKU clientAuth
    SERVER = "server"                  # TLS server: digitalSignature or keyEncipherment, EKU serverAuth


class CertificateRefusal(enum.Enum):
    UNTRUSTED = "untrusted"                      # no path to a trust anchor, or a CA constraint broken
    NOT_YET_VALID = "not-yet-valid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    REVOCATION_UNKNOWN = "revocation-unknown"    # no current CRL from the issuer
    WRONG_USAGE = "wrong-usage"                  # key usage / EKU does not allow this use


class CertificateError(Exception):
    def __init__(self, reason: CertificateRefusal, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


CertPath = tuple[x509.Certificate, ...]


@dataclass(frozen=True)
class _Validated:
    """A validation that succeeded, and the open interval (``after``, ``before``) of instants at which it would
    succeed again with the same path (``None``: unbounded on that side)."""

    path: CertPath
    after: datetime | None
    before: datetime | None

    def holds_at(self, at: datetime) -> bool:
        return (self.after is None or self.after < at) and (self.before is None or at < self.before)


class TrustStore:
    """Trust anchors, intermediates and CRLs; immutable once built (build a new one to reload CRLs).

    CRLs must come from a configured anchor or intermediate (checked here, so a misconfiguration shows at
    start-up). ``require_crl`` (default) refuses a certificate whose issuer has no current CRL here: without it, a
    revoked card would be accepted for as long as its certificate is valid.
    """

    def __init__(
        self,
        anchors: Iterable[x509.Certificate],
        intermediates: Iterable[x509.Certificate] = (),
        crls: Iterable[x509.CertificateRevocationList] = (),
        *,
        require_crl: bool = True,
    ) -> None:
        self._anchors = tuple(anchors)
        if not self._anchors:
            raise ValueError("a trust store needs at least one trust anchor")
        for anchor in self._anchors:
            if not _is_ca(anchor):
                raise ValueError(f"trust anchor {dn_string(anchor.subject)} is not a CA certificate")
        self._intermediates = tuple(intermediates)
        # Configured certificates never change: their fingerprints, and which of them issued which, are
        # computed once (validation runs on every request).
        self._fingerprints = {c: _fingerprint(c) for c in (*self._anchors, *self._intermediates)}
        self._anchor_ids = {self._fingerprints[a] for a in self._anchors}
        self._links: dict[tuple[bytes, bytes], bool] = {}
        self._require_crl = require_crl
        self._crls: dict[bytes, list[x509.CertificateRevocationList]] = {}   # by issuer fingerprint
        for crl in crls:
            self._add_crl(crl)
        self._validated: OrderedDict[tuple[object, ...], _Validated] = OrderedDict()
        self._keys: dict[tuple[object, ...], tuple[tuple[x509.Certificate, ...], tuple[object, ...]]] = {}
        self._validated_lock = threading.Lock()

    @classmethod
    def from_pem_files(
        cls,
        anchors: Iterable[Path],
        intermediates: Iterable[Path] = (),
        crls: Iterable[Path] = (),
        *,
        require_crl: bool = True,
    ) -> TrustStore:
        """Each file may hold several PEM blocks (``--trust-anchor`` is repeatable)."""
        return cls(
            [c for p in anchors for c in x509.load_pem_x509_certificates(p.read_bytes())],
            [c for p in intermediates for c in x509.load_pem_x509_certificates(p.read_bytes())],
            [_load_crl(p) for p in crls],
            require_crl=require_crl,
        )

    @property
    def anchors(self) -> tuple[x509.Certificate, ...]:
        return self._anchors

    @property
    def require_crl(self) -> bool:
        return self._require_crl

    def _add_crl(self, crl: x509.CertificateRevocationList) -> None:
        for ext in crl.extensions:
            if ext.critical:   # delta CRLs and partitioned CRLs (IssuingDistributionPoint) are not handled
                raise ValueError(f"CRL of {crl.issuer.rfc4514_string()} has a critical extension {ext.oid}")
        issuers = [c for c in (*self._anchors, *self._intermediates)
                   if c.subject == crl.issuer and crl.is_signature_valid(c.public_key())]  # type: ignore[arg-type]
        for issuer in issuers:
            self._crls.setdefault(self._fingerprints[issuer], []).append(crl)
        if not issuers:
            raise ValueError(f"CRL of {crl.issuer.rfc4514_string()} is not signed by a configured CA")

    def validate(
        self,
        cert: x509.Certificate,
        usage: Usage,
        at: datetime,
        *,
        untrusted_intermediates: Sequence[x509.Certificate] = (),
    ) -> tuple[x509.Certificate, ...]:
        """The validated path (``cert`` first, the trust anchor last), or :class:`CertificateError`.
        ``at`` must be timezone-aware.

        ``untrusted_intermediates`` (e.g. from a signature's KeyInfo) may help build the path; they are
        checked like any other certificate of it.
        """
        if at.tzinfo is None:
            raise ValueError("validation time must be timezone-aware")
        key = self._key(usage, (cert, *untrusted_intermediates))
        with self._validated_lock:
            known = self._validated.get(key)
            if known is not None and known.holds_at(at):
                self._validated.move_to_end(key)
                return known.path
        paths = self._paths(cert, (*self._intermediates, *untrusted_intermediates))
        if not paths:
            raise CertificateError(CertificateRefusal.UNTRUSTED,
                                   f"no path from {dn_string(cert.subject)} to a trust anchor")
        first_error: CertificateError | None = None
        for path in paths:
            try:
                self._check_path(path, usage, at)
            except CertificateError as exc:
                first_error = first_error or exc
                continue
            self._remember(key, path, paths, at)
            return path
        assert first_error is not None
        raise first_error

    def _key(self, usage: Usage, certs: tuple[x509.Certificate, ...]) -> tuple[object, ...]:
        """What a validation is remembered by: the usage and the DER encodings of the certificates. Encoding
        (or hashing: the same) a certificate object costs tens of microseconds, so the key of the objects last
        seen is kept by their identity (the entry holds the objects, so no other object can take their ids)."""
        identity = (usage, *map(id, certs))
        with self._validated_lock:
            seen = self._keys.get(identity)
        if seen is not None and all(a is b for a, b in zip(seen[0], certs, strict=True)):
            return seen[1]
        key = (usage, *(c.public_bytes(Encoding.DER) for c in certs))
        with self._validated_lock:
            self._keys[identity] = (certs, key)
            while len(self._keys) > VALIDATED_CACHE_SIZE:
                self._keys.pop(next(iter(self._keys)))
        return key

    def _remember(self, key: tuple[object, ...], path: CertPath, paths: Sequence[CertPath], at: datetime) -> None:
        """Remember that ``path`` validated at ``at``, for the span around ``at`` in which no instant that a
        check of any candidate path compares with falls: validating again anywhere in it would try the same
        paths in the same order with the same outcome of every check."""
        after: datetime | None = None
        before: datetime | None = None
        for moment in self._instants(paths):
            if moment == at:
                return   # a check changes its answer right here: nothing to reuse
            if moment < at:
                after = moment if after is None else max(after, moment)
            else:
                before = moment if before is None else min(before, moment)
        with self._validated_lock:
            self._validated[key] = _Validated(path, after, before)
            self._validated.move_to_end(key)
            while len(self._validated) > VALIDATED_CACHE_SIZE:
                self._validated.popitem(last=False)

    def _instants(self, paths: Sequence[CertPath]) -> Iterator[datetime]:
        """Every instant at which a time-dependent check of these paths may change its answer."""
        for path in paths:
            for cert in path:
                yield cert.not_valid_before_utc
                yield cert.not_valid_after_utc
            period = _private_key_usage_period(path[0])
            if period is not None:
                # cryptography gives the extension's GeneralizedTimes as naive UTC.
                yield from (t.replace(tzinfo=UTC) for t in (period.not_before, period.not_after) if t is not None)
            for issuer in path[1:]:
                for crl in self._crls.get(self._fingerprint(issuer), ()):
                    yield crl.last_update_utc
                    if crl.next_update_utc is not None:
                        yield crl.next_update_utc

    def _paths(self, cert: x509.Certificate, pool: Sequence[x509.Certificate]) -> list[CertPath]:
        found: list[CertPath] = []

        def extend(path: tuple[x509.Certificate, ...]) -> None:
            tip = path[-1]
            if self._fingerprint(tip) in self._anchor_ids:
                found.append(path)
                return
            if len(path) > MAX_PATH_LENGTH:
                return
            seen = {self._fingerprint(c) for c in path}
            for candidate in (*self._anchors, *pool):
                if candidate.subject != tip.issuer or self._fingerprint(candidate) in seen:
                    continue
                if self._issued_by(tip, candidate):
                    extend((*path, candidate))

        extend((cert,))
        return found

    def _fingerprint(self, cert: x509.Certificate) -> bytes:
        known = self._fingerprints.get(cert)
        return known if known is not None else _fingerprint(cert)

    def _issued_by(self, cert: x509.Certificate, issuer: x509.Certificate) -> bool:
        if cert not in self._fingerprints or issuer not in self._fingerprints:
            return _issued_by(cert, issuer)
        link = (self._fingerprints[cert], self._fingerprints[issuer])
        if link not in self._links:
            self._links[link] = _issued_by(cert, issuer)
        return self._links[link]

    def _check_path(self, path: tuple[x509.Certificate, ...], usage: Usage, at: datetime) -> None:
        leaf = path[0]
        for cert in path:
            _check_dates(cert, at)
        _check_private_key_usage_period(leaf, at)
        for depth, ca in enumerate(path[1:]):
            _check_ca(ca, intermediates_below=depth)
        for cert in path:
            for ext in cert.extensions:
                if ext.critical and ext.oid not in _HANDLED_CRITICAL:
                    raise CertificateError(CertificateRefusal.UNTRUSTED,
                                           f"{_who(cert)}: unsupported critical extension {ext.oid.dotted_string}")
        for cert, issuer in itertools.pairwise(path):
            self._check_revocation(cert, issuer, at)
        _check_usage(leaf, usage)

    def _check_revocation(self, cert: x509.Certificate, issuer: x509.Certificate, at: datetime) -> None:
        current = [
            crl for crl in self._crls.get(self._fingerprint(issuer), ())
            if crl.last_update_utc <= at and (crl.next_update_utc is None or at <= crl.next_update_utc)
        ]
        if not current:
            if self._require_crl:
                raise CertificateError(CertificateRefusal.REVOCATION_UNKNOWN,
                                       f"no current CRL from {dn_string(issuer.subject)}")
            return
        crl = max(current, key=lambda c: c.last_update_utc)
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is not None:
            raise CertificateError(CertificateRefusal.REVOKED,
                                   f"{_who(cert)} revoked on {entry.revocation_date_utc.isoformat()}")


def _load_crl(path: Path) -> x509.CertificateRevocationList:
    data = path.read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def _fingerprint(cert: x509.Certificate) -> bytes:
    return cert.fingerprint(SHA256())


def _who(cert: x509.Certificate) -> str:
    return f"certificate {dn_string(cert.subject)} (serial {cert.serial_number:x})"


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return bc.ca


def _check_dates(cert: x509.Certificate, at: datetime) -> None:
    if at < cert.not_valid_before_utc:
        raise CertificateError(CertificateRefusal.NOT_YET_VALID,
                               f"{_who(cert)} is valid from {cert.not_valid_before_utc.isoformat()}")
    if at > cert.not_valid_after_utc:
        raise CertificateError(CertificateRefusal.EXPIRED,
                               f"{_who(cert)} expired on {cert.not_valid_after_utc.isoformat()}")


def _private_key_usage_period(cert: x509.Certificate) -> x509.PrivateKeyUsagePeriod | None:
    try:
        return cert.extensions.get_extension_for_class(x509.PrivateKeyUsagePeriod).value
    except x509.ExtensionNotFound:
        return None


def _check_private_key_usage_period(cert: x509.Certificate, at: datetime) -> None:
    period = _private_key_usage_period(cert)
    if period is None:
        return
    # cryptography gives the extension's GeneralizedTimes as naive UTC.
    naive = at.astimezone(UTC).replace(tzinfo=None)
    if period.not_before is not None and naive < period.not_before:
        raise CertificateError(CertificateRefusal.NOT_YET_VALID, f"{_who(cert)}: private key not usable yet")
    if period.not_after is not None and naive > period.not_after:
        raise CertificateError(CertificateRefusal.EXPIRED, f"{_who(cert)}: private key usage period is over")


def _check_ca(ca: x509.Certificate, *, intermediates_below: int) -> None:
    try:
        bc = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    if bc is None or not bc.ca:
        raise CertificateError(CertificateRefusal.UNTRUSTED, f"{_who(ca)} is not a CA but issued a certificate")
    if bc.path_length is not None and intermediates_below > bc.path_length:
        raise CertificateError(CertificateRefusal.UNTRUSTED, f"{_who(ca)}: path length constraint exceeded")
    try:
        ku = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not ku.key_cert_sign:
        raise CertificateError(CertificateRefusal.UNTRUSTED, f"{_who(ca)} may not sign certificates (keyUsage)")


def _check_usage(leaf: x509.Certificate, usage: Usage) -> None:
    if _is_ca(leaf):
        raise CertificateError(CertificateRefusal.WRONG_USAGE, f"{_who(leaf)} is a CA certificate")
    try:
        ku: x509.KeyUsage | None = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        ku = None
    try:
        eku: x509.ExtendedKeyUsage | None = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if usage is Usage.SIGNATURE:
        # docs/vihf.md §6/§7 step 5: the VIHF is signed with the signature certificate (nonRepudiation), never
        # with the authentication one ("Not a valid signature certificate").
        if ku is None or not ku.content_commitment:
            raise CertificateError(CertificateRefusal.WRONG_USAGE,
                                   f"{_who(leaf)} is not a signature certificate (keyUsage nonRepudiation missing)")
        return
    wanted = ExtendedKeyUsageOID.CLIENT_AUTH if usage is Usage.AUTHENTICATION else ExtendedKeyUsageOID.SERVER_AUTH
    if ku is not None and not (ku.digital_signature or (usage is Usage.SERVER and ku.key_encipherment)):
        raise CertificateError(CertificateRefusal.WRONG_USAGE, f"{_who(leaf)}: keyUsage does not allow TLS")
    # An authentication (or server) certificate says so: IGC-Santé puts clientAuth on every TLS client certificate
    # (docs/vihf.md §9), which keeps seals and signature certificates out of TLS.
    if eku is None or (wanted not in eku and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku):
        raise CertificateError(CertificateRefusal.WRONG_USAGE,
                               f"{_who(leaf)}: extendedKeyUsage lacks {wanted.dotted_string}")
