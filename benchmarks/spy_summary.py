"""Where the server's Python time goes in a py-spy profile of ITI-41 (`iti41_throughput.py --py-spy OUT`).

    .venv/bin/python benchmarks/spy_summary.py OUT [--cpu-ms-per-doc 8.2] [OUT2 ...]

Each sample (a stack of the GIL-holding thread) goes to the first stage below whose marker appears in the
stack, so the stages do not overlap and add up to 100%. With ``--cpu-ms-per-doc`` (the run's "srv CPU ms/doc"),
the shares are also shown as ms per document: an estimate (GIL time is not all CPU time, and native code that
releases the GIL, e.g. fsync or SQLite's I/O, is not sampled)."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("VIHF verification", ("establish_principal",)),
    ("blob store (write, fsync calls, rename)", ("FilesystemBlobStore",)),
    ("consent: dossier read", ("Guard.dossier",)),
    ("consent: history entry, first access, notices", ("write_trace",)),
    ("registry: checks against the registry (Known.load)", ("Known.load",)),
    ("registry: validation + rows (prepare)", ("prepare (registry",)),
    ("registry: transaction (group commit, inserts, commit)", ("_GroupCommit", "Store.write", "grouped_write")),
    ("ebRIM read", ("read_registry_object_list",)),
    ("MTOM decode, SOAP envelope read", ("_mtom", "MtomDecoder", "_read_body", "read_envelope", "_finish_mtom")),
    ("answer (RegistryResponse, envelope)", ("response_envelope", "registry_response")),
    ("other request handling (app)", ("server/_app.py", "repository/", "registry/", "consent/")),
    ("HTTP protocol (parser, ASGI cycle, Starlette)", ("h11", "httptools", "RequestResponseCycle", "starlette/")),
    ("thread-pool hand-offs (anyio, queues)", ("anyio/", "queue.py", "threading.py", "concurrent/")),
    ("event loop (asyncio)", ("asyncio/",)),
]


def summary(path: Path) -> tuple[int, Counter[str]]:
    total, stages = 0, Counter[str]()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        stages[next((name for name, markers in STAGES if any(m in stack for m in markers)), "other")] += n
    return total, stages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("profiles", nargs="+", type=Path)
    ap.add_argument("--cpu-ms-per-doc", type=float, nargs="*", default=[],
                    help="server CPU ms per document of each profile's run (same order)")
    args = ap.parse_args()
    results = [summary(p) for p in args.profiles]
    print(f"{'stage':<55}" + "".join(f" {p.name[:22]:>22}" for p in args.profiles))
    for name in [n for n, _ in STAGES] + ["other"]:
        cells = []
        for i, (total, stages) in enumerate(results):
            share = stages[name] / max(1, total)
            ms = f" {share * args.cpu_ms_per_doc[i]:5.2f} ms" if i < len(args.cpu_ms_per_doc) else ""
            cells.append(f"{100 * share:5.1f}%{ms}".rjust(22))
        print(f"{name:<55} " + " ".join(cells))
    print(f"{'samples':<55} " + " ".join(f"{total:>22}" for total, _ in results))


if __name__ == "__main__":
    main()
