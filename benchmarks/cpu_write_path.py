"""This session's CPU cuts of the ITI-41 write path (issue 13), before against after in one process: the pipeline of
``iti41_cpu.py`` (the app of `dmp serve` through ASGI, fresh signed VIHFs, SQLite FULL), with the former
implementations put back for every other batch, so that the machine's drift (±25 % over minutes) falls on both
alike. What "before" puts back (each as it was):

- the stored form compressed at Zstandard level 6 (``registry._stored_form``; now level 3);
- the consent checker's submitted documents through the whole typed DocumentEntry (``registry.submitted_documents``);
- the history entry's JSON through ``dataclasses.asdict`` and ``json.dumps`` (``consent._history``);
- the notice's instant through ``strptime`` (``consent._notices``);
- the first-access insert at every request (the dossier read's ``accessed_by`` dropped);
- every CX parsed afresh (``registry._hl7``: the last values are now remembered).

``--change NAME`` puts back only that one (repeatable), to measure each change on its own.

Prints CPU ms per document (user + system, and user alone; getrusage) of each side over all rounds.

    .venv/bin/python benchmarks/cpu_write_path.py [--rounds 30] [--batch 30] [--change NAME ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import resource
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import zstandard
from _harness import machine
from iti41_cpu import _batch
from iti41_throughput import encode_requests
from nodes import make_node

import consent._dossiers
import consent._history
import consent._notices
import consent._xds
import registry._hl7
import registry._stored_form as stored_form
from registry import DocumentFacts, Kind, Origin, RimSubmission, _model
from server._app import create_app


def _to_json_before(self: consent._history.HistoryEntry) -> str:
    data = dataclasses.asdict(self)
    data["documents"] = list(self.documents)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _moment_before(at: str) -> datetime:
    return datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _submitted_before(sub: RimSubmission, patient_key: str, origin: Origin | None) -> list[DocumentFacts]:
    out = []
    for o in sub.objects:
        if o.kind is not Kind.EXTRINSIC_OBJECT:
            continue
        de = _model.document_entry(o)
        out.append(DocumentFacts(
            entry_id=o.id, lid=o.lid or o.id, unique_id=de.unique_id, patient_key=patient_key,
            confidentiality=frozenset(c.code for c in de.confidentiality_codes),
            class_code=de.class_code.code if de.class_code else None,
            type_code=de.type_code.code if de.type_code else None,
            authors=frozenset(a.person.split("^", 1)[0] for a in de.authors if a.person),
            submitter=origin.submitter if origin else None,
            submitter_structure=origin.structure if origin else None,
            filed_by_patient=origin.by_patient if origin else False))
    return out


class _Level6(threading.local):
    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(level=6, dict_data=stored_form._DICTIONARIES[1],
                                                   write_checksum=True, write_content_size=True, write_dict_id=False)
        self.decompressors = {v: zstandard.ZstdDecompressor(dict_data=d) for v, d in stored_form._DICTIONARIES.items()}


def _load_before(*args: Any, **kwargs: Any) -> Any:
    dossier = _LOAD(*args, **kwargs)
    return None if dossier is None else dataclasses.replace(dossier, accessed_by=frozenset())


_LOAD = consent._dossiers.load
CHANGES: dict[str, tuple[Any, str, Any]] = {
    "zstd-level": (stored_form, "_codecs", None),   # made per run: one compressor per thread
    "submitted-documents": (consent._xds, "submitted_documents", _submitted_before),
    "history-json": (consent._history.HistoryEntry, "to_json", _to_json_before),
    "notice-instant": (consent._notices, "_moment", _moment_before),
    "first-access": (consent._dossiers, "load", _load_before),
    "cx-parse": (registry._hl7, "_remembered_cx", registry._hl7._read_cx),
}
"""Each change: where its former implementation goes back (owner, attribute, former value)."""


@contextlib.contextmanager
def before(changes: list[str]) -> Iterator[None]:
    """The former implementations of ``changes``, for the time of the block."""
    saved = [(owner, name, _Level6() if value is None else value)
             for owner, name, value in (CHANGES[c] for c in changes)]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in saved]
    for owner, name, value in saved:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in originals:
            setattr(owner, name, value)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--batch", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--verbose", action="store_true", help="each round's figures")
    ap.add_argument("--change", choices=sorted(CHANGES), action="append",
                    help="put back only this change's former implementation (repeatable; default: all)")
    args = ap.parse_args()
    changes = args.change or list(CHANGES)
    print(f"ITI-41 write path, before/after alternated in one process; {machine()}")
    print(f"before = the former {', '.join(changes)}")
    requests = encode_requests(args.warmup + 2 * args.rounds * args.batch)
    totals = {"before": [0.0, 0.0], "after": [0.0, 0.0]}
    with tempfile.TemporaryDirectory(prefix="dmp-bench-") as tmp:
        app = create_app(make_node(Path(tmp) / "node"))
        loop = asyncio.new_event_loop()
        failures = loop.run_until_complete(_batch(app, requests[: args.warmup]))
        start = args.warmup
        for r in range(args.rounds):
            line = []
            # Alternate which side goes first, so that neither always follows the other.
            for side in (("before", "after") if r % 2 == 0 else ("after", "before")):
                batch = requests[start:start + args.batch]
                start += args.batch
                with before(changes) if side == "before" else contextlib.nullcontext():
                    t0 = resource.getrusage(resource.RUSAGE_SELF)
                    failures += loop.run_until_complete(_batch(app, batch))
                    t1 = resource.getrusage(resource.RUSAGE_SELF)
                user, both = t1.ru_utime - t0.ru_utime, t1.ru_utime + t1.ru_stime - t0.ru_utime - t0.ru_stime
                totals[side][0] += both
                totals[side][1] += user
                line.append(f"{side} {1000 * both / len(batch):.2f}")
            if args.verbose:
                print(f"round {r + 1}: " + ", ".join(line) + " ms/doc")
        loop.close()
    docs = args.rounds * args.batch
    print(f"{args.rounds} rounds x 2 x {args.batch} ITI-41; failures: {failures}")
    for side, (both, user) in totals.items():
        print(f"{side:6s}: CPU {1000 * both / docs:.3f} ms/doc (user {1000 * user / docs:.3f})")
    print(f"after - before: {1000 * (totals['after'][0] - totals['before'][0]) / docs:+.3f} ms/doc "
          f"(user {1000 * (totals['after'][1] - totals['before'][1]) / docs:+.3f})")


if __name__ == "__main__":
    main()
