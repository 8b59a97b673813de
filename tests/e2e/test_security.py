"""Issue 5 end to end: a real `dmp serve --tls` (client certificate required) and real VIHFs.

Every request goes over mutual TLS with a CPS-like authentication certificate as client certificate. A valid
VIHF is accepted (ITI-41 then ITI-43); each refusal is a SOAP fault whose code, WS-Security subcode and reason
name the failed check, and nothing is stored (the blob directory is unchanged and ITI-43 does not know the
document). SQLite only: the checks happen before any data is touched, whatever the database.
"""

from __future__ import annotations

import copy
import json
import select
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from lxml import etree
from nodes import RunningNode, make_node, start_node, tls_client_context
from signxml import XMLSigner
from vihf_client import ALICE, BOB, alice_claims, fresh_vihf, identities, security_header
from xds_client import ITI18, ITI41, ITI43, Reply, adhoc_query, envelope, post, retrieve_request
from xds_factory import PATIENT, REPOSITORY_ID, Doc, content_id, provide_and_register

from pki import CardCredentials, Credential, SoftwareSigner, TestPki, build_vihf, sign_assertion
from server import Config
from server._tls import ssl_context_factory
from server.cli import main
from soap_wsdl import OutgoingAttachment, ns

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
RESOURCE_ID = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"
INVALID_SECURITY = f"{{{ns.WSSE}}}InvalidSecurity"
FAILED_AUTHENTICATION = f"{{{ns.WSSE}}}FailedAuthentication"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"


@dataclass
class Cards:
    bob: CardCredentials
    expired: CardCredentials
    revoked: CardCredentials
    foreign: CardCredentials


@pytest.fixture(scope="module")
def cards(tmp_path_factory: pytest.TempPathFactory) -> Cards:
    ids = identities()
    now = datetime.now(UTC)
    revoked = ids.pki.issue_ps(ALICE)
    ids.pki.revoke(revoked.signature.certificate)   # before the node starts: it reads the CRLs then
    foreign = TestPki.create(tmp_path_factory.mktemp("foreign") / "pki")
    return Cards(
        bob=ids.pki.issue_ps(BOB),
        expired=ids.pki.issue_ps(ALICE, not_before=now - timedelta(days=400), days=365),
        revoked=revoked,
        foreign=foreign.issue_ps(ALICE),
    )


