"""The CPS card's stand-ins for tests and benchmarks (docs/cps-card.md §6): a private pcscd with a
virtual reader (vsmartcard-vpcd) and a small virtual card answering with a CPS ATR, and a private SoftHSM2
token holding CPS-like keys (generated on the token, never extractable), certificates issued by the test PKI
and the Cryptolib data objects with their real labels.

Nothing here touches a system-wide pcscd (ours runs in its own mount namespace, /run/pcscd bound to a temp
dir) or token directory (SOFTHSM2_CONF points at a temp dir). Processes are ended by PID.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from pkcs11 import Attribute, KeyType, ObjectClass, TokenFlag
from pkcs11.util.x509 import decode_x509_certificate
from smartcard import scard

from cardreader import encode_practice_situation
from pki import Profile, PsIdentity, TestPki
from pki._certs import end_entity_certificate

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
VPCD_DRIVER = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
CPS3_ATR = bytes.fromhex("3BAC00402A001225006480000310009000")
CPS4_ATR = bytes.fromhex("3BDC18FF00001225006480000401009000")
VITALE_LIKE_ATR = bytes.fromhex("3B6500002063CBA000")   # some other card
PIN = "1234"
SO_PIN = "87654321"
SIG_ID, AUT_ID = b"\x00\x10", b"\x00\x20"   # docs/cps-card.md §2: last byte 0x10 signature, 0x20 authentication
T = TypeVar("T")


# --- PC/SC -------------------------------------------------------------------------------------------------

class Pcscd:
    """A private pcscd serving one vpcd virtual reader (two slots: ``<name> 00 00`` and ``00 01``).

    vpcd listens for its card on 0.0.0.0 and has no bind-address option (docs/cps-card.md §6), so pcscd runs in its own
    network namespace as well as its own mount namespace: only its loopback exists there, and the virtual card
    connects from inside it (:meth:`card`). Clients reach pcscd through its unix socket, a file."""

    def __init__(self, directory: Path, reader_name: str = "Virtual CPS Reader") -> None:
        self.directory = directory
        self.reader_name = reader_name
        self.port = _free_port_pair()
        self.socket = directory / "run" / "pcscd.comm"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def readers(self) -> list[str]:
        return [f"{self.reader_name} 00 00", f"{self.reader_name} 00 01"]

    def start(self) -> Pcscd:
        run, conf = self.directory / "run", self.directory / "reader.conf.d"
        run.mkdir(parents=True, exist_ok=True)
        conf.mkdir(exist_ok=True)
        Path("/run/pcscd").mkdir(exist_ok=True)   # only a mount point inside our namespace
        (conf / "vpcd").write_text(f'FRIENDLYNAME "{self.reader_name}"\nDEVICENAME /dev/null:{self.port}\n'
                                   f"LIBPATH {VPCD_DRIVER}\nCHANNELID {self.port}\n")
        with (self.directory / "pcscd.log").open("wb") as log:
            self.process = subprocess.Popen(
                ["unshare", "--mount", "--net", "sh", "-c",
                 f"ip link set lo up && mount --bind {run} /run/pcscd && exec pcscd --foreground -c {conf}"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pcscd exited: {(self.directory / 'pcscd.log').read_text()}")
            if self.socket.exists() and _own_namespace(self.process.pid) and \
                    in_network_namespace(self.process.pid, lambda: _port_open(self.port)):
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("pcscd did not start")

    def environment(self) -> dict[str, str]:
        return {"PCSCLITE_CSOCK_NAME": str(self.socket)}

    def card(self, atr: bytes = CPS3_ATR, slot: int = 0) -> VirtualCard:
        """A virtual card for slot ``slot`` of the reader (not inserted yet)."""
        assert self.process is not None
        pid, port = self.process.pid, self.port + slot
        return VirtualCard(lambda: in_network_namespace(
            pid, lambda: socket.create_connection(("127.0.0.1", port), timeout=5)), atr)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class VirtualCard:
    """A card in the vpcd reader: answers the ATR request with ``atr``; APDUs: SELECT → 9000, VERIFY with the
    card's 3-try rule (``63 C2``, ``63 C1``, then ``69 83``), anything else ``6D 00``."""

    def __init__(self, connect: Callable[[], socket.socket], atr: bytes = CPS3_ATR, pin: str = PIN) -> None:
        self._connect, self.atr, self.pin = connect, atr, pin
        self.tries_left = 3
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def insert(self) -> VirtualCard:
        self._sock = self._connect()
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._loop, args=(self._sock,), daemon=True)
        self._thread.start()
        return self

    def remove(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self, sock: socket.socket) -> None:
        try:
            while True:
                (n,) = struct.unpack(">H", _recv_exact(sock, 2))
                msg = _recv_exact(sock, n)
                if n == 1:
                    if msg[0] == 4:
                        _send(sock, self.atr)
                else:
                    _send(sock, self._apdu(msg))
        except (OSError, EOFError):
            return

    def _apdu(self, apdu: bytes) -> bytes:
        ins = apdu[1] if len(apdu) > 1 else 0
        if ins == 0xA4:
            return b"\x90\x00"
        if ins == 0x20:
            if self.tries_left == 0:
                return b"\x69\x83"
            if apdu[5:5 + len(self.pin)] == self.pin.encode():
                self.tries_left = 3
                return b"\x90\x00"
            self.tries_left -= 1
            return b"\x69\x83" if self.tries_left == 0 else bytes([0x63, 0xC0 | self.tries_left])
        return b"\x6d\x00"


