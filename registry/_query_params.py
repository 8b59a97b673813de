"""Stored query request parsing (ITI TF-2a §3.18.4.1.2.3): AdhocQueryRequest -> parameters.

Value syntax: a single value is ``'text'`` (a quote inside is doubled) or a bare token (timestamps,
numbers); a list is ``('a','b')``, and the values of several ``rim:Value`` elements of one Slot are one OR
list. Only the parameters that allow AND/OR may repeat their Slot; each Slot is then an OR group and the
groups are ANDed. Parsing is pure; every refusal carries the XDS error code the spec names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from registry._catalogue import Problem
from registry._errors import RegistryError
from soap_wsdl import ns


class QueryError(Exception):
    def __init__(self, errors: list[RegistryError]) -> None:
        super().__init__("; ".join(e.context for e in errors))
        self.errors = errors


def _fail(problem: Problem, **values: object) -> QueryError:
    return QueryError([problem(None, **values)])


@dataclass(frozen=True)
class QueryRequest:
    query_id: str
    return_type: str
    home: str | None
    slots: list[tuple[str, list[str]]] = field(default_factory=list)  # (name, raw values) in document order


def read_query_request(el: etree._Element) -> QueryRequest:
    if el.tag != f"{{{ns.QUERY}}}AdhocQueryRequest":
        raise _fail(Problem.NOT_AN_ADHOC_QUERY, element=etree.QName(el).localname)
    option = el.find(f"{{{ns.QUERY}}}ResponseOption")
    return_type = option.get("returnType", "RegistryObject") if option is not None else "RegistryObject"
    if return_type not in ("LeafClass", "ObjectRef"):
        raise _fail(Problem.RETURN_TYPE_UNSUPPORTED, return_type=return_type)
    query = el.find(f"{{{ns.RIM}}}AdhocQuery")
    if query is None or not query.get("id"):
        raise _fail(Problem.QUERY_WITHOUT_ID)
    slots = [
        (s.get("name", "").strip(), [(v.text or "") for v in s.iterfind(f"{{{ns.RIM}}}ValueList/{{{ns.RIM}}}Value")])
        for s in query.iterfind(f"{{{ns.RIM}}}Slot")
    ]
    return QueryRequest(query.get("id", "").strip(), return_type, query.get("home"), slots)


def parse_values(raw: list[str], param: str) -> list[str]:
    """All values of one Slot as a flat list (each raw value may be a single value or a list)."""
    out: list[str] = []
    for text in raw:
        t = text.strip()
        if t.startswith("("):
            if not t.endswith(")"):
                raise _fail(Problem.LIST_NOT_CLOSED, param=param, text=repr(text))
            out += _split_list(t[1:-1], param)
        elif t:
            out.append(_single(t, param))
        else:
            raise _fail(Problem.VALUE_EMPTY, param=param)
    return out


def _split_list(inner: str, param: str) -> list[str]:
    items, i, n = [], 0, len(inner)
    while i < n:
        while i < n and inner[i] in " \t\r\n":
            i += 1
        if i < n and inner[i] == "'":
            j, buf = i + 1, []
            while True:
                k = inner.find("'", j)
                if k < 0:
                    raise _fail(Problem.LIST_UNTERMINATED_QUOTE, param=param, inner=inner)
                buf.append(inner[j:k])
                if k + 1 < n and inner[k + 1] == "'":
                    buf.append("'")
                    j = k + 2
                    continue
                i = k + 1
                break
            items.append("".join(buf))
        else:
            k = inner.find(",", i)
            token = inner[i:] if k < 0 else inner[i:k]
            if "'" in token or not token.strip():
                raise _fail(Problem.LIST_MALFORMED, param=param, inner=inner)
            items.append(token.strip())
            i = n if k < 0 else k
        while i < n and inner[i] in " \t\r\n":
            i += 1
        if i < n:
            if inner[i] != ",":
                raise _fail(Problem.LIST_COMMA_EXPECTED, param=param, inner=inner)
            i += 1
            if i >= n or not inner[i:].strip():
                raise _fail(Problem.LIST_TRAILING_COMMA, param=param, inner=inner)
    if not items:
        raise _fail(Problem.LIST_EMPTY, param=param)
    return items


def _single(t: str, param: str) -> str:
    if t.startswith("'"):
        if len(t) < 2 or not t.endswith("'"):
            raise _fail(Problem.VALUE_UNTERMINATED_QUOTE, param=param, value=repr(t))
        body = t[1:-1]
        if body.replace("''", "").count("'"):
            raise _fail(Problem.VALUE_QUOTE_NOT_DOUBLED, param=param, value=repr(t))
        return body.replace("''", "'")
    if any(c in t for c in "'()"):
        # Bare tokens are timestamps and numbers: a quote or parenthesis there is unbalanced quoting.
        raise _fail(Problem.VALUE_MALFORMED, param=param, value=repr(t))
    return t
