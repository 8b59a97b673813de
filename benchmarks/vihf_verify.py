"""VIHF verifications per second on one core: the whole `pki.VihfVerifier.verify` pipeline (shape and XSW
checks, chain + CRL validation, signxml RSA-SHA256 verification, attribute checks, replay cache) on real
signed assertions from a fresh test PKI (RSA 2048).

Assertions are built and signed before the clock starts (each with its own ID: the replay cache is live), and
re-parsed from bytes as a server would receive them; the parse is inside the timed loop, as in a request.

    .venv/bin/python benchmarks/vihf_verify.py [--count 2000]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lxml import etree

from pki import (
    AuthMode,
    CodedValue,
    PatientIns,
    PsIdentity,
    ReplayCache,
    Software,
    TestPki,
    VihfClaims,
    VihfVerifier,
    build_vihf,
    sign_assertion,
)
from soap_wsdl import parse_xml

NOW = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="assertions to verify")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})   # one core
    with tempfile.TemporaryDirectory() as tmp:
        pki = TestPki.create(Path(tmp) / "pki", now=NOW - timedelta(days=1))
        card = pki.issue_ps(PsIdentity.from_rpps("99700012349", "TESTEUR", "ALICE", "10", "SM26"),
                            now=NOW - timedelta(days=1))
        signer = card.signature.signer()
        claims = VihfClaims(
            name_id="899700012349", subject_name="ALICE TESTEUR", auth_mode=AuthMode.DIRECT,
            structure_id="499700012349012", sector="SA07", profession=CodedValue.profession("10"),
            specialty=CodedValue.specialty("SM26"), software=Software("LPS-BENCH", "HOMOLOG-TEST-0001", "1"),
            patient=PatientIns("284067512345688", "1.2.250.1.213.1.4.10"))
        t0 = time.perf_counter()
        wire = [etree.tostring(sign_assertion(build_vihf(claims, signer_certificate=signer.certificate,
                                                         issue_instant=NOW), signer))
                for _ in range(args.count)]
        sign_s = time.perf_counter() - t0
        verifier = VihfVerifier(pki.trust_store(), lambda: NOW + timedelta(seconds=1), ReplayCache())

        c0, t0 = time.process_time(), time.perf_counter()
        for data in wire:
            verifier.verify(parse_xml(data))
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0

    print(f"machine: {os.cpu_count()} cores (pinned to 1), Python {platform.python_version()}")
    print(f"assertion size: {len(wire[0])} bytes, RSA 2048, chain leaf -> CA PERSONNES -> root, CRLs checked")
    print(f"build+sign: {args.count / sign_s:,.0f} VIHF/s")
    print(f"verify: {args.count} in {elapsed:.2f} s = {args.count / elapsed:,.0f} verifications/s "
          f"({elapsed / args.count * 1000:.2f} ms each)")
    # Wall time counts whatever else the core ran; CPU time is this process's share only.
    print(f"verify per CPU second: {args.count / cpu:,.0f} verifications/s (CPU {cpu / elapsed:.0%} of the core)")


if __name__ == "__main__":
    main()
