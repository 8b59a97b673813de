"""One signing interface for VIHFs, whatever holds the key (as python-pkcs11 and pyHanko's ``Signer`` do).

A software key implements it now; the CPS card's non-extractable ``CPS_PRIV_SIG`` key (PKCS#11 mechanism
``CKM_SHA256_RSA_PKCS``, docs/vihf.md §6) implements the same protocol in ``cardreader``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed


@runtime_checkable
class Signer(Protocol):
    """Signs with RSASSA-PKCS1-v1_5 and SHA-256; ``certificate`` is the matching signature certificate."""

    @property
    def certificate(self) -> x509.Certificate: ...

    def sign(self, data: bytes) -> bytes:
        """The RSASSA-PKCS1-v1_5 SHA-256 signature of ``data`` (the whole message, not a digest)."""
        ...


class SoftwareSigner:
    """A :class:`Signer` over an RSA private key held in memory (tests, demos, structure seals)."""

    def __init__(self, private_key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> None:
        if private_key.public_key().public_numbers() != certificate.public_key().public_numbers():  # type: ignore[union-attr]
            raise ValueError("the private key does not match the certificate")
        self._key = private_key
        self._certificate = certificate

    @classmethod
    def from_pem_files(cls, certificate: Path, private_key: Path, password: bytes | None = None) -> SoftwareSigner:
        key = serialization.load_pem_private_key(private_key.read_bytes(), password=password)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{private_key} does not hold an RSA private key")
        return cls(key, x509.load_pem_x509_certificate(certificate.read_bytes()))

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, rsa_padding.PKCS1v15(), hashes.SHA256())

    def __repr__(self) -> str:   # never the key
        return f"SoftwareSigner({self._certificate.subject.rfc4514_string()})"


class SignxmlKey:
    """The duck-typed private key signxml 5 signs with: it only calls ``sign(data, padding, algorithm)``
    (its private-key protocol), which we route to the :class:`Signer`."""

    def __init__(self, signer: Signer) -> None:
        self._signer = signer
        public = signer.certificate.public_key()
        if not isinstance(public, rsa.RSAPublicKey):
            raise ValueError("VIHF signatures are RSA (docs/vihf.md §6)")
        self._public = public

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    def sign(self, data: bytes, padding: rsa_padding.AsymmetricPadding,
             algorithm: hashes.HashAlgorithm | Prehashed) -> bytes:
        if not isinstance(padding, rsa_padding.PKCS1v15) or not isinstance(algorithm, hashes.SHA256):
            raise NotImplementedError("VIHF signers do RSASSA-PKCS1-v1_5 with SHA-256 only")
        return self._signer.sign(data)
