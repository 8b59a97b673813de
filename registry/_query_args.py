"""Check a stored query request against its definition and decode the values (ITI TF-2a 3.18.4.1.2.3;
docs/conformance.md §6)."""

from __future__ import annotations

from dataclasses import dataclass, field

from registry import _hl7
from registry._catalogue import Problem
from registry._errors import RegistryError
from registry._query_defs import QUERY_BY_UUID, Param, QueryDef, V
from registry._query_params import QueryError, QueryRequest, parse_values
from registry._vocabulary import Status

_SHORT_STATUS = {s.value.rsplit(":", 1)[1]: s.value for s in Status}
#: Values accepted in one stored query, all parameters together (README "Limits"): far above what a real
#: consumer sends, low enough that the SQL built from them stays cheap to parse and plan.
MAX_QUERY_VALUES = 10_000
#: Distinct AND-groups (repeated slots) of one parameter: each is a sub-query the database plans separately
#: (PostgreSQL takes minutes to plan 2,000), and a real consumer sends two or three.
MAX_AND_GROUPS = 100


@dataclass
class Args:
    """Decoded parameters: ``values[name]`` is the OR list; ``groups[name]`` the AND list of OR lists."""

    query: QueryDef
    return_type: str
    values: dict[str, list[str]] = field(default_factory=dict)
    groups: dict[str, list[list[str]]] = field(default_factory=dict)

    def one(self, name: str) -> str | None:
        v = self.values.get(name)
        return v[0] if v else None

    def has(self, name: str) -> bool:
        return name in self.values


def check(request: QueryRequest) -> Args:
    q = QUERY_BY_UUID.get(request.query_id)
    if q is None:
        raise QueryError([Problem.QUERY_UNKNOWN(None, query_id=request.query_id)])
    args = Args(q, request.return_type)
    errors: list[RegistryError] = []
    seen: dict[str, int] = {}
    total = 0
    for name, raw in request.slots:
        p = q.param(name)
        if p is None:
            continue  # unknown parameters are ignored (ITI TF-2a 3.18.4.1.2.3.5)
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1 and not p.and_or:
            errors.append(Problem.PARAM_REPEATED(None, param=name))
            continue
        try:
            decoded = [_decode(p, v) for v in parse_values(raw, name)]
        except QueryError as exc:
            errors += exc.errors
            continue
        except ValueError as exc:
            errors.append(Problem.PARAM_VALUE_INVALID(None, param=name, reason=exc))
            continue
        if len(decoded) > 1 and not p.multi:
            errors.append(Problem.PARAM_ONE_VALUE(None, param=name, count=len(decoded)))
            continue
        total += len(decoded)
        if total > MAX_QUERY_VALUES:
            raise QueryError([Problem.QUERY_TOO_MANY_VALUES(None, limit=MAX_QUERY_VALUES, param=name)])
        args.values.setdefault(name, []).extend(decoded)
        args.groups.setdefault(name, []).append(decoded)
    for p in q.params:
        if p.required and p.name not in seen:
            errors.append(Problem.PARAM_MISSING(None, param=p.name))
    for group in q.one_of:
        present = [n for n in group if n in seen]
        if not present:
            errors.append(Problem.PARAM_ONE_OF_MISSING(None, params=", ".join(group)))
        elif len(present) > 1:
            errors.append(Problem.PARAMS_MUTUALLY_EXCLUSIVE(None, params=" and ".join(present)))
    if q.at_least_one_of and not any(n in seen for n in q.at_least_one_of):
        errors.append(Problem.PARAM_AT_LEAST_ONE_OF_MISSING(None, params=", ".join(q.at_least_one_of)))
    for name, groups in args.groups.items():
        if len(groups) > MAX_AND_GROUPS and len({frozenset(g) for g in groups}) > MAX_AND_GROUPS:
            errors.append(Problem.PARAM_TOO_MANY_AND_GROUPS(None, param=name, limit=MAX_AND_GROUPS))
    if errors:
        raise QueryError(errors)
    return args


def _decode(p: Param, value: str) -> str:
    if p.kind is V.PATIENT:
        cx = _hl7.CX.parse(value)
        if cx is None:
            raise ValueError(f"'{value}' is not a patient id of the form id^^^&OID&ISO")
        return cx.key
    if p.kind is V.STATUS:
        status = _SHORT_STATUS.get(value, value)
        if status not in _SHORT_STATUS.values():
            raise ValueError(f"'{value}' is not an availability status")
        return status
    if p.kind is V.CODE:
        parts = value.split("^")
        if len(parts) != 3 or not parts[0] or parts[1] or not parts[2]:
            raise ValueError(f"'{value}' is not a coded value of the form code^^codingScheme")
        return value
    if p.kind is V.DTM:
        if (reason := _hl7.check_dtm(value)) is not None:
            raise ValueError(reason)
        return _hl7.dtm_floor(value)
    if p.kind is V.UUID and not _hl7.is_uuid_urn(value):
        raise ValueError(f"'{value}' is not a urn:uuid: identifier")
    return value