@pytest.fixture(scope="module")
def secure(cards: Cards, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    running = start_node(make_node(tmp_path_factory.mktemp("secure")), "--tls")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def alice_tls(secure: RunningNode) -> Iterator[httpx.Client]:
    with secure.client() as client:
        yield client


# --- helpers -----------------------------------------------------------------------------------------------


def provide(node: RunningNode, client: httpx.Client, d: Doc, **kwargs) -> Reply:
    return post(node.repository, ITI41, provide_and_register([d]), client=client,
                attachments=[OutgoingAttachment(content_id(d), d.mime_type, d.content)], **kwargs)


def blob_files(node: RunningNode) -> set[Path]:
    return {p for p in node.config.blob_dir.rglob("*") if p.is_file()}


def assert_refused(node: RunningNode, client: httpx.Client, d: Doc, code: str, subcode: str, fragment: str,
                   **kwargs) -> Reply:
    """ITI-41 of ``d`` is refused with this fault, and nothing of it is stored."""
    before = blob_files(node)
    reply = provide(node, client, d, **kwargs)
    assert reply.http_status == 400, reply.fault_reason
    assert reply.fault_code == "env:Sender"
    assert reply.fault_subcode == subcode
    assert f"VIHF refused [{code}," in reply.fault_reason
    assert fragment in reply.fault_reason
    assert "Traceback" not in reply.fault_reason
    assert blob_files(node) == before
    with node.client() as alice:
        back = post(node.repository, ITI43, retrieve_request(REPOSITORY_ID, [d.unique_id]), client=alice)
    assert back.error_codes == ["XDSDocumentUniqueIdError"]
    return reply


def doc(label: str) -> Doc:
    return Doc(f"security test: {label}\r\n".encode(), "Document01")


def _s(local: str) -> str:
    return f"{{{SAML}}}{local}"


def vihf_edited(signer_card: CardCredentials | None = None, edit=None, **claims) -> etree._Element:
    """A VIHF built now, ``edit`` applied before signing."""
    signer = (signer_card or identities().alice).signature.signer()
    assertion = build_vihf(alice_claims(**claims), signer_certificate=signer.certificate,
                           issue_instant=datetime.now(UTC))
    if edit is not None:
        edit(assertion)
    return sign_assertion(assertion, signer)


def without_signature(assertion: etree._Element) -> etree._Element:
    bare = copy.deepcopy(assertion)
    bare.remove(bare.find(f"{{{DS}}}Signature"))
    return bare


def forged_from(original: etree._Element, new_id: str | None) -> etree._Element:
    """The attacker's copy: another patient in resource-id."""
    forged = copy.deepcopy(original)
    if new_id is not None:
        forged.set("ID", new_id)
    for attr in forged.iter(_s("Attribute")):
        if attr.get("Name") == RESOURCE_ID:
            attr[0].text = "185052A01234579^^^&1.2.250.1.213.1.4.10&ISO^NH"
    return forged


# --- acceptance ------------------------------------------------------------------------------------------------


def test_valid_vihf_over_mtls_provides_then_retrieves(secure, alice_tls):
    d = doc("accepted")
    reply = provide(secure, alice_tls, d)
    assert reply.status == "Success", reply.errors
    back = post(secure.repository, ITI43, retrieve_request(REPOSITORY_ID, [d.unique_id]), client=alice_tls)
    assert back.documents() == {d.unique_id: d.content}
    found = post(secure.registry, ITI18, adhoc_query(FIND_DOCUMENTS, [
        ("$XDSDocumentEntryPatientId", [f"'{PATIENT}'"]),
        ("$XDSDocumentEntryStatus", ["('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"])]),
        client=alice_tls, mtom=False)
    assert found.status == "Success"


# --- refusals --------------------------------------------------------------------------------------------------


def test_missing_vihf(secure, alice_tls):
    assert_refused(secure, alice_tls, doc("missing"), "missing-assertion", INVALID_SECURITY, "no wsse:Security",
                   vihf=None)


def test_unsigned_vihf(secure, alice_tls):
    unsigned = build_vihf(alice_claims(), signer_certificate=identities().alice.signature.certificate,
                          issue_instant=datetime.now(UTC))
    assert_refused(secure, alice_tls, doc("unsigned"), "signature-missing", INVALID_SECURITY, "not signed",
                   vihf=unsigned)


def test_tampered_vihf(secure, alice_tls):
    tampered = fresh_vihf()
    for attr in tampered.iter(_s("Attribute")):
        if attr.get("Name") == "urn:oasis:names:tc:xspa:1.0:subject:subject-id":
            attr[0].text = "MALLORY TESTEUR"
    assert_refused(secure, alice_tls, doc("tampered"), "signature-invalid", FAILED_AUTHENTICATION,
                   "does not verify", vihf=tampered)


def test_untrusted_ca(secure, alice_tls, cards):
    assert_refused(secure, alice_tls, doc("untrusted"), "certificate-untrusted", FAILED_AUTHENTICATION,
                   "DMPUntrustedIssuer", vihf=fresh_vihf(cards.foreign.signature.signer()))


def test_expired_certificate(secure, alice_tls, cards):
    assert_refused(secure, alice_tls, doc("expired"), "certificate-expired", FAILED_AUTHENTICATION,
                   "DMPCertificateExpired", vihf=fresh_vihf(cards.expired.signature.signer()))


def test_revoked_certificate(secure, alice_tls, cards):
    assert_refused(secure, alice_tls, doc("revoked"), "certificate-revoked", FAILED_AUTHENTICATION,
                   "DMPCertificateRevoked", vihf=fresh_vihf(cards.revoked.signature.signer()))


def test_a_crl_published_while_serving_is_applied_without_restart(tmp_path):
    """The node re-reads its CRL files when they change: a card revoked after start-up is refused once the
    new CRL is in place; a file that does not load (half-written) leaves the previous trust in use."""
    ids = identities()
    card = ids.pki.issue_ps(ALICE)
    data = tmp_path / "node"
    cfg = make_node(data)
    local = []
    for crl in map(Path, ids.crls):   # the node's own copies, so that this test can spoil them
        (data / crl.name).write_bytes(crl.read_bytes())
        local.append(crl.name)
    cfg = replace(cfg, crls=local, trust_recheck_s=0.2)
    cfg.save()
    node = start_node(cfg)

    def status(signer_card: CardCredentials) -> tuple[int, str]:
        """HTTP status and fault reason ("" when served) of an ITI-43 with a VIHF signed by this card."""
        reply = post(node.repository, ITI43, retrieve_request(REPOSITORY_ID, ["1.2.3"]),
                     vihf=fresh_vihf(signer_card.signature.signer()))
        return reply.http_status, reply.fault_reason

    def wait_for_log(text: str) -> None:
        deadline = time.monotonic() + 30
        while text not in node.log.read_text():
            assert time.monotonic() < deadline, f"the node never logged {text!r}"
            status(ids.alice)   # the check happens on a request
            time.sleep(0.1)

    try:
        assert status(card) == (200, "")
        ids.pki.revoke(card.signature.certificate)
        persons = data / "ca-personnes.crl.pem"
        persons.write_bytes(b"-----BEGIN X509 CRL-----\nhalf-writ")
        wait_for_log("cannot be loaded")
        assert status(card) == (200, "")        # the previous CRL is still in use
        persons.write_bytes((ids.directory / "ca-personnes.crl.pem").read_bytes())
        wait_for_log("trust anchors and CRLs reloaded")
        code, reason = status(card)
        assert code == 400
        assert "certificate-revoked" in reason
        assert "DMPCertificateRevoked" in reason
        assert status(ids.alice) == (200, "")    # every other card is still trusted
    finally:
        node.stop()


def test_debug_logs_carry_no_identity(tmp_path):
    """At --log-level debug the node logs no VIHF content: not the patient's INS, not the professional."""
    node = start_node(make_node(tmp_path / "node"), "--log-level", "debug")
    try:
        reply = post(node.repository, ITI43, retrieve_request(REPOSITORY_ID, ["1.2.3"]))
        assert reply.error_codes == ["XDSDocumentUniqueIdError"]
    finally:
        node.stop()
    log = node.log.read_text()
    assert "DEBUG dmp.server: urn:ihe:iti:2007:RetrieveDocumentSet on the repository endpoint answered" in log
    for secret in (PATIENT.split("^")[0], ALICE.idnat_ps, "Assertion"):
        assert secret not in log


def test_wrong_issuer(secure, alice_tls):
    def edit(assertion: etree._Element) -> None:
        assertion.find(_s("Issuer")).text = "CN=899700012349,O=SOMEONE ELSE,C=FR"
    assert_refused(secure, alice_tls, doc("issuer"), "issuer-mismatch", FAILED_AUTHENTICATION,
                   "is not the signer's subject", vihf=vihf_edited(edit=edit))


def test_nameid_mismatch(secure, alice_tls):
    assert_refused(secure, alice_tls, doc("nameid"), "nameid-mismatch", FAILED_AUTHENTICATION,
                   f"NameID '{BOB.idnat_ps}'", vihf=vihf_edited(name_id=BOB.idnat_ps))


def test_replay(secure, alice_tls):
    vihf = fresh_vihf()
    first = doc("replay, first use")
    assert provide(secure, alice_tls, first, vihf=vihf).status == "Success"
    reply = assert_refused(secure, alice_tls, Doc(b"replayed\r\n", "Document01"), "replay", FAILED_AUTHENTICATION,
                           "already used", vihf=vihf)
    assert "DMPVIHFReplay" in reply.fault_reason


def test_xsw_original_moved_into_advice_of_a_forged_assertion(secure, alice_tls):
    """The signed original hidden inside the forged one: refused as soon as the VIHF is looked for."""
    original = fresh_vihf()
    forged = forged_from(original, "_forged")
    advice = etree.Element(_s("Advice"))
    advice.append(without_signature(original))
    forged.find(_s("Subject")).addnext(advice)
    assert_refused(secure, alice_tls, doc("xsw advice"), "multiple-assertions", INVALID_SECURITY,
                   "2 saml2:Assertion elements", vihf=forged)


def test_xsw_signature_moved_to_the_end(secure, alice_tls):
    vihf = fresh_vihf()
    vihf.append(vihf.find(f"{{{DS}}}Signature"))
    assert_refused(secure, alice_tls, doc("xsw moved"), "signature-misplaced", INVALID_SECURITY,
                   "right after saml2:Issuer", vihf=vihf)


def test_xsw_valid_signature_over_another_element(secure, alice_tls):
    """ALICE's key really signed, but only the Subject, not the claims."""
    card = identities().alice.signature
    unsigned = without_signature(fresh_vihf())
    unsigned.find(_s("Subject")).set("ID", "_subject")
    unsigned.find(_s("Issuer")).addnext(etree.Element(f"{{{DS}}}Signature", Id="placeholder", nsmap={"ds": DS}))
    signed = XMLSigner(c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#").sign(
        unsigned, key=card.private_key, cert=[card.certificate], reference_uri="#_subject")
    assert_refused(secure, alice_tls, doc("xsw subject"), "reference-mismatch", INVALID_SECURITY,
                   "the assertion itself", vihf=signed)


def test_xsw_second_assertion_in_the_security_header(secure, alice_tls):
    original = fresh_vihf()
    d = doc("xsw second assertion")
    env = etree.fromstring(envelope(ITI41, provide_and_register([d]), vihf=None))
    security = security_header(forged_from(without_signature(original), "_forged"))
    security.append(original)
    env.find(f"{{{ns.SOAP12}}}Header").append(security)
    assert_refused(secure, alice_tls, d, "multiple-assertions", INVALID_SECURITY, "2 saml2:Assertion",
                   raw_envelope=etree.tostring(env))


def test_tls_peer_of_another_professional(secure, cards):
    with secure.client(cards.bob.authentication) as bob_tls:
        assert_refused(secure, bob_tls, doc("peer"), "tls-peer-mismatch", FAILED_AUTHENTICATION,
                       "not the same holder")


def test_no_client_certificate_is_refused_in_the_handshake(secure):
    context = ssl.create_default_context(cafile=str(identities().ca_bundle))
    with httpx.Client(verify=context, timeout=10) as anonymous, pytest.raises(httpx.TransportError):
        anonymous.get(f"{secure.url}/health")


def _s_client(node: RunningNode, *options: str, cert: Credential | None = None, expect_alert: bool = True) -> str:
    """`openssl s_client -msg` against the node: its trace, one line per TLS record received (<<<) or sent (>>>).
    Expecting an alert, standard input stays open until a fatal alert is received, s_client ends, or 20 s
    pass (a TLS 1.3 client has finished its handshake before the server's verdict arrives); otherwise
    s_client is asked to quit ("Q") once connected."""
    port = node.url.rsplit(":", 1)[1]
    command = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-msg", "-CAfile",
               str(identities().ca_bundle), *options]
    if cert is not None:
        command += ["-cert", str(cert.certificate_path), "-key", str(cert.key_path)]
    lines: list[str] = []
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        if not expect_alert:
            proc.stdin.write("Q\n")
            proc.stdin.flush()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)
            if not ready:
                continue
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("<<<") and "fatal" in line:
                break
        proc.stdin.close()
        if proc.poll() is None:
            proc.terminate()
        lines += proc.stdout.readlines()
    return "".join(lines)


