"""What the DMP metadata profile costs: registration's validation and row building (``prepare``, the part of
ITI-42 that needs no database) over the registry_scale corpus, under the ``ihe`` and the ``dmp`` profile,
alternated so that a busy machine weighs on both alike. Prints DocumentEntries per second and how many
submissions each profile refused (the corpus uses DMP codes: none).

    .venv/bin/python benchmarks/metadata_profile.py [--patients 300] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import time

from _registry_data import Corpus

from registry import Kind, MetadataProfile, Severity
from registry._submission import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    subs = list(Corpus().submissions(0, args.patients))
    entries = sum(1 for s in subs for o in s.objects if o.kind is Kind.EXTRINSIC_OBJECT)
    print(f"{len(subs)} submissions, {entries} DocumentEntries")
    for _ in range(args.rounds):
        for profile in (MetadataProfile.IHE, MetadataProfile.DMP):
            start = time.perf_counter()
            refused = 0
            for s in subs:
                p = prepare(s, require_repository_attributes=True, now="20260101000000", profile=profile)
                refused += any(e.severity is Severity.ERROR for e in p.findings)
            elapsed = time.perf_counter() - start
            print(f"{profile.value:>4}: {entries / elapsed:8,.0f} DocumentEntries/s ({elapsed:.2f} s), "
                  f"refused {refused}")


if __name__ == "__main__":
    main()