def wait_for_card(reader: str, present: bool, timeout_s: float = 10) -> None:
    """Block until PC/SC sees a card in ``reader`` (or none, with ``present=False``)."""
    rv, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert rv == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(rv)
    try:
        deadline = time.monotonic() + timeout_s
        state = scard.SCARD_STATE_UNAWARE
        while time.monotonic() < deadline:
            rv, states = scard.SCardGetStatusChange(ctx, 500, [(reader, state)])
            if rv == scard.SCARD_S_SUCCESS:
                _, state, _ = states[0]
                if bool(state & scard.SCARD_STATE_PRESENT) == present:
                    return
                state &= ~scard.SCARD_STATE_CHANGED
        raise TimeoutError(f"card {'insertion' if present else 'removal'} not seen in {reader}")
    finally:
        scard.SCardReleaseContext(ctx)


# --- PKCS#11 -----------------------------------------------------------------------------------------------

@dataclass
class SoftToken:
    """A SoftHSM2 token shaped like a CPS card, in its own token directory."""

    conf: Path
    label: str
    ps: PsIdentity
    signature_certificate: x509.Certificate
    authentication_certificate: x509.Certificate
    authentication_certificate_path: Path

    @property
    def module(self) -> str:
        return SOFTHSM_MODULE

    def environment(self) -> dict[str, str]:
        return {"SOFTHSM2_CONF": str(self.conf)}


SITUATIONS = (("499700012349012", "CABINET DR TESTEUR", "SA07"),
              ("1750000000", "CH FICTIF", "SA01"))


