"""``cps`` end to end, as a desktop integrator runs it: a real pcscd with the virtual reader and card, the
SoftHSM2 token as the card's PKCS#11 module, a real ``dmp serve --tls`` node, TLS client authentication with
the token's CPS_PRIV_AUT (stunnel + OpenSSL's PKCS#11 engine), xmlsec1 as an independent VIHF verifier."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from card_sim import PIN, VITALE_LIKE_ATR, CardChip, Pcscd, SoftToken, VirtualCard, wait_for_card
from cryptography.hazmat.primitives.serialization import Encoding
from nodes import RunningNode, make_node, start_node
from vihf_client import ALICE_STRUCTURE, identities
from xds_factory import PATIENT

from cardreader import CardProblem
from cardreader.cli import run

CPS = str(Path(sys.executable).with_name("cps"))
UNKNOWN_PATIENT = "255069999999934^^^&1.2.250.1.213.1.4.10&ISO"


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    node = start_node(make_node(tmp_path_factory.mktemp("cps-node")), "--tls")
    yield node
    node.stop()


@pytest.fixture
def env(pcscd: Pcscd, token: SoftToken) -> dict[str, str]:
    return {**os.environ, **pcscd.environment(), **token.environment(), "CPS_PKCS11_MODULE": token.module,
            "CPS_PIN": PIN}


def cps(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CPS, *args], env=env, capture_output=True, text=True, timeout=120, check=False,
                          stdin=subprocess.DEVNULL)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_card_info_vihf_submit_query_retrieve(inserted: VirtualCard, env: dict[str, str], tls_node: RunningNode,
                                              tmp_path: Path) -> None:
    readers = ok(cps(env, "readers"))
    assert "Virtual CPS Reader 00 00\tCPS3\tATR 3B AC 00 40" in readers

    info = ok(cps(env, "info"))
    for line in ("IdNat_PS:   899700012349", "Name:       ALICE TESTEUR", "Profession: 10 Médecin",
                 "Specialty:  SM26", "Situation 1: structure 499700012349012 CABINET DR TESTEUR sector SA07"):
        assert line in info

    vihf = tmp_path / "vihf.xml"
    vihf.write_text(ok(cps(env, "vihf", "--ins", PATIENT, "--purpose", "bris_de_glace", "--situation", "2")))
    text = vihf.read_text()
    assert "bris_de_glace" in text
    assert ">1750000000<" in text
    d = identities().directory
    xmlsec = subprocess.run([shutil.which("xmlsec1") or "xmlsec1", "--verify", "--trusted-pem",
                             str(d / "trust-anchors.pem"), "--untrusted-pem", str(d / "ca-personnes.pem"),
                             "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion", str(vihf)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert xmlsec.returncode == 0, xmlsec.stderr
    assert "OK" in xmlsec.stdout + xmlsec.stderr

    document = tmp_path / "compte-rendu.pdf"
    document.write_bytes(b"\r\n%PDF-1.4\r\n" + os.urandom(9 * 1024 * 1024) + b"\r\n%%EOF\r\n")
    server = ["--server", tls_node.url, "--ca-file", str(identities().ca_bundle)]
    submitted = cps(env, "submit", str(document), *server, "--ins", PATIENT, "--class", "10", "--type", "11488-4",
                    "--title", "Compte rendu")
    unique_id = ok(submitted).strip()
    assert unique_id.startswith("2.25.")
    assert "sending" in submitted.stderr   # the progress bar of a large file

    listing = ok(cps(env, "query", *server, "--ins", PATIENT)).splitlines()
    rows = [line.split("\t") for line in listing[1:]]
    mine = [r for r in rows if r[0] == unique_id]
    assert len(mine) == 1
    assert mine[0][3:7] == ["10", "11488-4", "application/pdf", str(document.stat().st_size)]

    out = tmp_path / "retrieved.pdf"
    ok(cps(env, "retrieve", *server, "--unique-id", unique_id, "-o", str(out), "--ins", PATIENT))
    assert out.read_bytes() == document.read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".cps-")] == []   # no spool left behind


def test_the_node_refusal_is_its_own_exit_code(inserted: VirtualCard, env: dict[str, str], tls_node: RunningNode,
                                               tmp_path: Path) -> None:
    document = tmp_path / "note.pdf"
    document.write_bytes(b"%PDF-1.4 note")
    result = cps(env, "submit", str(document), "--server", tls_node.url, "--ca-file", str(identities().ca_bundle),
                 "--ins", UNKNOWN_PATIENT, "--class", "10", "--type", "11488-4")
    assert result.returncode == CardProblem.SERVER_REFUSED.exit_code, result.stderr
    assert "XDSUnknownPatientId" in result.stderr


def test_a_wrong_pin_is_refused_with_its_exit_code(inserted: VirtualCard, env: dict[str, str]) -> None:
    result = cps({**env, "CPS_PIN": "0000"}, "info", "--login")
    assert result.returncode == CardProblem.WRONG_PIN.exit_code
    assert "wrong PIN" in result.stderr
    assert "0000" not in result.stderr + result.stdout


def test_three_wrong_pins_lock_the_card(inserted: VirtualCard, env: dict[str, str],
                                        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """In process, with the chip's 3-try rule around SoftHSM2 (which never locks)."""
    for name in ("PCSCLITE_CSOCK_NAME", "SOFTHSM2_CONF", "CPS_PKCS11_MODULE"):
        monkeypatch.setenv(name, env[name])
    chip = CardChip()
    monkeypatch.setenv("CPS_PIN", "9999")
    codes = [run(["info", "--login"], token_adapter=chip.adapt) for _ in range(3)]
    assert codes == [CardProblem.WRONG_PIN.exit_code] * 2 + [CardProblem.PIN_LOCKED.exit_code]
    monkeypatch.setenv("CPS_PIN", PIN)
    assert run(["info", "--login"], token_adapter=chip.adapt) == CardProblem.PIN_LOCKED.exit_code
    assert chip.logins == 3
    err = capsys.readouterr().err
    assert "2 tries left" in err
    assert "1 tries left" in err
    assert "locked" in err


