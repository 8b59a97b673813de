"""VIHF verifications per second on one core: our whole `pki.VihfVerifier.verify` next to libxmlsec1 (the
`xmlsec` PyPI binding, in-process) verifying the same signed assertions.

Ours: every check the server makes (shape and XSW guards, XML-DSig reference and signature, chain + CRL
validation, issuer and identity, attributes, freshness) and the replay store the server uses (`SharedReplayStore`,
the SQLite file `replay.db`, WAL). libxmlsec1: the signature (reference digest, exclusive c14n, RSA) with the
key taken from `KeyInfo/X509Data` and its certificate verified against a keys manager holding the root CA
(trusted) and the intermediate CA (untrusted): chain and dates, no CRL (the binding cannot load one).

Real assertions from a fresh test PKI (RSA 2048, chain leaf -> CA PERSONNES -> root), each with its own ID, all
built and signed before the clock starts; each round times both sides over the same N assertions, parsed from
bytes inside the timed loop (the same hardened parser for both), one thread pinned to one core, the two sides
alternating every 50 assertions so that whatever else runs on the machine slows both alike. Printed: rates per
second of wall time and per second of the thread's CPU time (the steadier figure on a shared machine; on a
quiet one they agree), the median over the rounds, and the ratio. Then a breakdown of where our time goes
(cProfile over one more batch, shares of the profiled time applied to the median CPU time per verification:
profiling slows Python code more than C code, so these are estimates).

    .venv/bin/python benchmarks/vihf_verify.py [--count 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lxml import etree

from pki import (
    AuthMode,
    CodedValue,
    PatientIns,
    PsIdentity,
    SharedReplayStore,
    Software,
    TestPki,
    TrustStore,
    Usage,
    VihfClaims,
    VihfVerifier,
    build_vihf,
    sign_assertion,
)
from soap_wsdl import parse_xml

CHUNK = 50
CLAIMS = VihfClaims(
    name_id="899700012349", subject_name="ALICE TESTEUR", auth_mode=AuthMode.DIRECT,
    structure_id="499700012349012", sector="SA07", profession=CodedValue.profession("10"),
    specialty=CodedValue.specialty("SM26"), software=Software("LPS-BENCH", "HOMOLOG-TEST-0001", "1"),
    patient=PatientIns("284067512345688", "1.2.250.1.213.1.4.10"))

# Where the time of one verification goes: (stage, functions whose cumulative profiled time is the stage's).
_RSA_VERIFY = ("~", "<method 'verify' of 'cryptography.hazmat.bindings._rust.openssl.rsa.RSAPublicKey' objects>")
STAGES: list[tuple[str, list[tuple[str, str]]]] = [
    ("parse (hardened parser)", [("_xml.py", "parse_xml")]),
    ("copy + shape + XSW guards + signature layout", [
        ("_vihf_verify.py", "_standalone"), ("_vihf_verify.py", "_check_shape"),
        ("_vihf_verify.py", "_the_signature"), ("_xmldsig.py", "read_signature")]),
    ("KeyInfo certificate (remembered)", [("_keyinfo.py", "signer")]),
    ("chain + CRL (TrustStore.validate, remembered)", [("_trust.py", "validate")]),
    ("signature (verify_enveloped)", [("_xmldsig.py", "verify_enveloped")]),
    ("  of which RSA verify (OpenSSL)", [_RSA_VERIFY]),
    ("  of which 2 x exclusive c14n, SHA-256, removal", [("_xmldsig.py", "verify_enveloped"), ("-", "rsa")]),
    ("attributes (read_signed)", [("_vihf_read.py", "read_signed")]),
    ("issuer, window, identity, principal", [("_keyinfo.py", "is_named"), ("_vihf_verify.py", "_check_window"),
                                             ("_vihf_verify.py", "_check_identity"),
                                             ("_vihf_verify.py", "_principal")]),
    ("replay store (SQLite file)", [("_replay_shared.py", "remember")]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="assertions per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (each times both sides)")
    parser.add_argument("--no-profile", action="store_true", help="skip the breakdown")
    args = parser.parse_args()
    try:
        import xmlsec
    except Exception as exc:   # ImportError, or xmlsec's own error when its libxml2 is not lxml's
        sys.exit(f"the xmlsec binding cannot be used ({exc}): run scripts/bootstrap.sh test")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})   # one core
    print(f"machine: {os.cpu_count()} cores (pinned to 1), Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}, load average {os.getloadavg()[0]:.2f} at start")
    print(f"libxmlsec1 {'.'.join(map(str, xmlsec.get_libxmlsec_version()))}, "
          f"libxml2 {'.'.join(map(str, etree.LIBXML_VERSION))}")

    with tempfile.TemporaryDirectory() as tmp:
        # Real time throughout: libxmlsec1 checks the certificates at the current time, and so does ours.
        made = datetime.now(UTC) - timedelta(days=1)
        pki = TestPki.create(Path(tmp) / "pki", now=made)
        signer = pki.issue_ps(PsIdentity.from_rpps("99700012349", "TESTEUR", "ALICE", "10", "SM26"),
                              now=made).signature.signer()
        trust = pki.trust_store()
        ours = VihfVerifier(trust, replay_cache=SharedReplayStore(Path(tmp) / "replay.db"))
        manager = xmlsec.KeysManager()
        manager.load_cert(str(pki.directory / "root.pem"), xmlsec.constants.KeyDataFormatPem,
                          xmlsec.constants.KeyDataTypeTrusted)
        manager.load_cert(str(pki.directory / "ca-personnes.pem"), xmlsec.constants.KeyDataFormatPem,
                          xmlsec.constants.KeyDataTypeNone)

        def verify_ours(data: bytes) -> None:
            ours.verify(parse_xml(data))

        def verify_xmlsec(data: bytes) -> None:
            root = parse_xml(data)
            xmlsec.tree.add_ids(root, ["ID"])
            ctx = xmlsec.SignatureContext(manager)
            ctx.set_enabled_key_data([xmlsec.constants.KeyDataX509])
            ctx.verify(xmlsec.tree.find_node(root, xmlsec.constants.NodeSignature))

        def batch(n: int) -> list[bytes]:
            now = datetime.now(UTC)
            return [etree.tostring(sign_assertion(build_vihf(CLAIMS, signer_certificate=signer.certificate,
                                                             issue_instant=now), signer)) for _ in range(n)]

        warm = batch(200)
        print(f"assertion: {len(warm[0])} bytes, RSA 2048 / SHA-256, exclusive c14n")
        for data in warm:   # warm-up; also proves that both accept the assertions
            verify_ours(data)
            verify_xmlsec(data)
        tampered = warm[0].replace(b"ALICE TESTEUR", b"ALICE TESTEUS")
        for name, check in (("ours", verify_ours), ("libxmlsec1", verify_xmlsec)):
            try:
                check(tampered)
            except Exception:   # each side has its own error type
                continue
            sys.exit(f"{name} accepted a tampered assertion: the benchmark would measure nothing")

        sides = {"ours": verify_ours, "libxmlsec1": verify_xmlsec}
        wall: dict[str, list[float]] = {name: [] for name in sides}
        cpu: dict[str, list[float]] = {name: [] for name in sides}
        for r in range(args.rounds):
            wire = batch(args.count)
            spent = {name: [0.0, 0.0] for name in sides}
            for start in range(0, len(wire), CHUNK):
                chunk = wire[start:start + CHUNK]
                for name in (sides if (start // CHUNK + r) % 2 == 0 else reversed(sides)):
                    w, c = _timed(sides[name], chunk)
                    spent[name][0] += w
                    spent[name][1] += c
            for name in sides:
                wall[name].append(len(wire) / spent[name][0])
                cpu[name].append(len(wire) / spent[name][1])
            print(f"round {r + 1}: ours {wall['ours'][-1]:,.0f}/s wall, {cpu['ours'][-1]:,.0f}/s CPU; "
                  f"libxmlsec1 {wall['libxmlsec1'][-1]:,.0f}/s wall, {cpu['libxmlsec1'][-1]:,.0f}/s CPU")

        print(f"\nmedian of {args.rounds} rounds of {args.count} (one thread on one core):")
        print(f"  {'':42} {'per s wall':>11} {'us each':>8} {'per s CPU':>10} {'us each':>8}")
        for name, label in (("ours", "ours (every check, SQLite replay store)"),
                            ("libxmlsec1", "libxmlsec1 (signature + chain, no CRL)")):
            w, c = statistics.median(wall[name]), statistics.median(cpu[name])
            print(f"  {label:<42} {w:11,.0f} {1e6 / w:8.0f} {c:10,.0f} {1e6 / c:8.0f}")
        ratio_wall = statistics.median(wall["ours"]) / statistics.median(wall["libxmlsec1"])
        ratio_cpu = statistics.median(cpu["ours"]) / statistics.median(cpu["libxmlsec1"])
        print(f"  ratio ours / libxmlsec1: {ratio_wall:.2f} wall, {ratio_cpu:.2f} CPU (target >= 0.6)")

        _chain_costs(pki, signer.certificate)
        if not args.no_profile:
            _breakdown(verify_ours, batch(args.count), 1e6 / statistics.median(cpu["ours"]))


def _timed(fn: Callable[[bytes], None], wire: list[bytes]) -> tuple[float, float]:
    """Wall and CPU seconds (this thread's) to run ``fn`` over ``wire``."""
    c0, t0 = time.thread_time(), time.perf_counter()
    for data in wire:
        fn(data)
    return time.perf_counter() - t0, time.thread_time() - c0


def _chain_costs(pki: TestPki, cert: object) -> None:
    """TrustStore.validate on a store that has not seen the certificate, then on one that has."""
    fresh: list[float] = []
    for _ in range(20):
        store: TrustStore = pki.trust_store()
        t0 = time.perf_counter()
        store.validate(cert, Usage.SIGNATURE, datetime.now(UTC))  # type: ignore[arg-type]
        fresh.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(2000):
        store.validate(cert, Usage.SIGNATURE, datetime.now(UTC))  # type: ignore[arg-type]
    remembered = (time.perf_counter() - t0) / 2000
    print(f"chain + CRL validation: {statistics.median(fresh) * 1e6:.0f} us the first time a trust store sees "
          f"the certificate, {remembered * 1e6:.1f} us once remembered")


def _breakdown(fn: Callable[[bytes], None], wire: list[bytes], cpu_us: float) -> None:
    profile = cProfile.Profile()
    profile.enable()
    for data in wire:
        fn(data)
    profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    cumulative: dict[tuple[str, str], float] = {}
    for (filename, _line, function), (_cc, _nc, _tt, ct, _callers) in stats.items():
        key = (os.path.basename(filename), function)
        cumulative[key] = cumulative.get(key, 0.0) + ct
    total = cumulative[("vihf_verify.py", "verify_ours")]
    print(f"\nbreakdown of one verification (cProfile over {len(wire)}; share of the profiled time, and that share "
          f"of the median {cpu_us:.0f} us of CPU):")
    for label, functions in STAGES:
        found = [cumulative[f] for f in functions if f in cumulative]
        if not found:   # code that has no such function (e.g. an older version of pki)
            print(f"  {label:<50} {'n/a':>6}")
            continue
        spent = sum(found)
        if ("-", "rsa") in functions:
            spent -= cumulative.get(_RSA_VERIFY, 0.0)
        print(f"  {label:<50} {spent / total:6.1%} {spent / total * cpu_us:6.0f} us")


if __name__ == "__main__":
    main()
