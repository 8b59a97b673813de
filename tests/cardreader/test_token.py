"""The CPS token through a real PKCS#11 module (SoftHSM2) shaped like the card: holder, PIN rule, keys chosen by
CKA_ID, the card-signed VIHF verified by the node's own verifier, removal mid-session (docs/cps-card.md §2–§5)."""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pkcs11
import pytest
from card_sim import AUT_ID, PIN, SIG_ID, CardChip, Pcscd, SoftToken, wait_for_card
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from vihf_client import identities

from cardreader import (
    CardError,
    CardProblem,
    CardSigner,
    CpsCard,
    Professional,
    end_session_on_removal,
    module_path,
    patient_ins,
)
from pki import ReplayCache, Software, VihfVerifier

SOFTWARE = Software("LPS-TEST", "HOMOLOG-TEST-0001", "0.1.0")
PATIENT = "284067512345688^^^&1.2.250.1.213.1.4.10&ISO"


@pytest.fixture
def chip() -> CardChip:
    return CardChip()


@pytest.fixture
def card(token: SoftToken, chip: CardChip) -> CpsCard:
    c = CpsCard.open(token.module, token.label, adapter=chip.adapt)
    yield c
    c.close()


def test_the_module_path_comes_from_the_option_then_the_environment_then_the_os(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CPS_PKCS11_MODULE", "/opt/env/libcps.so")
    assert module_path("/opt/cli/libcps.so") == "/opt/cli/libcps.so"
    assert module_path(None) == "/opt/env/libcps.so"
    monkeypatch.delenv("CPS_PKCS11_MODULE")
    assert module_path(None) == "/usr/local/galss/libcps3_pkcs11_lux.so"


def test_a_missing_module_or_token_is_a_clear_error(token: SoftToken) -> None:
    with pytest.raises(CardError) as missing:
        CpsCard.open("/nonexistent/libcps3_pkcs11_lux.so")
    assert missing.value.problem is CardProblem.NO_TOKEN
    assert "CPS_PKCS11_MODULE" in str(missing.value)
    with pytest.raises(CardError) as other:
        CpsCard.open(token.module, "NO SUCH CARD")
    assert other.value.problem is CardProblem.NO_CARD


def test_the_holder_is_read_without_pin(card: CpsCard, chip: CardChip, token: SoftToken) -> None:
    h = card.holder
    assert (h.idnat_ps, h.family_name, h.given_name) == ("899700012349", "TESTEUR", "ALICE")
    assert (h.profession, h.profession_label, h.specialty, h.test_card) == ("10", "Médecin", "SM26", True)
    assert chip.logins == 0
    assert not card.logged_in
    assert card.signature_certificate == token.signature_certificate
    with pytest.raises(CardError) as info:
        card.practice_situations()
    assert info.value.problem is CardProblem.WRONG_PIN   # private objects need the PIN


def test_after_login_the_practice_situations_are_read(card: CpsCard) -> None:
    card.login(PIN)
    assert [(s.number, s.structure_id, s.structure_name, s.sector) for s in card.practice_situations()] == [
        (1, "499700012349012", "CABINET DR TESTEUR", "SA07"), (2, "1750000000", "CH FICTIF", "SA01")]


def test_the_signature_key_is_the_one_with_the_signature_certificate_cka_id(card: CpsCard, token: SoftToken) -> None:
    """The token holds the authentication key first (a "first key" pick would take it)."""
    card.login(PIN)
    assert (card.signature_id, card.authentication_id) == (SIG_ID, AUT_ID)
    signature = CardSigner(card).sign(b"VIHF SignedInfo")
    sig_key = token.signature_certificate.public_key()
    aut_key = token.authentication_certificate.public_key()
    assert isinstance(sig_key, rsa.RSAPublicKey)
    assert isinstance(aut_key, rsa.RSAPublicKey)
    sig_key.verify(signature, b"VIHF SignedInfo", padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        aut_key.verify(signature, b"VIHF SignedInfo", padding.PKCS1v15(), hashes.SHA256())


def test_the_private_keys_never_leave_the_token(card: CpsCard) -> None:
    card.login(PIN)
    key = card.signature_key()
    assert key[pkcs11.Attribute.SENSITIVE]
    assert not key[pkcs11.Attribute.EXTRACTABLE]
    assert key[pkcs11.Attribute.NEVER_EXTRACTABLE]
    assert key[pkcs11.Attribute.ALWAYS_SENSITIVE]
    with pytest.raises(pkcs11.exceptions.AttributeSensitive):
        key[pkcs11.Attribute.PRIVATE_EXPONENT]


def test_a_wrong_pin_reports_the_tries_left_and_the_right_one_resets_them(card: CpsCard, chip: CardChip) -> None:
    for expected in (2, 1):
        with pytest.raises(CardError) as info:
            card.login("0000")
        assert (info.value.problem, info.value.tries_left) == (CardProblem.WRONG_PIN, expected)
        assert f"{expected} tries left" in str(info.value)
        assert "0000" not in str(info.value)
    card.login(PIN)
    assert card.logged_in
    assert chip.tries_left == 3


def test_three_wrong_pins_lock_the_card_and_no_further_attempt_is_made(token: SoftToken, chip: CardChip) -> None:
    card = CpsCard.open(token.module, token.label, adapter=chip.adapt)
    problems = []
    for _ in range(3):
        with pytest.raises(CardError) as info:
            card.login("9999")
        problems.append(info.value.problem)
    assert problems == [CardProblem.WRONG_PIN, CardProblem.WRONG_PIN, CardProblem.PIN_LOCKED]
    again = CpsCard.open(token.module, token.label, adapter=chip.adapt)   # a new session, as a new program run
    assert again.pin_state().locked
    with pytest.raises(CardError) as locked:
        again.login(PIN)
    assert locked.value.problem is CardProblem.PIN_LOCKED
    assert "PUK" in str(locked.value)
    assert chip.logins == 3   # the locked card got no C_Login


def test_a_vihf_signed_on_the_card_passes_the_nodes_verifier(card: CpsCard) -> None:
    card.login(PIN)
    professional = Professional.from_card(card, SOFTWARE, situation=1)
    ids = identities()
    verifier = VihfVerifier(ids.pki.trust_store(), lambda: datetime.now(UTC), ReplayCache())
    principal = verifier.verify(professional.vihf(patient_ins(PATIENT)))
    assert (principal.professional_id, principal.name) == ("899700012349", "ALICE TESTEUR")
    assert principal.structure_id == "499700012349012"
    assert principal.patient is not None
    assert principal.patient.cx == PATIENT


def test_a_missing_practice_situation_is_named(card: CpsCard) -> None:
    card.login(PIN)
    with pytest.raises(CardError) as info:
        Professional.from_card(card, SOFTWARE, situation=7)
    assert info.value.problem is CardProblem.CARD_CONTENT
    assert "it has 1, 2" in str(info.value)


def test_a_card_pulled_mid_session_ends_the_session(card: CpsCard, pcscd: Pcscd, reader: str) -> None:
    """The reader's removal event ends the PKCS#11 session; every later call says the card is gone, even after
    the card comes back (a new login is needed)."""
    inserted = pcscd.card().insert()
    wait_for_card(reader, True)
    card.login(PIN)
    signer = CardSigner(card)
    assert signer.sign(b"before")
    watcher = end_session_on_removal(card, reader)
    try:
        inserted.remove()
        deadline = time.monotonic() + 10
        while not card.removed and time.monotonic() < deadline:
            time.sleep(0.05)
        for call in (lambda: signer.sign(b"after"), card.practice_situations, lambda: card.login(PIN)):
            with pytest.raises(CardError) as info:
                call()
            assert info.value.problem is CardProblem.CARD_REMOVED
    finally:
        watcher.stop()
        wait_for_card(reader, False)


SPY = "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so"
_SPY_SCRIPT = """
import sys
from cardreader import CpsCard, Professional, patient_ins
from pki import Software
card = CpsCard.open(sys.argv[1], sys.argv[2])
card.login(sys.argv[3])
professional = Professional.from_card(card, Software("LPS-TEST", "HOMOLOG-TEST-0001"))
for _ in range(int(sys.argv[5])):
    professional.vihf(patient_ins(sys.argv[4]))
card.close()
"""


def _spied_calls(token: SoftToken, log: Path, vihfs: int) -> collections.Counter[str]:
    env = {**os.environ, **token.environment(), "PKCS11SPY": token.module, "PKCS11SPY_OUTPUT": str(log)}
    subprocess.run([sys.executable, "-c", _SPY_SCRIPT, SPY, token.label, PIN, PATIENT, str(vihfs)], env=env,
                   check=True, capture_output=True, timeout=60)
    return collections.Counter(re.findall(r"^\d+: (C_\w+)", log.read_text(errors="replace"), re.MULTILINE))


def test_a_vihf_costs_one_c_sign_and_no_login_or_object_search(token: SoftToken, tmp_path: Path) -> None:
    """PKCS#11 calls counted by OpenSC's pkcs11-spy between the library and SoftHSM2 (fresh processes): six
    VIHFs cost exactly five C_SignInit + C_Sign more than one, and nothing else."""
    one = _spied_calls(token, tmp_path / "one.log", 1)
    six = _spied_calls(token, tmp_path / "six.log", 6)
    assert one["C_Login"] == 1
    assert six - one == collections.Counter({"C_SignInit": 5, "C_Sign": 5})


def test_sessions_closed_under_the_library_read_as_a_pulled_card(token: SoftToken) -> None:
    """What a PKCS#11 module does when the card leaves: it closes the slot's sessions, and the next call gets
    CKR_SESSION_HANDLE_INVALID; the library reports the card removed and refuses every later call."""
    import ctypes
    card = CpsCard.open(token.module, token.label)
    card.login(PIN)
    signer = CardSigner(card)
    assert signer.sign(b"before")
    slot_id = card._slot.slot_id   # the module's own slot, as the module would close it
    assert ctypes.CDLL(token.module).C_CloseAllSessions(ctypes.c_ulong(slot_id)) == 0
    with pytest.raises(CardError) as info:
        signer.sign(b"after")
    assert info.value.problem is CardProblem.CARD_REMOVED
    assert card.removed
    with pytest.raises(CardError) as again:
        card.practice_situations()
    assert again.value.problem is CardProblem.CARD_REMOVED


def test_pkcs11_tool_sees_the_cps_objects_of_the_test_token(token: SoftToken) -> None:
    """The test token can be inspected with OpenSC's pkcs11-tool, and holds what a CPS card holds."""
    out = subprocess.run(["pkcs11-tool", "--module", token.module, "--token-label", token.label, "--login",
                          "--pin", PIN, "--list-objects"], env={**os.environ, **token.environment()},
                         capture_output=True, text=True, timeout=60, check=True).stdout
    for label in ("CPS_PRIV_SIG", "CPS_PRIV_AUT", "Certificat de Signature CPS", "Certificat d'Authentification CPS",
                  "CPS_INFO_PS", "CPS_NAME_PS", "CPS_ACTIVITY_01_PS", "CPS_ACTIVITY_02_PS"):
        assert label in out
    assert "never extractable" in out
