"""TLS client authentication with the card's ``CPS_PRIV_AUT`` (docs/vihf.md §1, docs/cps-card.md §5 step 7).

Python's ``ssl`` (hence httpx, requests, zeep) cannot use a non-extractable PKCS#11 key: it has no OpenSSL
engine, provider or store hook, and the OpenSSL 3 ``pkcs11-provider`` is not packaged for Debian 12. OpenSSL's
PKCS#11 *engine* (libengine-pkcs11-openssl) can, so a local stunnel4 in client mode holds the TLS session to
the node with the card key, and the client speaks plain HTTP to it on 127.0.0.1 (README, "Desktop integration").

The hop's configuration, PIN included, reaches stunnel through a pipe (``-fd``): it is never written to disk
nor put on a command line, and stunnel logs at error level only, where it prints no configuration value.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from cardreader._errors import CardError, CardProblem

STUNNEL: Final = "stunnel4"
#: The DMP speaks TLS 1.2; PKCS#1 v1.5 signature algorithms only, because many cards cannot do RSA-PSS and
#: OpenSSL would otherwise choose rsa_pss_rsae_* for CertificateVerify (docs/cps-card.md §5 step 7).
_OPENSSL_CONF: Final = """openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_section
[ssl_section]
system_default = tls_defaults
[tls_defaults]
MinProtocol = TLSv1.2
MaxProtocol = TLSv1.2
SignatureAlgorithms = RSA+SHA256:RSA+SHA384:RSA+SHA512
"""


class CardTlsTunnel:
    """A TLS 1.2 hop to ``server_url`` (``https://host:port``) authenticated with the key whose CKA_ID is
    ``key_id`` on the token ``token_label`` of ``module``, presenting ``certificate``; the server is verified
    against ``ca_file`` and its name. :attr:`url` is the local ``http://127.0.0.1:port`` to use instead."""

    def __init__(self, *, module: str, token_label: str, key_id: bytes, certificate: x509.Certificate,
                 server_url: str, ca_file: str, pin: str) -> None:
        parsed = urllib.parse.urlsplit(server_url)
        if parsed.scheme != "https" or not parsed.hostname:
            raise ValueError(f"{server_url} is not an https:// URL")
        self.server_url = server_url
        self._host, self._port = parsed.hostname, parsed.port or 443
        self._module, self._token_label, self._key_id = module, token_label, key_id
        self._certificate, self._ca_file, self._pin = certificate, ca_file, pin
        self._dir: Path | None = None
        self._errors: collections.deque[str] = collections.deque(maxlen=20)
        self._reader: threading.Thread | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> CardTlsTunnel:
        stunnel = shutil.which(STUNNEL) or shutil.which("stunnel")
        if stunnel is None:
            raise CardError(CardProblem.TLS, "stunnel4 is not installed (it carries TLS with the card key)")
        self._dir = Path(tempfile.mkdtemp(prefix="cps-tls-"))
        cert = self._dir / "authentication.pem"
        cert.write_bytes(self._certificate.public_bytes(Encoding.PEM))
        (self._dir / "openssl.cnf").write_text(_OPENSSL_CONF)
        local = _free_port()
        env = {**os.environ, "OPENSSL_CONF": str(self._dir / "openssl.cnf")}
        self._process = subprocess.Popen(  # noqa: S603 - our fixed program and arguments
            [stunnel, "-fd", "0"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=env, start_new_session=True)
        assert self._process.stdin is not None
        self._process.stdin.write(self._config(local, cert).encode())
        self._process.stdin.close()
        self._pin = ""   # stunnel holds it now; this object no longer needs it
        self._reader = threading.Thread(target=self._collect_errors, name="cps-tls-log", daemon=True)
        self._reader.start()
        self.url = f"http://127.0.0.1:{local}"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process.wait()
                if self._reader is not None:
                    self._reader.join(timeout=5)
                errors = self.errors()
                self.stop()
                raise CardError(CardProblem.TLS, f"the TLS hop (stunnel) stopped: {errors}")
            if _listening(local):
                return self
            time.sleep(0.02)
        self.stop()
        raise CardError(CardProblem.TLS, "the TLS hop (stunnel) did not start in 15 s")

    def errors(self) -> str:
        """stunnel's latest error lines (it logs at error level only: no configuration value, no PIN)."""
        return " | ".join(self._errors)

    def _collect_errors(self) -> None:
        assert self._process is not None
        assert self._process.stderr is not None
        for line in self._process.stderr:
            text = line.decode(errors="replace").strip()
            if text:
                self._errors.append(text)

    def _config(self, local: int, cert: Path) -> str:
        label = urllib.parse.quote(self._token_label, safe="")
        key_id = "".join(f"%{b:02x}" for b in self._key_id)
        check = "checkIP" if _is_ip(self._host) else "checkHost"
        return "\n".join([
            "foreground = yes", "pid =", "debug = 3", "syslog = no",
            "engine = pkcs11", f"engineCtrl = MODULE_PATH:{self._module}", f"engineCtrl = PIN:{self._pin}",
            "[dmp]", "client = yes", f"accept = 127.0.0.1:{local}", f"connect = {self._host}:{self._port}",
            "engineId = pkcs11", f"key = pkcs11:token={label};id={key_id};type=private", f"cert = {cert}",
            f"CAfile = {self._ca_file}", "verifyChain = yes", f"{check} = {self._host}",
            "sslVersionMin = TLSv1.2", "sslVersionMax = TLSv1.2", "",
        ])

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            os.kill(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self._process.pid, signal.SIGKILL)
                self._process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None
        if self._process is not None and self._process.stderr is not None:
            self._process.stderr.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> CardTlsTunnel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True
