"""The card's signature key behind :class:`pki.Signer`, so ``pki.sign_assertion`` signs a VIHF on the card
(docs/vihf.md §6: ``CKM_SHA256_RSA_PKCS`` with ``CPS_PRIV_SIG``) with no private key in memory."""

from __future__ import annotations

from cryptography import x509
from pkcs11 import Mechanism

from cardreader._token import CpsCard


class CardSigner:
    """A :class:`pki.Signer` over the logged-in card's ``CPS_PRIV_SIG``: each :meth:`sign` is one
    ``C_SignInit`` and one ``C_Sign`` on the card's kept session (no login, no object search)."""

    def __init__(self, card: CpsCard) -> None:
        self._card = card
        self._sign = card.signing_function(card.signature_key(), Mechanism.SHA256_RSA_PKCS,
                                           card.signature_certificate)

    @property
    def certificate(self) -> x509.Certificate:
        return self._card.signature_certificate

    def sign(self, data: bytes) -> bytes:
        return self._card.sign(self._sign, data)

    def __repr__(self) -> str:
        return f"CardSigner({self._card.token_label!r})"