def make_token(directory: Path, pki: TestPki, ps: PsIdentity, *, label: str | None = None,
               situations: tuple[tuple[str, str, str], ...] = SITUATIONS,
               decoy_first: bool = True) -> SoftToken:
    """A fresh token directory and config, the token initialised with PIN 1234, two RSA-2048 key pairs made on
    the token, their certificates from ``pki``'s persons CA, and the data objects. With ``decoy_first`` the
    authentication key and certificate are created first, so a library that picks "the first key" signs with
    the wrong one."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tokens").mkdir(exist_ok=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {directory}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n")
    label = label or f"CPS3 TEST {ps.idnat_ps}"[:32]
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", PIN],
                   check=True, env=env, capture_output=True)
    os.environ["SOFTHSM2_CONF"] = str(conf)
    lib = pkcs11.lib(SOFTHSM_MODULE)
    lib.reinitialize()
    order = [(AUT_ID, "CPS_PRIV_AUT", "Certificat d'Authentification CPS", Profile.PS_AUTHENTICATION),
             (SIG_ID, "CPS_PRIV_SIG", "Certificat de Signature CPS", Profile.PS_SIGNATURE)]
    if not decoy_first:
        order.reverse()
    certs: dict[bytes, x509.Certificate] = {}
    with lib.get_token(token_label=label).open(rw=True, user_pin=PIN) as s:
        for kid, klabel, clabel, profile in order:
            pub, _ = s.generate_keypair(
                KeyType.RSA, 2048, id=kid, label=klabel, store=True,
                public_template={Attribute.LABEL: klabel.replace("PRIV", "PUB")},
                private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                                  Attribute.PRIVATE: True, Attribute.SIGN: True})
            public = rsa.RSAPublicNumbers(int.from_bytes(pub[Attribute.PUBLIC_EXPONENT], "big"),
                                          int.from_bytes(pub[Attribute.MODULUS], "big")).public_key()
            cert = _issue(pki, profile, ps, public)
            attrs = decode_x509_certificate(cert.public_bytes(Encoding.DER))
            attrs.update({Attribute.TOKEN: True, Attribute.LABEL: clabel, Attribute.ID: kid,
                          Attribute.PRIVATE: False})
            s.create_object(attrs)
            certs[kid] = cert
        info = f"{ps.profession}{ps.idnat_ps}{ps.specialty or ''}".encode()
        for data_label, value, private in [("CPS_INFO_PS", info, False),
                                           ("CPS_NAME_PS", ps.family_name.encode(), False),
                                           *[(f"CPS_ACTIVITY_{i:02d}_PS", encode_practice_situation(*sit), True)
                                             for i, sit in enumerate(situations, 1)]]:
            s.create_object({Attribute.CLASS: ObjectClass.DATA, Attribute.TOKEN: True, Attribute.PRIVATE: private,
                             Attribute.LABEL: data_label, Attribute.APPLICATION: "CPS", Attribute.VALUE: value})
    aut_path = directory / "aut.pem"
    aut_path.write_bytes(certs[AUT_ID].public_bytes(Encoding.PEM))
    return SoftToken(conf, label, ps, certs[SIG_ID], certs[AUT_ID], aut_path)


def _issue(pki: TestPki, profile: Profile, ps: PsIdentity, public: rsa.RSAPublicKey) -> x509.Certificate:
    """A certificate for a key that lives on the token, issued like ``TestPki.issue_ps`` issues its own."""
    from datetime import UTC, datetime, timedelta
    ca = pki._cas["ca-personnes"]   # the persons CA (test support reaches into the test PKI)
    start = datetime.now(UTC) - timedelta(minutes=5)
    return end_entity_certificate(profile, ps.subject(), public, ca, start, start + timedelta(days=365), ps=ps)


class CardChip:
    """The chip's PIN rule SoftHSM2 lacks (it never locks, docs/cps-card.md §6): 3 wrong PINs in a row lock the card,
    which then refuses every login, and the token flags report the counters as a card's PKCS#11 module does
    (USER_PIN_COUNT_LOW, USER_PIN_FINAL_TRY, USER_PIN_LOCKED). ``logins`` counts the C_Login attempts."""

    def __init__(self, max_tries: int = 3) -> None:
        self.max_tries = self.tries_left = max_tries
        self.logins = 0

    def adapt(self, token: Any) -> Any:
        return _ChipToken(token, self)


class _ChipToken:
    def __init__(self, token: Any, chip: CardChip) -> None:
        self._token, self._chip = token, chip

    def __getattr__(self, name: str) -> Any:
        return getattr(self._token, name)

    @property
    def flags(self) -> TokenFlag:
        flags = self._token.flags & ~(TokenFlag.USER_PIN_COUNT_LOW | TokenFlag.USER_PIN_FINAL_TRY
                                      | TokenFlag.USER_PIN_LOCKED)
        chip = self._chip
        if chip.tries_left == 0:
            return flags | TokenFlag.USER_PIN_LOCKED
        if chip.tries_left == 1:
            return flags | TokenFlag.USER_PIN_FINAL_TRY | TokenFlag.USER_PIN_COUNT_LOW
        if chip.tries_left < chip.max_tries:
            return flags | TokenFlag.USER_PIN_COUNT_LOW
        return flags

    def open(self, user_pin: str | None = None, **kw: Any) -> Any:
        chip = self._chip
        if user_pin is None:
            return self._token.open(**kw)
        chip.logins += 1
        if chip.tries_left == 0:
            raise pkcs11.exceptions.PinLocked()
        try:
            session = self._token.open(user_pin=user_pin, **kw)
        except pkcs11.exceptions.PinIncorrect:
            chip.tries_left -= 1
            raise pkcs11.exceptions.PinLocked() if chip.tries_left == 0 else pkcs11.exceptions.PinIncorrect() from None
        chip.tries_left = chip.max_tries
        return session


# --- helpers -----------------------------------------------------------------------------------------------

def _free_port_pair() -> int:
    """Any pair works: the ports are those of pcscd's own network namespace."""
    return random.randrange(20000, 60000)


_CLONE_NEWNET = 0x40000000


def _own_namespace(pid: int) -> bool:
    """True once ``pid`` runs in a network namespace other than ours (unshare has done its work)."""
    try:
        return os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    except OSError:
        return False


def in_network_namespace(pid: int, action: Callable[[], T]) -> T:
    """``action()`` run by a short-lived thread that joined ``pid``'s network namespace (setns affects only the
    calling thread); sockets it creates stay in that namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    outcome: dict[str, Any] = {}

    def run() -> None:
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            if libc.setns(fd, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into pcscd's network namespace failed")
            outcome["value"] = action()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            os.close(fd)

    thread = threading.Thread(target=run, name="netns")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def _send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack(">H", len(payload)) + payload)


def temp_dir(prefix: str) -> Path:
    """A short temp dir (unix socket paths stay under 108 bytes); the caller removes it."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
