"""Distinguished names: the VIHF Issuer text against the signer certificate's subject (docs/vihf.md §2, §7 step 6)."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from pki import PsIdentity, StructureIdentity, dn_string
from pki._dn import DnError, parse_dn, same_name

ALICE = PsIdentity.from_rpps("99700012349", "TESTEUR", "ALICE").subject()


def test_dn_string_follows_the_ans_samples() -> None:
    assert dn_string(ALICE) == "CN=899700012349+SN=TESTEUR+GN=ALICE,title=Médecin,C=FR"
    hospital = StructureIdentity.from_finess("750712184", "HOPITAL, TEST", "URGENCES").subject()
    assert dn_string(hospital) == "CN=URGENCES,OU=1750712184,O=HOPITAL\\, TEST,ST=Paris (75),C=FR"


@pytest.mark.parametrize("text", [
    "CN=899700012349+SN=TESTEUR+GN=ALICE,title=Médecin,C=FR",
    "GN=ALICE+SN=TESTEUR+CN=899700012349,title=Médecin,C=FR",          # order inside the multi-valued RDN
    "C=FR,title=Médecin,CN=899700012349+SN=TESTEUR+GN=ALICE",          # forward order
    "cn=899700012349 + sn=testeur + g=alice, T=MÉDECIN; c=fr",         # case, spaces, G, T, ';'
    "CN=899700012349+SN=TESTEUR+GIVENNAME=ALICE,2.5.4.12=Médecin,OID.2.5.4.6=FR",
    "CN=899700012349+SN=TESTEUR+GN=ALICE,title=M\\C3\\A9decin,C=FR",   # hex-escaped UTF-8
    'CN=899700012349+SN="TESTEUR"+GN=ALICE,title=Médecin,C=FR',        # RFC 1779 quotes
    "CN=899700012349+SN=TESTEUR+GN=ALICE,title=Médecin,C=#130246 52",  # BER PrintableString "FR"
])
def test_same_name_after_normalisation(text: str) -> None:
    assert same_name(text, ALICE)


@pytest.mark.parametrize("text", [
    "CN=899700012349+SN=TESTEUR,GN=ALICE,title=Médecin,C=FR",          # RDN split differently
    "CN=899700012349+SN=TESTEUR+GN=ALICE,title=Médecin",               # missing C
    "CN=899700012349+SN=TESTEUR+GN=ALICE,title=Médecin,C=FR,O=X",      # extra RDN
    "CN=899700012340+SN=TESTEUR+GN=ALICE,title=Médecin,C=FR",          # other person
    "CN=899700012349+SN=TESTEUR+GN=ALICE,C=FR,title=Médecin",          # RDNs out of order
    "",
    "CN",
    "XX=1,C=FR",
    'CN="unterminated,C=FR',
])
def test_different_or_unreadable(text: str) -> None:
    assert not same_name(text, ALICE)


def test_unreadable_dns_raise() -> None:
    for text in ("", "CN", "XX=1", 'CN="x', "CN=a\\", "CN=#zz"):
        with pytest.raises(DnError):
            parse_dn(text)


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20).filter(
    lambda t: t.strip() != "")


@given(cn=_text, sn=_text, gn=_text, title=_text)
def test_dn_string_round_trips(cn: str, sn: str, gn: str, title: str) -> None:
    name = x509.Name([
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.TITLE, title)]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                                        x509.NameAttribute(NameOID.SURNAME, sn),
                                        x509.NameAttribute(NameOID.GIVEN_NAME, gn)]),
    ])
    assert same_name(dn_string(name), name)
