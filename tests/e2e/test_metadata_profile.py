"""The metadata profile switch through real HTTP: a `dmp` node refuses codes outside the DMP value sets with
XDSRegistryMetadataError naming attribute and value; an `ihe` node (IHE test plans with other code systems)
accepts them. Each runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from nodes import RunningNode, database_url, make_node, start_node
from xds_client import ITI41, post
from xds_factory import Doc, content_id, provide_and_register

from registry import Problem
from registry._model import Code
from soap_wsdl import OutgoingAttachment

IHE_SAMPLE_CLASS = Code("History and Physical", "1.3.6.1.4.1.21367.100.1", "History and Physical")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> tuple[str, pytest.FixtureRequest]:
    return request.param, request


def _node(tmp_path_factory: pytest.TempPathFactory, backend: tuple[str, pytest.FixtureRequest], profile: str
          ) -> Iterator[RunningNode]:
    cfg = make_node(tmp_path_factory.mktemp(profile), database_url=database_url(*backend), metadata_profile=profile)
    running = start_node(cfg)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def dmp_node(tmp_path_factory: pytest.TempPathFactory, backend: tuple[str, pytest.FixtureRequest]
             ) -> Iterator[RunningNode]:
    yield from _node(tmp_path_factory, backend, "dmp")


@pytest.fixture(scope="module")
def ihe_node(tmp_path_factory: pytest.TempPathFactory, backend: tuple[str, pytest.FixtureRequest]
             ) -> Iterator[RunningNode]:
    yield from _node(tmp_path_factory, backend, "ihe")


def provide(node: RunningNode, d: Doc):
    return post(node.repository, ITI41, provide_and_register([d]),
                attachments=[OutgoingAttachment(content_id(d), d.mime_type, d.content)])


def test_dmp_node_refuses_a_class_code_outside_jdv_j57(dmp_node):
    reply = provide(dmp_node, Doc(b"IHE sample codes", "Document01", meta={"class_code": IHE_SAMPLE_CLASS}))
    assert reply.status == "Failure"
    assert reply.problems == [Problem.CODE_NOT_IN_VALUE_SET]
    (error,) = reply.errors
    assert error["location"] == "Document01"
    assert "classCode 'History and Physical' (codingScheme 1.3.6.1.4.1.21367.100.1)" in error["codeContext"]
    assert "JDV_J57-ClassCode-DMP" in error["codeContext"]


def test_dmp_node_accepts_dmp_codes(dmp_node):
    assert provide(dmp_node, Doc(b"DMP codes", "Document01")).status == "Success"


def test_ihe_node_accepts_codes_of_other_code_systems(ihe_node):
    reply = provide(ihe_node, Doc(b"IHE sample codes", "Document01", meta={"class_code": IHE_SAMPLE_CLASS}))
    assert reply.status == "Success", reply.errors
