"""A test PKI shaped like IGC-Santé's TEST range (docs/vihf.md §9): a root, an intermediate CA for persons and one
for organisations, CPS-like PS certificates, structure certificates, TLS server certificates and CRLs, all
as PEM files in one directory.

FOR TESTS AND DEMOS ONLY: private keys are written unencrypted, and every name says SIMULATION.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from pki._certs import (
    Profile,
    PsIdentity,
    StructureIdentity,
    ca_certificate,
    end_entity_certificate,
)
from pki._signer import SoftwareSigner
from pki._trust import TrustStore

WARNING: Final = ("TEST PKI - for tests and demos only: private keys are stored unencrypted; "
                  "never trust these certificates in production.")

ROOT: Final = "root"
PERSONS: Final = "ca-personnes"
ORGANISATIONS: Final = "ca-organisations"
_CA_NAMES: Final = {
    ROOT: "TEST AC RACINE IGC-SANTE ELEMENTAIRE (SIMULATION)",
    PERSONS: "TEST AC IGC-SANTE ELEMENTAIRE PERSONNES (SIMULATION)",
    ORGANISATIONS: "TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS (SIMULATION)",
}
_INDEX: Final = "index.json"
_BACKDATE: Final = timedelta(minutes=5)   # tolerate clocks slightly behind the issuer's


def _ca_subject(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DMP-XDS TEST"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "IGC-SANTE TEST"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "SIMULATION - NE PAS UTILISER EN PRODUCTION"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


@dataclass(frozen=True)
class Credential:
    """A certificate, its private key and the intermediates up to (not including) the root."""

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey = field(repr=False)
    chain: tuple[x509.Certificate, ...]
    certificate_path: Path
    key_path: Path

    def signer(self) -> SoftwareSigner:
        return SoftwareSigner(self.private_key, self.certificate)


@dataclass(frozen=True)
class CardCredentials:
    """The two key pairs of a CPS card: signature (CPS_PRIV_SIG) and authentication (CPS_PRIV_AUT)."""

    signature: Credential
    authentication: Credential


@dataclass(frozen=True)
class StructureCredentials:
    """A structure's seal ("cachet", signs indirect-mode VIHFs) and TLS client certificate."""

    seal: Credential
    authentication: Credential