def test_without_a_card_or_with_another_card_cps_refuses(pcscd: Pcscd, reader: str, env: dict[str, str],
                                                         tls_node: RunningNode) -> None:
    assert cps(env, "info").returncode == CardProblem.NO_CARD.exit_code
    query = cps(env, "query", "--server", tls_node.url, "--ins", PATIENT)
    assert query.returncode == CardProblem.NO_CARD.exit_code
    assert "insert the CPS card" in query.stderr
    other = pcscd.card(VITALE_LIKE_ATR).insert()
    try:
        wait_for_card(reader, True)
        assert cps(env, "info").returncode == CardProblem.UNKNOWN_CARD.exit_code
    finally:
        other.remove()
        wait_for_card(reader, False)
    no_service = cps({**env, "PCSCLITE_CSOCK_NAME": str(pcscd.directory / "none.comm")}, "readers")
    assert no_service.returncode == CardProblem.NO_READER.exit_code


def test_a_card_removed_after_one_command_refuses_the_next(pcscd: Pcscd, reader: str, env: dict[str, str]) -> None:
    card = pcscd.card().insert()
    wait_for_card(reader, True)
    ok(cps(env, "vihf", "--ins", PATIENT))
    card.remove()
    wait_for_card(reader, False)
    assert cps(env, "vihf", "--ins", PATIENT).returncode == CardProblem.NO_CARD.exit_code