def _received_alerts(trace: str) -> list[str]:
    return [line.split("fatal ")[-1].strip() for line in trace.splitlines()
            if line.startswith("<<<") and "Alert" in line and "fatal" in line]


LEGACY = ("-cipher", "DEFAULT@SECLEVEL=0")  # lets OpenSSL 3 offer TLS 1.0/1.1 at all


@pytest.mark.parametrize(("options", "card", "alert"), [
    (("-tls1", *LEGACY), "alice", "protocol_version"),
    (("-tls1_1", *LEGACY), "alice", "protocol_version"),
    (("-tls1_3",), None, "certificate_required"),
    (("-tls1_2",), None, "handshake_failure"),
    (("-tls1_3",), "foreign", "unknown_ca"),
    (("-tls1_2",), "foreign", "unknown_ca"),
], ids=["tls1.0", "tls1.1", "no-cert-tls1.3", "no-cert-tls1.2", "untrusted-tls1.3", "untrusted-tls1.2"])
def test_a_refused_handshake_sends_its_tls_alert(secure, cards, options, card, alert):
    """RFC 8446 §6.2 / RFC 5246 §7.2: the client hears why (asyncio alone closed without the alert,
    CPython gh-98078), and the node keeps serving."""
    cert = {"alice": identities().alice.authentication, "foreign": cards.foreign.authentication}.get(card or "")
    assert _received_alerts(_s_client(secure, *options, cert=cert)) == [alert]
    accepted = _s_client(secure, "-tls1_3", cert=identities().alice.authentication, expect_alert=False)
    assert "Verify return code: 0 (ok)" in accepted
    assert _received_alerts(accepted) == []
    with secure.client() as client:
        assert client.get(f"{secure.url}/health").status_code == 200


