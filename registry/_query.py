"""ITI-18 Registry Stored Query / ITI-51 Multi-Patient Stored Query: request in, AdhocQueryResponse out."""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree
from sqlalchemy import ColumnElement, Connection, select

from registry._catalogue import Problem
from registry._errors import RegistryError, ResponseStatus
from registry._leaf import leaf_parts
from registry._query_args import check
from registry._query_defs import QUERY_BY_UUID, V
from registry._query_params import QueryError, read_query_request
from registry._query_run import STORED_AS_IS, Result, Runner, chunks
from registry._response import error_list
from registry._rim_write import attribute_text
from registry._schema import registry_object
from soap_wsdl import SerializedElement, ns, splice_into_empty

ro = registry_object.c
_PATIENT_PARAMS = tuple(p.name for q in QUERY_BY_UUID.values() for p in q.params if p.kind is V.PATIENT)


class PatientMismatch(Exception):
    """A stored query bound to one patient asked about another (docs/vihf.md §7 step 9). Carries no identifier."""


def stored_query(conn: Connection, request: etree._Element, *, document_filter: ColumnElement[bool] | None,
                 max_results: int, multi_patient: bool, patient_key: str | None = None) -> SerializedElement:
    """Run the AdhocQueryRequest ``request``; ``multi_patient`` selects the ITI-51 queries (and only them).
    With ``patient_key``, raise :class:`PatientMismatch` unless the query concerns that patient alone."""
    try:
        req = read_query_request(request)
        args = check(req)
        if args.query.multi_patient != multi_patient:
            raise QueryError([Problem.QUERY_OF_OTHER_TRANSACTION(
                None, query=args.query.name, transaction="ITI-51" if args.query.multi_patient else "ITI-18")])
        named = [v for name in _PATIENT_PARAMS for v in args.values.get(name, [])]
        if patient_key is not None and (any(v != patient_key for v in named) or (multi_patient and not named)):
            raise PatientMismatch
        limit = max_results if args.return_type == "LeafClass" else max_results * 10
        runner = Runner(conn, args, document_filter, limit, leaf_class=args.return_type == "LeafClass")
        result = runner.run()
        if patient_key is not None and not named and {k for k in runner.patients_of(result.ids()) if k} - {patient_key}:
            raise PatientMismatch
        if len(result) > limit:
            raise QueryError([Problem.TOO_MANY_RESULTS(None, count=len(result), limit=limit)])
        objects = _render(conn, result, args.return_type, runner.stored)
    except QueryError as failed:
        return adhoc_query_response(ResponseStatus.FAILURE, failed.errors)
    return adhoc_query_response(ResponseStatus.SUCCESS, [], objects)


def _render(conn: Connection, result: Result, return_type: str, stored: dict[str, tuple[str, bytes]]
            ) -> list[bytes | memoryview]:
    """The objects of the answer as UTF-8 pieces, in the result's order. LeafClass objects are their stored XML
    with the current status added, spliced as bytes (``registry._leaf``): never parsed (parsing and serializing
    ~100 stored DocumentEntries was 80% of a FindDocuments answer) nor turned into text. ``stored``: (status
    code, stored form) of the rows the query already read, as stored (``Runner.stored``)."""
    ids = result.ids()
    if return_type == "ObjectRef":
        return [f'<rim:ObjectRef id="{attribute_text(i)}"/>'.encode() for i in ids]
    for chunk in chunks([i for i in ids if i not in stored]):
        for r in conn.execute(select(ro.id, *STORED_AS_IS).where(ro.id.in_(chunk))):
            stored[r[0]] = (r[1], r[2])
    parts: list[bytes | memoryview] = []
    for i in ids:
        status, form = stored[i]
        parts += leaf_parts(form, status)
    return parts


def adhoc_query_response(status: ResponseStatus, errors: list[RegistryError],
                         objects: Sequence[bytes | memoryview] | None = None) -> SerializedElement:
    """RegistryErrorList before RegistryObjectList, which is always present (ebRS 3.0 query.xsd, ITI TF-2a 3.18.4.1.3).
    ``objects``: the returned objects' XML, UTF-8, prefix ``rim``, in pieces whose concatenation is the list's
    content."""
    resp = etree.Element(f"{{{ns.QUERY}}}AdhocQueryResponse", nsmap={"query": ns.QUERY, "rim": ns.RIM, "rs": ns.RS})
    resp.set("status", status.value)
    if errors:
        resp.append(error_list(errors))
    etree.SubElement(resp, f"{{{ns.RIM}}}RegistryObjectList")
    head = etree.tostring(resp, encoding="UTF-8")
    if not objects:
        return SerializedElement(head)
    return SerializedElement(splice_into_empty(head, b"<rim:RegistryObjectList/>", b"".join(objects)))