def test_software_credential_for_demos_warns_and_works(env: dict[str, str], tls_node: RunningNode,
                                                       tmp_path: Path) -> None:
    alice = identities().alice
    software = ["--software-cert", str(alice.signature.certificate_path),
                "--software-key", str(alice.signature.key_path),
                "--software-auth-cert", str(alice.authentication.certificate_path),
                "--software-auth-key", str(alice.authentication.key_path), "--structure-id", ALICE_STRUCTURE]
    server = ["--server", tls_node.url, "--ca-file", str(identities().ca_bundle)]
    document = tmp_path / "demo.txt"
    document.write_bytes(b"demo document\n")
    submitted = cps(env, *software, "submit", str(document), *server, "--ins", PATIENT, "--class", "10",
                    "--type", "11488-4", "--mime-type", "text/plain", "--format", "urn:ihe:iti:xds-sd:text:2008")
    assert submitted.returncode == 0, submitted.stderr
    assert "SOFTWARE credential" in submitted.stderr
    assert "tests and demos only" in submitted.stderr
    listing = cps(env, *software, "query", *server, "--ins", PATIENT)
    assert submitted.stdout.strip() in listing.stdout
    assert "SOFTWARE credential" in listing.stderr


def test_the_pin_is_asked_on_the_terminal_without_echo(inserted: VirtualCard, env: dict[str, str]) -> None:
    """``cps info`` on a real pseudo-terminal, CPS_PIN unset: it prompts, the typed PIN is not echoed."""
    import pty
    import select
    environment = {k: v for k, v in env.items() if k != "CPS_PIN"}
    pid, fd = pty.fork()
    if pid == 0:   # the child: cps with the pty as its controlling terminal
        os.execve(CPS, [CPS, "info"], environment)
    transcript = b""

    def read_until(marker: bytes | None) -> None:
        nonlocal transcript
        while marker is None or marker not in transcript:
            ready, _, _ = select.select([fd], [], [], 60)
            assert ready, f"cps is silent: {transcript!r}"
            try:
                chunk = os.read(fd, 4096)
            except OSError:   # EIO: the child closed the terminal
                return
            if not chunk:
                return
            transcript += chunk

    try:
        read_until(b"PIN of the CPS card: ")
        os.write(fd, PIN.encode() + b"\n")
        read_until(None)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, transcript
    text = transcript.decode()
    assert "Situation 1: structure 499700012349012" in text
    after_prompt = text.split("PIN of the CPS card: ", 1)[1]
    assert after_prompt.startswith("\r\nSituation 1:"), after_prompt   # an echo would show the digits here


def test_a_server_the_ca_file_does_not_vouch_for_is_a_tls_failure(inserted: VirtualCard, env: dict[str, str],
                                                                 tls_node: RunningNode, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(identities().alice.signature.certificate.public_bytes(Encoding.PEM))
    result = cps(env, "query", "--server", tls_node.url, "--ca-file", str(other_ca), "--ins", PATIENT)
    assert result.returncode == CardProblem.TLS.exit_code, result.stderr
    assert "certificate verify failed" in result.stderr


def test_status_declare_consent_then_query_as_desktop_software_does(inserted: VirtualCard, env: dict[str, str],
                                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    # A node where the card holder (Dr ALICE) is not yet authorised on the patient's DMP (docs/consent.md).
    node = start_node(make_node(tmp_path_factory.mktemp("cps-consent"), authorized=()), "--tls")
    try:
        server = ["--server", node.url, "--ca-file", str(identities().ca_bundle), "--ins", PATIENT]
        assert ok(cps(env, "status", *server)).splitlines() == [
            "DMP: open", "authorization: NON_EXISTE", "médecin traitant: no"]
        refused = cps(env, "query", *server)
        assert refused.returncode == CardProblem.SERVER_REFUSED.exit_code
        assert "not-authorized" in refused.stderr
        assert ok(cps(env, "declare-consent", *server)).strip() == "authorization: VALIDE"
        assert "authorization: VALIDE" in ok(cps(env, "status", *server))
        assert ok(cps(env, "query", *server)).startswith("uniqueId\t")
        assert ok(cps(env, "declare-consent", *server, "--remove")).strip() == "authorization: NON_EXISTE"
        assert cps(env, "query", *server).returncode == CardProblem.SERVER_REFUSED.exit_code
    finally:
        node.stop()