class TestPki:
    """The CA hierarchy in ``directory``. :meth:`create` makes it, :meth:`load` opens it; ``issue_*`` add
    end-entity certificates; :meth:`revoke` and :meth:`refresh_crls` maintain the CRLs.

    Times: ``now`` arguments default to the current time; tests pass a fixed instant.
    """

    __test__ = False   # not a pytest test class, whatever its name

    def __init__(self, directory: Path, cas: dict[str, tuple[x509.Certificate, rsa.RSAPrivateKey]],
                 index: dict[str, Any], key_size: int) -> None:
        self.directory = directory
        self._cas = cas
        self._index = index
        self._key_size = key_size

    # --- creation and loading ------------------------------------------------------------------------

    @classmethod
    def create(cls, directory: Path, *, now: datetime | None = None, key_size: int = 2048,
               ca_years: int = 20, crl_days: int = 30) -> TestPki:
        """Root (``ca_years``), two intermediates (half as long) and their CRLs (``crl_days``)."""
        directory.mkdir(parents=True, exist_ok=True)
        if (directory / _INDEX).exists():
            raise FileExistsError(f"{directory} already holds a test PKI")
        now = _utc(now)
        start, root_end = now - _BACKDATE, now + timedelta(days=365 * ca_years)
        root_key = _new_key(key_size)
        root = ca_certificate(_ca_subject(_CA_NAMES[ROOT]), root_key.public_key(), None, root_key, start,
                              root_end, path_length=1)
        cas = {ROOT: (root, root_key)}
        for name in (PERSONS, ORGANISATIONS):
            key = _new_key(key_size)
            cert = ca_certificate(_ca_subject(_CA_NAMES[name]), key.public_key(), (root, root_key), root_key,
                                  start, now + timedelta(days=365 * ca_years // 2), path_length=0)
            cas[name] = (cert, key)
        pki = cls(directory, cas, {"crl_days": crl_days, "crl_numbers": {}, "revoked": {}, "issued": []},
                  key_size)
        for name, (cert, key) in cas.items():
            _write(directory / f"{name}.pem", _pem(cert))
            _write_key(directory / f"{name}.key.pem", key)
        _write(directory / "trust-anchors.pem", _pem(root))
        _write(directory / "intermediates.pem", _pem(cas[PERSONS][0]) + _pem(cas[ORGANISATIONS][0]))
        # For TLS stacks that take one CA file and no separate intermediates (Python's ssl).
        _write(directory / "ca-bundle.pem", _pem(root) + _pem(cas[PERSONS][0]) + _pem(cas[ORGANISATIONS][0]))
        _write(directory / "README.txt", (WARNING + "\n").encode())
        pki.refresh_crls(now=now)
        return pki

    @classmethod
    def load(cls, directory: Path) -> TestPki:
        index = json.loads((directory / _INDEX).read_text())
        cas = {}
        for name in (ROOT, PERSONS, ORGANISATIONS):
            cert = x509.load_pem_x509_certificate((directory / f"{name}.pem").read_bytes())
            key = serialization.load_pem_private_key((directory / f"{name}.key.pem").read_bytes(), None)
            assert isinstance(key, rsa.RSAPrivateKey)
            cas[name] = (cert, key)
        return cls(directory, cas, index, int(index.get("key_size", 2048)))

    # --- what relying parties need -------------------------------------------------------------------

    @property
    def root(self) -> x509.Certificate:
        return self._cas[ROOT][0]

    @property
    def persons_ca(self) -> x509.Certificate:
        return self._cas[PERSONS][0]

    @property
    def organisations_ca(self) -> x509.Certificate:
        return self._cas[ORGANISATIONS][0]

    def crls(self) -> list[x509.CertificateRevocationList]:
        return [x509.load_pem_x509_crl((self.directory / f"{name}.crl.pem").read_bytes())
                for name in (ROOT, PERSONS, ORGANISATIONS)]

    def trust_store(self, *, require_crl: bool = True) -> TrustStore:
        """The root as the only anchor, both intermediates, the current CRLs."""
        return TrustStore([self.root], [self.persons_ca, self.organisations_ca], self.crls(),
                          require_crl=require_crl)

    # --- issuing -------------------------------------------------------------------------------------

    def issue_ps(self, ps: PsIdentity, *, now: datetime | None = None, days: int = 3 * 365,
                 not_before: datetime | None = None) -> CardCredentials:
        """The two certificates of a CPS card for ``ps``, from the persons CA."""
        stem = f"ps-{ps.idnat_ps}"
        return CardCredentials(
            signature=self._issue(Profile.PS_SIGNATURE, ps.subject(), PERSONS, f"{stem}-signature", now, days,
                                  not_before, ps=ps),
            authentication=self._issue(Profile.PS_AUTHENTICATION, ps.subject(), PERSONS,
                                       f"{stem}-authentication", now, days, not_before, ps=ps),
        )

    def issue_structure(self, structure: StructureIdentity, *, now: datetime | None = None,
                        days: int = 3 * 365) -> StructureCredentials:
        """A structure's seal and authentication certificates, from the organisations CA."""
        stem = f"structure-{structure.struct_idnat}"
        return StructureCredentials(
            seal=self._issue(Profile.STRUCTURE_SEAL, structure.subject(), ORGANISATIONS, f"{stem}-seal", now,
                             days, None),
            authentication=self._issue(Profile.STRUCTURE_AUTHENTICATION, structure.subject(), ORGANISATIONS,
                                       f"{stem}-authentication", now, days, None),
        )

    def issue_server(self, hosts: Sequence[str] = ("localhost", "127.0.0.1"), *, now: datetime | None = None,
                     days: int = 2 * 365) -> Credential:
        """A TLS server certificate for ``hosts`` (DNS names or IP addresses), from the organisations CA; a
        ``.chain.pem`` (certificate + intermediate) is written beside it for the server to present."""
        if not hosts:
            raise ValueError("a server certificate needs at least one host name or address")
        subject = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DMP-XDS TEST"),
            x509.NameAttribute(NameOID.COMMON_NAME, hosts[0]),
        ])
        cred = self._issue(Profile.SERVER, subject, ORGANISATIONS, f"server-{hosts[0]}", now, days, None,
                           hosts=hosts)
        _write(cred.certificate_path.with_name(cred.certificate_path.name.removesuffix(".pem") + ".chain.pem"),
               _pem(cred.certificate) + b"".join(_pem(c) for c in cred.chain))
        return cred

    def _issue(self, profile: Profile, subject: x509.Name, ca: str, stem: str, now: datetime | None, days: int,
               not_before: datetime | None, *, ps: PsIdentity | None = None, hosts: Sequence[str] = ()) -> Credential:
        now = _utc(now)
        start = _utc(not_before) if not_before is not None else now - _BACKDATE
        key = _new_key(self._key_size)
        cert = end_entity_certificate(profile, subject, key.public_key(), self._cas[ca], start,
                                      start + timedelta(days=days), ps=ps, hosts=hosts)
        stem = self._free_stem(stem)
        cert_path, key_path = self.directory / f"{stem}.pem", self.directory / f"{stem}.key.pem"
        _write(cert_path, _pem(cert))
        _write_key(key_path, key)
        self._index["issued"].append({"file": cert_path.name, "ca": ca, "serial": f"{cert.serial_number:x}",
                                      "profile": profile.value, "subject": cert.subject.rfc4514_string()})
        self._save_index()
        return Credential(cert, key, (self._cas[ca][0],), cert_path, key_path)

    def _free_stem(self, stem: str) -> str:
        """``stem``, or ``stem-2``, ``stem-3``... when an earlier certificate already has the name."""
        candidate, n = stem, 1
        while (self.directory / f"{candidate}.pem").exists():
            n += 1
            candidate = f"{stem}-{n}"
        return candidate

    # --- revocation ----------------------------------------------------------------------------------

    def revoke(self, cert: x509.Certificate, *, now: datetime | None = None) -> None:
        """Put ``cert`` on its issuer's CRL and reissue that CRL."""
        now = _utc(now)
        ca = next((name for name, (c, _) in self._cas.items() if _issued_by(cert, c)), None)
        if ca is None:
            raise ValueError("this certificate was not issued by this test PKI")
        revoked = self._index["revoked"].setdefault(ca, {})
        revoked.setdefault(f"{cert.serial_number:x}", now.isoformat())
        self._write_crl(ca, now)
        self._save_index()

    def refresh_crls(self, *, now: datetime | None = None) -> None:
        """Reissue every CRL (valid ``crl_days`` from ``now``)."""
        now = _utc(now)
        for ca in (ROOT, PERSONS, ORGANISATIONS):
            self._write_crl(ca, now)
        self._save_index()

    def _write_crl(self, ca: str, now: datetime) -> None:
        cert, key = self._cas[ca]
        number = int(self._index["crl_numbers"].get(ca, 0)) + 1
        self._index["crl_numbers"][ca] = number
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(cert.subject)
            .last_update(now - _BACKDATE)
            .next_update(now + timedelta(days=int(self._index["crl_days"])))
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        )
        for serial, when in self._index["revoked"].get(ca, {}).items():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(int(serial, 16))
                .revocation_date(datetime.fromisoformat(when)).build())
        crl = builder.sign(key, hashes.SHA256())
        _write(self.directory / f"{ca}.crl.pem", crl.public_bytes(serialization.Encoding.PEM))

    def _save_index(self) -> None:
        self._index["key_size"] = self._key_size
        _write(self.directory / _INDEX, (json.dumps(self._index, indent=2) + "\n").encode())


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _utc(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(UTC)


def _new_key(key_size: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    """Unencrypted PKCS#8, readable by its owner only."""
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
