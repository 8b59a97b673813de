"""The catalogue of refusals (registry.Problem): one member per message, each bound to its XDS error code."""

from __future__ import annotations

import string

import pytest

from registry import ErrorCode, Problem


def _fields(problem: Problem) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(problem.template) if f]


@pytest.mark.parametrize("problem", list(Problem), ids=lambda p: p.name)
def test_every_member_makes_its_error_and_is_recognised_from_it(problem: Problem) -> None:
    error = problem("Document01", **{f: f"<{f}>" for f in _fields(problem)})
    assert error.problem is problem
    assert error.code is problem.code
    assert error.location == "Document01"
    assert problem.matches(error.context)
    # What a client receives is code and codeContext only: that is enough to tell the member.
    assert Problem.recognise(error.code.value, error.context) is problem


def test_templates_are_distinct_and_codes_are_xds_codes() -> None:
    assert len({(p.code, p.template) for p in Problem}) == len(Problem)
    assert all(isinstance(p.code, ErrorCode) for p in Problem)


def test_a_message_of_no_member_is_not_recognised() -> None:
    assert Problem.recognise("XDSRegistryMetadataError", "something else entirely") is None
    assert Problem.recognise("XDSRegistryError", "required slot 'hash' is missing") is None  # wrong code
