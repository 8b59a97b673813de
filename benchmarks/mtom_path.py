"""CPU per ITI-41 in the wire path, stage by stage: the MTOM decoder (with the envelope read at the root
part, as the server does), the envelope reader alone, the ebRIM read of the submission, the registry's
validation and rows (``prepare``, no database), and the answer (RegistryResponse, envelope, MTOM framing).
Best of N of ``time.process_time_ns`` over a batch, on the same request bytes as
``iti41_throughput.py``: machine load moves these figures far less than HTTP rates (issue 13).

    .venv/bin/python benchmarks/mtom_path.py [--rounds 7] [--batch 300]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import _harness  # noqa: F401  (test support on sys.path)
from iti41_throughput import encode_requests
from xds_client import ITI41

from registry import RegistryResponse, ResponseStatus, now_dtm, read_registry_object_list, registry_response
from registry._submission import prepare
from soap_wsdl import (
    MtomDecoder,
    mtom_content_type,
    mtom_stream,
    new_boundary,
    ns,
    read_envelope,
    response_envelope,
)


def best_us(fn: Callable[[], object], rounds: int, batch: int) -> float:
    best = None
    for _ in range(rounds):
        start = time.process_time_ns()
        for _ in range(batch):
            fn()
        per = (time.process_time_ns() - start) / batch / 1000
        best = per if best is None else min(best, per)
    assert best is not None
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=300)
    args = parser.parse_args()
    request = encode_requests(1)[0]
    spool = Path(tempfile.mkdtemp(prefix="mtom-bench-"))

    def decode() -> None:
        decoder = MtomDecoder(request.content_type, spool, on_root=lambda root, _ct: read_envelope(root))
        decoder.feed(request.body)
        decoder.close().discard()

    probe = MtomDecoder(request.content_type, spool)
    probe.feed(request.body)
    message = probe.close()
    message.discard()
    root = message.root
    soap = read_envelope(root)

    sor = soap.body.find(f"{{{ns.LCM}}}SubmitObjectsRequest")
    assert sor is not None
    rol = sor.find(f"{{{ns.RIM}}}RegistryObjectList")

    def read_and_prepare() -> None:
        # prepare() assigns ids in the objects it is given: each round reads them afresh
        found = prepare(read_registry_object_list(rol), require_repository_attributes=False, now=now_dtm())
        assert not found.findings, found.findings

    def answer() -> None:
        body = registry_response(RegistryResponse(ResponseStatus.SUCCESS))
        envelope = response_envelope(ITI41 + "Response", soap.message_id, body)
        boundary, root_cid = new_boundary(), "root.message@dmp-xds"
        b"".join(mtom_stream(envelope, [], boundary, root_cid))
        mtom_content_type(boundary, root_cid, ITI41 + "Response")

    print(f"request: {len(request.body)} bytes, root part {len(root)} bytes; best of {args.rounds} x {args.batch}")
    for name, fn in (("MTOM decode + envelope read", decode), ("envelope read alone", lambda: read_envelope(root)),
                     ("ebRIM read", lambda: read_registry_object_list(rol)),
                     ("ebRIM read + prepare (validation, rows)", read_and_prepare),
                     ("answer (RegistryResponse, envelope, MTOM)", answer)):
        print(f"  {name:45s} {best_us(fn, args.rounds, args.batch):8.1f} µs CPU per document")


if __name__ == "__main__":
    main()