def test_tls_1_2_is_accepted_and_is_the_minimum(secure):
    context = tls_client_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with httpx.Client(verify=context, timeout=10) as tls12:
        assert tls12.get(f"{secure.url}/health").status_code == 200
    ids = identities()
    server_context = ssl_context_factory(
        None, lambda: ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))  # type: ignore[arg-type]
    assert server_context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert server_context.verify_mode == ssl.CERT_REQUIRED
    assert ids.ca_bundle.exists()


# --- how the node is served -----------------------------------------------------------------------------------


def test_plain_http_on_a_public_address_needs_an_explicit_flag(tmp_path):
    cfg = make_node(tmp_path / "node", patients=())
    result = CliRunner().invoke(main, ["serve", "--data", str(cfg.data_dir), "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "--allow-plain-http" in result.output


def test_plain_http_node_requires_a_vihf_too(tmp_path):
    node = start_node(make_node(tmp_path / "node"))
    try:
        reply = post(node.repository, ITI43, retrieve_request(REPOSITORY_ID, ["1.2.3"]), vihf=None)
        assert (reply.http_status, reply.fault_code, reply.fault_subcode) == (400, "env:Sender", INVALID_SECURITY)
        assert "missing-assertion" in reply.fault_reason
        assert post(node.repository, ITI43, retrieve_request(REPOSITORY_ID, ["1.2.3"])).error_codes == [
            "XDSDocumentUniqueIdError"]
    finally:
        node.stop()


def test_tls_with_workers_sees_the_peer_certificate(tmp_path, cards):
    """`--tls --workers 2`: each worker process uses the mTLS protocol (the TLS peer check happens)."""
    node = start_node(make_node(tmp_path / "node"), "--tls", "--workers", "2")
    try:
        with node.client() as alice_tls:
            d = doc("accepted by a worker")
            assert provide(node, alice_tls, d).status == "Success"
        with node.client(cards.bob.authentication) as bob_tls:
            assert_refused(node, bob_tls, doc("peer, workers"), "tls-peer-mismatch", FAILED_AUTHENTICATION,
                           "not the same holder")
    finally:
        node.stop()


def test_dmp_init_demo_pki_then_issued_card_over_mtls(tmp_path):
    """The documented flow: `dmp init` (demo PKI as trust, TLS server certificate), `dmp pki issue ... ps`, then
    `dmp serve --tls` accepts that card's VIHF over that card's authentication certificate."""
    data = tmp_path / "node"
    runner = CliRunner()
    result = runner.invoke(main, ["init", "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert "TEST PKI" in result.output
    assert f"dmp pki issue --dir {data / 'pki'} ps" in result.output
    cfg = Config.load(data)
    assert cfg.require_vihf
    assert cfg.trust_anchors == ["pki/trust-anchors.pem", "pki/intermediates.pem"]
    assert all(cfg.path(p).exists() for p in (*cfg.trust_anchors, *cfg.crls, cfg.tls_cert, cfg.tls_key,
                                               cfg.tls_client_ca))
    issued = runner.invoke(main, ["pki", "issue", "--dir", str(data / "pki"), "ps", "--rpps", "99700012349",
                                  "--family-name", "TESTEUR", "--given-name", "ALICE", "--specialty", "SM26"])
    assert issued.exit_code == 0, issued.output
    assert runner.invoke(main, ["patient", "create", "--data", str(data), "--ins", PATIENT]).exit_code == 0
    # The patient's consent to Dr ALICE (DMP R7, R19), recorded by the operator.
    assert runner.invoke(main, ["patient", "authorize", "--data", str(data), "--ins", PATIENT,
                                "--ps", "899700012349"]).exit_code == 0

    pki_dir = data / "pki"
    signature = SoftwareSigner.from_pem_files(pki_dir / "ps-899700012349-signature.pem",
                                              pki_dir / "ps-899700012349-signature.key.pem")
    context = ssl.create_default_context(cafile=str(pki_dir / "ca-bundle.pem"))
    context.load_cert_chain(str(pki_dir / "ps-899700012349-authentication.pem"),
                            str(pki_dir / "ps-899700012349-authentication.key.pem"))
    node = start_node(cfg, "--tls", tls_context=context)
    try:
        with node.client() as http:
            d = doc("demo flow")
            assert provide(node, http, d, vihf=fresh_vihf(signature)).status == "Success"
            # The session-wide test PKI is not this node's trust.
            refused = provide(node, http, doc("other PKI"))
            assert "certificate-untrusted" in refused.fault_reason
    finally:
        node.stop()


def test_trust_anchor_option_replaces_the_demo_pki_and_old_configs_load(tmp_path):
    ids = identities()
    data = tmp_path / "node"
    crls = [arg for c in ids.crls for arg in ("--crl", c)]
    result = CliRunner().invoke(main, ["init", "--data", str(data), "--trust-anchor", ids.trust_anchors[0],
                                       "--trust-anchor", ids.trust_anchors[1], *crls])
    assert result.exit_code == 0, result.output
    assert not (data / "pki").exists()
    cfg = Config.load(data)
    assert (cfg.trust_anchors, cfg.crls, cfg.tls_cert) == (ids.trust_anchors, ids.crls, None)
    # A config.json written before issue 5 has none of the security keys: defaults.
    raw = json.loads((data / "config.json").read_text())
    for key in ("trust_anchors", "crls", "require_vihf", "tls_cert", "tls_key", "tls_client_ca"):
        raw.pop(key)
    (data / "config.json").write_text(json.dumps(raw))
    old = Config.load(data)
    assert (old.trust_anchors, old.crls, old.require_vihf, old.tls_client_ca) == ([], [], True, None)


def test_a_replay_is_refused_after_a_restart(tmp_path):
    """Issue 13, defect 4: a single-process node forgot the seen assertion IDs when it restarted, so a VIHF
    already used was accepted again for the rest of its validity."""
    cfg = make_node(tmp_path / "node")
    vihf = fresh_vihf()
    node = start_node(cfg)
    try:
        first = post(node.registry, ITI18, find_documents_request(), mtom=False, vihf=vihf)
        assert first.status == "Success", first.fault_reason
    finally:
        node.stop()
    node = start_node(cfg)
    try:
        again = post(node.registry, ITI18, find_documents_request(), mtom=False, vihf=vihf)
        assert again.fault_code == "env:Sender"
        assert "DMPVIHFReplay" in again.fault_reason
        fresh = post(node.registry, ITI18, find_documents_request(), mtom=False)
        assert fresh.status == "Success", fresh.fault_reason
    finally:
        node.stop()


def find_documents_request() -> etree._Element:
    return adhoc_query(FIND_DOCUMENTS, [
        ("$XDSDocumentEntryPatientId", [f"'{PATIENT}'"]),
        ("$XDSDocumentEntryStatus", ["('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"])])
