"""The CPS card middleware a physician's desktop software (LPS) embeds (docs/cps-card.md): card readers and card
events (PC/SC), the card's token (PKCS#11: holder, practice situations, PIN, keys), VIHFs signed on the card,
TLS client authentication with the card's key, and an XDS client for the node. The ``cps`` command
(:mod:`cardreader.cli`) is a thin shell over it.

- :func:`list_readers`, :func:`find_cps_reader`, :class:`CardWatcher`: readers, cards by ATR, events.
- :class:`CpsCard`: the token (:func:`module_path` says which PKCS#11 module); :class:`CardSigner` is a
  :class:`pki.Signer` over ``CPS_PRIV_SIG``.
- :class:`Professional` turns a card (or a test-only software credential) into signed VIHFs;
  :class:`XdsClient` sends ITI-18/41/43 with one; :class:`CardTlsTunnel` carries them over TLS with
  ``CPS_PRIV_AUT``.
- Every failure is a :class:`CardError` whose :class:`CardProblem` carries the exit code of ``cps``.
"""

from cardreader._atr import CardModel, atr_hex, card_model
from cardreader._client import Submitted, XdsClient
from cardreader._errors import CardError, CardProblem
from cardreader._holder import CardHolder, PracticeSituation, encode_practice_situation, practice_situation
from cardreader._professional import SOFTWARE_CREDENTIAL_WARNING, Professional, patient_ins
from cardreader._readers import CardEvent, CardEventKind, CardWatcher, ReaderStatus, find_cps_reader, list_readers
from cardreader._signer import CardSigner
from cardreader._submission import DocumentDescription
from cardreader._tls import CardTlsTunnel
from cardreader._token import MODULE_ENV, CpsCard, PinState, TokenAdapter, end_session_on_removal, module_path

__all__ = [
    "MODULE_ENV",
    "SOFTWARE_CREDENTIAL_WARNING",
    "CardError",
    "CardEvent",
    "CardEventKind",
    "CardHolder",
    "CardModel",
    "CardProblem",
    "CardSigner",
    "CardTlsTunnel",
    "CardWatcher",
    "CpsCard",
    "DocumentDescription",
    "PinState",
    "PracticeSituation",
    "Professional",
    "ReaderStatus",
    "Submitted",
    "TokenAdapter",
    "XdsClient",
    "atr_hex",
    "card_model",
    "encode_practice_situation",
    "end_session_on_removal",
    "find_cps_reader",
    "list_readers",
    "module_path",
    "patient_ins",
    "practice_situation",
]
