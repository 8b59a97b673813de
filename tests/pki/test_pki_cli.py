"""`dmp pki init|issue|revoke|crl`: the test PKI as files, usable as they are by a relying party."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from vihf_support import alice_claims, reparse, signed_vihf

from pki import (
    CertificateError,
    CertificateRefusal,
    ReplayCache,
    SoftwareSigner,
    TrustStore,
    Usage,
    VihfVerifier,
)
from server.cli import main

WARNING = "for tests and demos only"


def dmp(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def store_of(d: Path) -> TrustStore:
    return TrustStore.from_pem_files([d / "trust-anchors.pem"], [d / "intermediates.pem"],
                                     sorted(d.glob("*.crl.pem")))


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli") / "pki"
    code, out = dmp("pki", "init", "--dir", str(d))
    assert code == 0, out
    assert WARNING in out
    return d


def test_init_makes_the_hierarchy_and_a_localhost_server_certificate(pki_dir: Path) -> None:
    server = cert(pki_dir / "server-localhost.pem")
    at = server.not_valid_before_utc + timedelta(hours=1)
    assert store_of(pki_dir).validate(server, Usage.SERVER, at)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert (pki_dir / "server-localhost.key.pem").exists()
    code, out = dmp("pki", "init", "--dir", str(pki_dir))
    assert code == 2
    assert "already holds a test PKI" in out


def test_issue_a_ps_card_and_sign_a_vihf_with_its_files(pki_dir: Path) -> None:
    code, out = dmp("pki", "issue", "--dir", str(pki_dir), "ps", "--rpps", "99700012349", "--family-name", "TESTEUR",
                    "--given-name", "ALICE", "--profession", "10", "--specialty", "SM26")
    assert code == 0, out
    assert WARNING in out
    sig_path = next(Path(line.split()[0]) for line in out.splitlines() if "signature.pem" in line)
    signer = SoftwareSigner.from_pem_files(sig_path, sig_path.with_name(sig_path.name.replace(".pem", ".key.pem")))
    at = signer.certificate.not_valid_before_utc + timedelta(hours=1)
    vihf = signed_vihf(signer, alice_claims(), issue_instant=at)
    principal = VihfVerifier(store_of(pki_dir), lambda: at, ReplayCache()).verify(reparse(vihf))
    assert principal.professional_id == "899700012349"


def test_issue_structure_and_server(pki_dir: Path) -> None:
    code, out = dmp("pki", "issue", "--dir", str(pki_dir), "structure", "--siret", "39172288100052",
                    "--name", "GIE TEST", "--service", "ACCUEIL")
    assert code == 0, out
    seal = cert(pki_dir / "structure-339172288100052-seal.pem")
    assert store_of(pki_dir).validate(seal, Usage.SIGNATURE, seal.not_valid_before_utc + timedelta(hours=1))
    code, out = dmp("pki", "issue", "--dir", str(pki_dir), "--days", "30", "server", "--host", "dmp.test.local")
    assert code == 0, out
    server = cert(pki_dir / "server-dmp.test.local.pem")
    assert server.not_valid_after_utc - server.not_valid_before_utc == timedelta(days=30)


@pytest.mark.parametrize(("args", "message"), [
    (["ps", "--rpps", "99700012340", "--family-name", "X", "--given-name", "Y"], "Luhn"),
    (["ps", "--rpps", "99700012349", "--adeli", "751234567", "--family-name", "X", "--given-name", "Y"],
     "exactly one"),
    (["structure", "--finess", "750712185", "--name", "X"], "Luhn"),
    (["structure", "--name", "X"], "exactly one"),
])
def test_issue_refuses_bad_identifiers(pki_dir: Path, args: list[str], message: str) -> None:
    code, out = dmp("pki", "issue", "--dir", str(pki_dir), *args)
    assert code == 2
    assert message in out


def test_issue_without_a_pki(tmp_path: Path) -> None:
    code, out = dmp("pki", "issue", "--dir", str(tmp_path), "server")
    assert code == 2
    assert "dmp pki init" in out


def test_revoke_then_refresh_crls(pki_dir: Path) -> None:
    code, out = dmp("pki", "issue", "--dir", str(pki_dir), "ps", "--adeli", "751234567", "--family-name", "INFIRMIER",
                    "--given-name", "BOB", "--profession", "60")
    assert code == 0, out
    aut_path = next(Path(line.split()[0]) for line in out.splitlines() if "authentication.pem" in line)
    code, out = dmp("pki", "revoke", "--dir", str(pki_dir), "--cert", str(aut_path))
    assert code == 0, out
    assert WARNING in out
    aut = cert(aut_path)
    with pytest.raises(CertificateError) as info:
        store_of(pki_dir).validate(aut, Usage.AUTHENTICATION, aut.not_valid_before_utc + timedelta(hours=1))
    assert info.value.reason is CertificateRefusal.REVOKED
    before = x509.load_pem_x509_crl((pki_dir / "ca-personnes.crl.pem").read_bytes())
    code, out = dmp("pki", "crl", "--dir", str(pki_dir))
    assert code == 0, out
    after = x509.load_pem_x509_crl((pki_dir / "ca-personnes.crl.pem").read_bytes())
    number = after.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number == before.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
    assert after.get_revoked_certificate_by_serial_number(aut.serial_number) is not None


def test_revoke_refuses_a_certificate_from_elsewhere(pki_dir: Path, tmp_path: Path) -> None:
    assert dmp("pki", "init", "--dir", str(tmp_path / "other"))[0] == 0
    code, out = dmp("pki", "revoke", "--dir", str(pki_dir), "--cert", str(tmp_path / "other" / "server-localhost.pem"))
    assert code == 2
    assert "not issued by this test PKI" in out
