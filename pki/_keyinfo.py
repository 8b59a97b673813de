"""The certificates a VIHF signature carries in ``KeyInfo/X509Data`` (docs/vihf.md §6), read once per distinct
certificate: an LPS sends the same signer certificate with every request, so its decoding, its public key, the
identity it states and its subject's text are kept (:class:`KeyInfoCache`) rather than derived again each time.

Nothing kept here is trusted by being kept: every verification still validates the certificate (chain, dates,
CRL; :meth:`pki.TrustStore.validate`) and checks the signature with its key.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections import OrderedDict
from functools import cached_property
from typing import Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from lxml import etree

from pki._certs import CertificateIdentity
from pki._dn import dn_string, same_name
from pki._errors import VihfError, VihfRefusal
from pki._vihf_model import DS

#: Distinct KeyInfo certificate sets remembered (the least recently used is forgotten first).
KEY_INFO_CACHE_SIZE: Final = 4096
_ISSUER_TEXTS_KEPT: Final = 8   # distinct saml2:Issuer spellings remembered per signer


class KeyInfoSigner:
    """The signer certificate (the first ``X509Certificate``) and the others sent along (path-building help)."""

    def __init__(self, certificate: x509.Certificate, others: tuple[x509.Certificate, ...]) -> None:
        self.certificate = certificate
        self.others = others
        self._names: dict[str, bool] = {}

    @cached_property
    def public_key(self) -> CertificatePublicKeyTypes:
        try:
            return self.certificate.public_key()
        except (ValueError, UnsupportedAlgorithm):
            raise VihfError(VihfRefusal.CERTIFICATE_MALFORMED, "the signer certificate's key cannot be read") from None

    @cached_property
    def identity(self) -> CertificateIdentity:
        return CertificateIdentity.of(self.certificate)

    @cached_property
    def subject(self) -> str:
        return dn_string(self.certificate.subject)

    def is_named(self, text: str) -> bool:
        """Whether the DN ``text`` names this certificate's subject (:func:`pki._dn.same_name`)."""
        known = self._names.get(text)
        if known is None:
            known = same_name(text, self.certificate.subject)
            if len(self._names) < _ISSUER_TEXTS_KEPT:
                self._names[text] = known
        return known


class KeyInfoCache:
    """Thread-safe, bounded: :class:`KeyInfoSigner` by the exact base64 texts of the certificates."""

    def __init__(self, max_entries: int = KEY_INFO_CACHE_SIZE) -> None:
        self._max = max_entries
        self._signers: OrderedDict[tuple[str, ...], KeyInfoSigner] = OrderedDict()
        self._lock = threading.Lock()

    def signer(self, sig: etree._Element) -> KeyInfoSigner:
        """The certificates of ``sig``'s KeyInfo, or :class:`VihfError` (none, or one unreadable)."""
        key_info = sig.find(f"{{{DS}}}KeyInfo")
        data = [] if key_info is None else key_info.findall(f"{{{DS}}}X509Data")
        texts = tuple(c.text or "" for d in data for c in d.findall(f"{{{DS}}}X509Certificate"))
        if not texts:
            raise VihfError(VihfRefusal.CERTIFICATE_MISSING, "no X509Certificate in the signature's KeyInfo")
        with self._lock:
            known = self._signers.get(texts)
            if known is not None:
                self._signers.move_to_end(texts)
                return known
        try:
            certs = [x509.load_der_x509_certificate(base64.b64decode("".join(t.split()), validate=True))
                     for t in texts]
        except (ValueError, binascii.Error):
            raise VihfError(VihfRefusal.CERTIFICATE_MALFORMED, "KeyInfo holds an unreadable certificate") from None
        signer = KeyInfoSigner(certs[0], tuple(certs[1:]))
        with self._lock:
            self._signers[texts] = signer
            while len(self._signers) > self._max:
                self._signers.popitem(last=False)
        return signer
