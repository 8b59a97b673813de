"""VIHF signing with a CPS-like card key on SoftHSM2: signatures/s through ``cardreader`` (CardSigner, the
``cps`` library path) against raw python-pkcs11 ``C_Sign`` on the same token and key, whole VIHFs/s (build,
exclusive c14n, card signature), and the PKCS#11 calls made per VIHF, counted by OpenSC's pkcs11-spy between
the library and the module.

    .venv/bin/python benchmarks/card_signing.py [--signatures 1000] [--rounds 9] [--vihfs 300]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import _harness  # noqa: F401 - puts tests/support on sys.path
import pkcs11
from _harness import machine
from card_sim import PIN, SIG_ID, SOFTHSM_MODULE, make_token, remove_dir, temp_dir
from pkcs11 import Mechanism, ObjectClass
from vihf_client import ALICE

from cardreader import CardSigner, CpsCard, Professional, patient_ins
from pki import Software, TestPki

SPY = "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so"
TARGET_RATIO = 0.9
PATIENT = patient_ins("284067512345688^^^&1.2.250.1.213.1.4.10&ISO")
SOFTWARE = Software("BENCH", "HOMOLOG-BENCH", "0.1.0")
# A canonical SignedInfo is ~600-700 bytes; the card hashes and signs it (CKM_SHA256_RSA_PKCS).
SIGNED_INFO = b"<ds:SignedInfo>" + b"x" * 640 + b"</ds:SignedInfo>"


def rate(n: int, fn: Callable[[], object]) -> float:
    return rates(n, fn)[0]


def rates(n: int, fn: Callable[[], object]) -> tuple[float, float]:
    """Calls per second of wall time and per second of this process's CPU time (SoftHSM2 signs in-process, so
    the CPU rate is the one other load on the machine disturbs least)."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - wall), n / (time.process_time() - cpu)


def spy_counts(token_label: str, log: Path, vihfs: int) -> tuple[collections.Counter[str], int]:
    """PKCS#11 calls seen by pkcs11-spy while ``vihfs`` VIHFs are signed on an already logged-in card."""
    os.environ["PKCS11SPY"] = SOFTHSM_MODULE
    os.environ["PKCS11SPY_OUTPUT"] = str(log)
    card = CpsCard.open(SPY, token_label)
    card.login(PIN)
    professional = Professional.from_card(card, SOFTWARE)
    professional.vihf(PATIENT)                       # first use: finds the key once
    before = _calls(log)
    for _ in range(vihfs):
        professional.vihf(PATIENT)
    after = _calls(log)
    card.close()
    return after - before, vihfs


def _calls(log: Path) -> collections.Counter[str]:
    return collections.Counter(re.findall(r"^\d+: (C_\w+)", log.read_text(errors="replace"), re.MULTILINE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--signatures", type=int, default=1000, help="signatures per round and path")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--vihfs", type=int, default=300, help="whole VIHFs for the VIHF rate and the call count")
    parser.add_argument("--count-calls", nargs=2, metavar=("LOG", "TOKEN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.count_calls:
        counts, _ = spy_counts(args.count_calls[1], Path(args.count_calls[0]), args.vihfs)
        print(json.dumps(counts))
        return
    print(machine())
    work = temp_dir("cps-bench-")
    try:
        pki = TestPki.create(work / "pki")
        token = make_token(work / "hsm", pki, ALICE)

        lib = pkcs11.lib(SOFTHSM_MODULE)
        raw_session = lib.get_token(token_label=token.label).open(user_pin=PIN)
        raw_key = raw_session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=SIG_ID)
        card = CpsCard.open(SOFTHSM_MODULE, token.label)
        card.login(PIN)
        signer = CardSigner(card)
        assert signer.sign(SIGNED_INFO) == raw_key.sign(SIGNED_INFO, mechanism=Mechanism.SHA256_RSA_PKCS)

        raw_runs, lib_runs = [], []
        for _ in range(args.rounds):      # alternate, so machine noise hits both paths alike
            raw_runs.append(rates(args.signatures, lambda: raw_key.sign(SIGNED_INFO,
                                                                        mechanism=Mechanism.SHA256_RSA_PKCS)))
            lib_runs.append(rates(args.signatures, lambda: signer.sign(SIGNED_INFO)))
        print(f"RSA-2048 signatures on SoftHSM2, {args.rounds} rounds x {args.signatures}, medians:")
        for i, what in enumerate(("wall", "CPU")):
            raw = statistics.median(r[i] for r in raw_runs)
            library = statistics.median(r[i] for r in lib_runs)
            paired = statistics.median(lib[i] / rw[i] for lib, rw in zip(lib_runs, raw_runs, strict=True))
            print(f"  per {what:4} s: raw python-pkcs11 C_Sign {raw:6.0f}/s, cardreader CardSigner.sign "
                  f"{library:6.0f}/s, ratio {library / raw:.3f} (paired: {paired:.3f}; target >= {TARGET_RATIO})")
        raw = statistics.median(r[0] for r in raw_runs)

        professional = Professional.from_card(card, SOFTWARE)
        vihf_rate = rate(args.vihfs, lambda: professional.vihf(PATIENT))
        print(f"whole VIHFs (build + exc-c14n + card signature): {vihf_rate:.0f} /s "
              f"({1000 / vihf_rate:.2f} ms each; the C_Sign alone is {1000 / raw:.2f} ms)")
        card.close()
        raw_session.close()

        # In a fresh process: SoftHSM2 is already initialised in this one, and the spy would initialise it again.
        out = subprocess.run([sys.executable, __file__, "--count-calls", str(work / "spy.log"), token.label,
                              "--vihfs", str(args.vihfs)], capture_output=True, text=True, check=True)
        counts, n = collections.Counter(json.loads(out.stdout)), args.vihfs
        per = {name: counts[name] / n for name in sorted(counts)}
        print(f"PKCS#11 calls per VIHF through pkcs11-spy ({n} VIHFs, card logged in beforehand): "
              + ", ".join(f"{k} {v:g}" for k, v in per.items()))
        print(f"  C_Sign {per.get('C_Sign', 0):g} (target 1), C_Login {per.get('C_Login', 0):g} (target 0), "
              f"C_FindObjectsInit {per.get('C_FindObjectsInit', 0):g} (target 0)")
    finally:
        remove_dir(work)


if __name__ == "__main__":
    main()
