"""Zstandard settings of the registry's stored form (``registry._stored_form``) measured inside the ITI-41
pipeline: the same in-process pipeline as ``iti41_cpu.py``, with the stored form's compressor swapped between
settings batch by batch (alternated, so the machine's drift falls on all of them). For each setting: CPU time
of ``compress`` per document (thread CPU time around each call; one submission stores a DocumentEntry, a
SubmissionSet and an Association), and the stored bytes per object kind. The data of a batch is written by the
setting under test; what is read back is the same text whatever the setting (Zstandard's format).

    .venv/bin/python benchmarks/cpu_stored_form.py [--rounds 4] [--batch 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import zstandard
from _harness import machine
from iti41_cpu import _batch
from iti41_throughput import encode_requests
from nodes import make_node

import registry._stored_form as stored_form
from server._app import create_app

SETTINGS = {"level 6 (before)": (6, False), "level 3": (3, False), "level 3, tables for 16 KB": (3, True),
            "level 6, tables for 16 KB": (6, True)}


def compressor(level: int, small_tables: bool) -> zstandard.ZstdCompressor:
    """The stored form's compressor at ``level``; ``small_tables``: with the parameters Zstandard picks for a
    source of at most 16 KB (its tables sized for the dictionary and one object, not for an unknown size)."""
    dictionary = zstandard.ZstdCompressionDict(stored_form._DICTIONARY_1, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    if small_tables:
        params = zstandard.ZstdCompressionParameters.from_level(
            level, source_size=16384 - len(stored_form._DICTIONARY_1), dict_size=len(stored_form._DICTIONARY_1),
            write_checksum=1, write_content_size=1, write_dict_id=0)
        return zstandard.ZstdCompressor(dict_data=dictionary, compression_params=params)
    return zstandard.ZstdCompressor(level=level, dict_data=dictionary, write_checksum=True,
                                    write_content_size=True, write_dict_id=False)


class Measured:
    """Stands for the thread's compressor: times each call and records the output size by object kind."""

    def __init__(self, inner: zstandard.ZstdCompressor, ns: list[int], sizes: dict[str, list[int]]) -> None:
        self.inner, self.ns, self.sizes = inner, ns, sizes

    def compress(self, data: bytes) -> bytes:
        t0 = time.thread_time_ns()
        out = self.inner.compress(data)
        self.ns.append(time.thread_time_ns() - t0)
        kind = data[5:data.index(b" ")].decode()
        self.sizes[kind].append(len(out) + 1)
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args()
    print(f"stored form settings inside ITI-41; {machine()}")
    requests = encode_requests(50 + args.rounds * len(SETTINGS) * args.batch)
    ns: dict[str, list[int]] = defaultdict(list)
    cpu: dict[str, float] = defaultdict(float)
    sizes: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    with tempfile.TemporaryDirectory(prefix="dmp-bench-") as tmp:
        app = create_app(make_node(Path(tmp) / "node"))
        loop = asyncio.new_event_loop()
        failures = loop.run_until_complete(_batch(app, requests[:50]))
        start = 50
        for _ in range(args.rounds):
            for name, (level, small_tables) in SETTINGS.items():
                stored_form._codecs = _Swapped(level, small_tables, ns[name], sizes[name])  # type: ignore[assignment]
                t0 = os.times()
                failures += loop.run_until_complete(_batch(app, requests[start:start + args.batch]))
                t1 = os.times()
                cpu[name] += t1.user + t1.system - t0.user - t0.system
                start += args.batch
        loop.close()
    print(f"{args.rounds} rounds x {len(SETTINGS)} settings x {args.batch} ITI-41; failures: {failures}")
    for name in SETTINGS:
        per_doc = sum(ns[name]) / 1000 / (args.rounds * args.batch)
        kinds = ", ".join(f"{kind} {sum(v) / len(v):.0f} B" for kind, v in sorted(sizes[name].items()))
        whole = 1000 * cpu[name] / (args.rounds * args.batch)
        print(f"{name:28s} whole pipeline {whole:5.2f} ms CPU/doc, compress {per_doc:6.1f} us CPU/doc; stored size: "
              f"{kinds}")


class _Swapped(threading.local):
    """The stored form's per-thread codecs, with the compressor of the setting under test."""

    def __init__(self, level: int, small_tables: bool, ns: list[int], sizes: dict[str, list[int]]) -> None:
        self.compressor = Measured(compressor(level, small_tables), ns, sizes)
        self.decompressors = {v: zstandard.ZstdDecompressor(dict_data=d)
                              for v, d in stored_form._DICTIONARIES.items()}


if __name__ == "__main__":
    main()
