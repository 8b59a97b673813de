"""The CPS card through its PKCS#11 module (ANS Cryptolib CPS; SoftHSM2 in tests): find the token, read who
holds it, log in with the PIN, reach the signature key by the CKA_ID of the signature certificate
(docs/cps-card.md §2–§5).

One PKCS#11 session is kept from login until the card is removed or :meth:`CpsCard.close` (homologation
requirement EX_0.1-1010: no repeated PIN prompts); the keys are found once, so a signature is one
``C_SignInit``/``C_Sign`` pair with no object search and no re-login.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import pkcs11
from cryptography import x509
from pkcs11 import Attribute, ObjectClass, TokenFlag

from cardreader._direct_sign import DirectSigner
from cardreader._errors import CardError, CardProblem
from cardreader._holder import ACTIVITY_LABEL, CardHolder, PracticeSituation, card_holder, practice_situation
from cardreader._readers import CardEvent, CardEventKind, CardWatcher

MODULE_ENV: Final = "CPS_PKCS11_MODULE"
#: Where the Cryptolib CPS installs its PKCS#11 module (docs/cps-card.md §2).
DEFAULT_MODULES: Final = {
    "linux": "/usr/local/galss/libcps3_pkcs11_lux.so",
    "darwin": "/usr/local/lib/libcps3_pkcs11_osx.dylib",
    "win32": r"C:\Windows\System32\cps3_pkcs11_w64.dll",
}
SIGNATURE_CERTIFICATE: Final = "Certificat de Signature CPS"
AUTHENTICATION_CERTIFICATE: Final = "Certificat d'Authentification CPS"
MAX_PIN_TRIES: Final = 3   # docs/cps-card.md §3

#: What a pulled card looks like from PKCS#11 (docs/cps-card.md §3).
REMOVAL_ERRORS: Final = (pkcs11.exceptions.TokenNotPresent, pkcs11.exceptions.DeviceRemoved,
                         pkcs11.exceptions.SessionHandleInvalid, pkcs11.exceptions.SessionClosed)

TokenAdapter = Callable[[Any], Any]
"""Wraps a ``pkcs11.Token`` before use; tests put the card's 3-try PIN rule around SoftHSM2 with it."""


def module_path(explicit: str | None = None) -> str:
    """The PKCS#11 module: ``explicit`` (``--module``), else ``$CPS_PKCS11_MODULE``, else the Cryptolib
    default for this operating system."""
    if explicit:
        return explicit
    if os.environ.get(MODULE_ENV):
        return os.environ[MODULE_ENV]
    return DEFAULT_MODULES.get(sys.platform, DEFAULT_MODULES["linux"])


def load_module(path: str) -> Any:
    """The initialised module (python-pkcs11 caches one per path in a process)."""
    if not os.path.exists(path):
        raise CardError(CardProblem.NO_TOKEN, f"PKCS#11 module {path} not found (install the Cryptolib CPS, "
                        f"or give --module / {MODULE_ENV})")
    try:
        return pkcs11.lib(path)
    except (RuntimeError, OSError, pkcs11.exceptions.PKCS11Error) as exc:
        raise CardError(CardProblem.NO_TOKEN, f"PKCS#11 module {path} could not be loaded: {exc}") from None


@dataclass(frozen=True)
class PinState:
    """The user PIN counters a token reports (PKCS#11 CK_TOKEN_INFO flags)."""

    locked: bool
    tries_left: int | None   # None when the token does not say

    @classmethod
    def of(cls, flags: TokenFlag) -> PinState:
        if flags & TokenFlag.USER_PIN_LOCKED:
            return cls(True, 0)
        if flags & TokenFlag.USER_PIN_FINAL_TRY:
            return cls(False, 1)
        if flags & TokenFlag.USER_PIN_COUNT_LOW:
            return cls(False, MAX_PIN_TRIES - 1)
        return cls(False, None)


class CpsCard:
    """An inserted CPS card seen through PKCS#11. Readable at once: :attr:`holder` and both certificates;
    after :meth:`login`: :meth:`practice_situations` and :meth:`signature_key`.

    Not thread-safe for concurrent signing beyond what the module allows: one lock serialises calls on the
    session (a card computes one signature at a time anyway)."""

    def __init__(self, slot: Any, token: Any, adapter: TokenAdapter | None, module: str) -> None:
        self.module = module
        self._slot = slot
        self._token = token
        self._adapter = adapter
        self._session: Any = None
        self._removed = False
        self._lock = threading.Lock()
        self._keys: dict[bytes, Any] = {}
        with self._public_session() as session:
            self.signature_certificate, self.signature_id = _certificate(session, SIGNATURE_CERTIFICATE)
            self.authentication_certificate, self.authentication_id = _certificate(session,
                                                                                   AUTHENTICATION_CERTIFICATE)
            info, name = _data(session, "CPS_INFO_PS"), _data(session, "CPS_NAME_PS")
        if not _has_key_usage(self.signature_certificate, "content_commitment"):
            raise CardError(CardProblem.CARD_CONTENT, "the card's signature certificate lacks nonRepudiation")
        self.holder: CardHolder = card_holder(self.signature_certificate, info, name)

    # --- opening ---------------------------------------------------------------------------------------

    @classmethod
    def open(cls, module: str, token_label: str | None = None, *, reader: str | None = None,
             adapter: TokenAdapter | None = None) -> CpsCard:
        """The card's token in ``module``: the one labelled ``token_label``, else the one in the slot of
        ``reader`` (the slot description names the reader), else the only token present."""
        lib = load_module(module)
        try:
            slots = lib.get_slots(token_present=True)
            tokens = [(s, t) for s in slots if (t := s.get_token()).flags & TokenFlag.TOKEN_INITIALIZED]
        except REMOVAL_ERRORS:
            tokens = []
        except pkcs11.exceptions.PKCS11Error as exc:
            raise CardError(CardProblem.NO_TOKEN, f"the PKCS#11 module failed to list its slots: {exc!r}") from None
        if token_label is not None:
            tokens = [(s, t) for s, t in tokens if t.label == token_label]
        elif reader is not None:
            tokens = [(s, t) for s, t in tokens if reader in (s.slot_description or "")] or tokens
        if not tokens:
            what = f"labelled {token_label!r}" if token_label else "present"
            raise CardError(CardProblem.NO_CARD, f"no card token {what} in {module}")
        if len(tokens) > 1:
            labels = ", ".join(repr(t.label) for _, t in tokens)
            raise CardError(CardProblem.NO_TOKEN, f"several tokens present ({labels}): choose one with --token-label")
        slot, token = tokens[0]
        return cls(slot, adapter(token) if adapter else token, adapter, module)

    @property
    def token_label(self) -> str:
        return str(self._token.label)

    def _public_session(self) -> Any:
        try:
            return self._token.open()
        except REMOVAL_ERRORS:
            raise self._gone() from None

    # --- PIN -------------------------------------------------------------------------------------------

    @property
    def logged_in(self) -> bool:
        return self._session is not None

    def pin_state(self) -> PinState:
        """The token's PIN counters, read afresh (CK_TOKEN_INFO)."""
        try:
            token = self._slot.get_token()
        except REMOVAL_ERRORS:
            raise self._gone() from None
        return PinState.of((self._adapter(token) if self._adapter else token).flags)

    def login(self, pin: str) -> None:
        """``C_Login`` as the user. A locked card is refused before any attempt; a wrong PIN raises
        ``WRONG_PIN`` with the tries left; the PIN is never kept."""
        if self._removed:
            raise self._gone()
        if self._session is not None:
            return
        if self.pin_state().locked:
            raise _locked()
        try:
            self._session = self._token.open(user_pin=pin)
        except pkcs11.exceptions.UserAlreadyLoggedIn:
            # PKCS#11 login is per application: another part of this process logged in to the card already
            # (CKR_USER_ALREADY_LOGGED_IN, docs/cps-card.md §3); a plain session shares that login.
            self._session = self._public_session()
        except pkcs11.exceptions.PinLocked:
            raise _locked() from None
        except (pkcs11.exceptions.PinIncorrect, pkcs11.exceptions.PinLenRange, pkcs11.exceptions.PinInvalid):
            state = self.pin_state()
            if state.locked:
                raise _locked() from None
            left = f"{state.tries_left} tries left" if state.tries_left is not None else "tries left unknown"
            raise CardError(CardProblem.WRONG_PIN, f"wrong PIN ({left})", tries_left=state.tries_left) from None
        except REMOVAL_ERRORS:
            raise self._gone() from None

    def _logged_session(self) -> Any:
        if self._removed:
            raise self._gone()
        if self._session is None:
            raise CardError(CardProblem.WRONG_PIN, "the card is not logged in (PIN needed)")
        return self._session

    # --- private content -------------------------------------------------------------------------------

    def practice_situations(self) -> list[PracticeSituation]:
        """Every ``CPS_ACTIVITY_xx_PS`` (private objects: needs the PIN), by number."""
        session = self._logged_session()
        found = []
        with self._lock:
            try:
                for obj in session.get_objects({Attribute.CLASS: ObjectClass.DATA}):
                    m = ACTIVITY_LABEL.match(obj[Attribute.LABEL] or "")
                    if m:
                        found.append(practice_situation(int(m.group(1)), bytes(obj[Attribute.VALUE])))
            except REMOVAL_ERRORS:
                raise self._gone() from None
        return sorted(found, key=lambda s: s.number)

    def signature_key(self) -> Any:
        """``CPS_PRIV_SIG``: the private key whose CKA_ID is the signature certificate's (found once)."""
        return self._private_key(self.signature_id, "signature")

    def authentication_key(self) -> Any:
        """``CPS_PRIV_AUT``: the private key whose CKA_ID is the authentication certificate's."""
        return self._private_key(self.authentication_id, "authentication")

    def _private_key(self, key_id: bytes, what: str) -> Any:
        session = self._logged_session()
        with self._lock:
            if key_id not in self._keys:
                try:
                    self._keys[key_id] = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=key_id)
                except pkcs11.exceptions.NoSuchKey:
                    raise CardError(CardProblem.CARD_CONTENT,
                                    f"no private key with the CKA_ID of the {what} certificate") from None
                except REMOVAL_ERRORS:
                    raise self._gone() from None
            return self._keys[key_id]

    def signing_function(self, key: Any, mechanism: pkcs11.Mechanism,
                         certificate: x509.Certificate) -> Callable[[bytes], bytes]:
        """How to sign with ``key`` (from this card): one ``C_SignInit`` + one ``C_Sign`` through the module's
        function list, or python-pkcs11's own call (which adds a length query) if that cannot be set up."""
        length = (certificate.public_key().key_size + 7) // 8   # type: ignore[union-attr]
        try:
            return DirectSigner(self.module, key, mechanism, length).sign
        except (OSError, AttributeError, pkcs11.exceptions.PKCS11Error):
            return lambda data: bytes(key.sign(data, mechanism=mechanism))

    def sign(self, signing_function: Callable[[bytes], bytes], data: bytes) -> bytes:
        """``signing_function(data)`` on the kept session, serialised, a pulled card reported as such."""
        with self._lock:
            if self._removed:
                raise self._gone()
            try:
                return signing_function(data)
            except REMOVAL_ERRORS:
                self._drop()
                raise self._gone() from None

    # --- end of the session ----------------------------------------------------------------------------

    @property
    def removed(self) -> bool:
        return self._removed

    def card_removed(self) -> None:
        """The card left its reader: end the session and forget the keys; every later call says so
        (docs/cps-card.md §5 step 9). Safe to call from a watcher thread."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        self._removed = True
        self._keys.clear()
        session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(pkcs11.exceptions.PKCS11Error):   # the token is gone: the session is void
                session.close()

    def close(self) -> None:
        """Log out and close the session (the card stays usable through a new :meth:`open`)."""
        with self._lock:
            self._keys.clear()
            session, self._session = self._session, None
            if session is not None:
                with contextlib.suppress(pkcs11.exceptions.PKCS11Error):
                    session.close()

    def _gone(self) -> CardError:
        self._removed = True
        return CardError(CardProblem.CARD_REMOVED, "the card was removed: insert it again and log in")

    def __enter__(self) -> CpsCard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _locked() -> CardError:
    return CardError(CardProblem.PIN_LOCKED, "the card is locked after 3 wrong PINs: unblock it with its PUK "
                     "(Cryptolib CPS tools); no further PIN attempt was made", tries_left=0)


def _certificate(session: Any, label: str) -> tuple[x509.Certificate, bytes]:
    objs = list(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: label}))
    if len(objs) != 1:
        raise CardError(CardProblem.CARD_CONTENT, f"the card holds {len(objs)} certificates labelled {label!r}")
    obj = objs[0]
    return x509.load_der_x509_certificate(bytes(obj[Attribute.VALUE])), bytes(obj[Attribute.ID])


def _data(session: Any, label: str) -> bytes | None:
    for obj in session.get_objects({Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: label}):
        return bytes(obj[Attribute.VALUE])
    return None


def _has_key_usage(cert: x509.Certificate, bit: str) -> bool:
    try:
        return bool(getattr(cert.extensions.get_extension_for_class(x509.KeyUsage).value, bit))
    except x509.ExtensionNotFound:
        return False


def end_session_on_removal(card: CpsCard, reader: str) -> CardWatcher:
    """A started :class:`CardWatcher` that ends ``card``'s session as soon as its card leaves ``reader``
    (docs/cps-card.md §5 step 9); stop it when the card is closed."""
    def on_event(event: CardEvent) -> None:
        if event.kind is CardEventKind.REMOVED and event.reader == reader:
            card.card_removed()
    return CardWatcher(on_event).start()
