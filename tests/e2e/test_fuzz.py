"""Fuzzing the request pipeline of a real `dmp serve` (issue 13): the MTOM decoder, the ebRIM reader and the
VIHF reader, each reached through HTTP with mutated input. Whatever the bytes, the answer is a SOAP fault of
the sender's making or a registry answer, never an internal error (HTTP 500 "internal error") nor a dropped
connection, and the server logs no internal error.

Mutations start from valid requests, so that each layer is reached with input that passed the layers
before it: raw byte edits of an MTOM package (decoder), tree edits of the SubmitObjectsRequest under a valid
VIHF (ebRIM reader and validation), tree edits of the assertion before it is signed (VIHF reader)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from nodes import RunningNode, make_node, start_node
from vihf_client import alice_claims, identities
from xds_client import ITI41, envelope, parse_reply
from xds_factory import Doc, content_id, provide_and_register

from pki import build_vihf, sign_assertion
from soap_wsdl import OutgoingAttachment, XmlError, mtom_content_type, mtom_stream, new_boundary

FUZZ = settings(max_examples=120, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    running = start_node(make_node(tmp_path_factory.mktemp("fuzz")))
    yield running
    running.stop()
    log = running.log.read_text()
    assert "internal error" not in log, log[-5000:]
    assert "Traceback" not in log, log[-5000:]


@pytest.fixture(scope="module")
def client(node: RunningNode) -> Iterator[httpx.Client]:
    with node.client(timeout=60) as c:
        yield c


def send(client: httpx.Client, url: str, body: bytes, ctype: str) -> None:
    r = client.post(url, content=body, headers={"Content-Type": ctype})
    reply = parse_reply(r.status_code, r.headers.get("content-type", ""), r.content)
    if reply.body.tag.endswith("}Fault"):
        # SOAP 1.2 Part 2 §7.5.1.2: Sender -> 400, VersionMismatch and MustUnderstand -> 500.
        expected = {"env:Sender": (400, 413), "env:VersionMismatch": (500,), "env:MustUnderstand": (500,)}
        assert r.status_code in expected.get(reply.fault_code, ()), (r.status_code, reply.fault_reason)
        assert "internal error" not in reply.fault_reason
    else:
        assert r.status_code == 200
        assert reply.status in ("Success", "Failure", "PartialSuccess"), reply.status
        assert "internal error" not in str(reply.errors)


def mtom(env: bytes, docs: list[Doc]) -> tuple[bytes, str, str]:
    boundary, root = new_boundary(), f"root.{uuid.uuid4().hex}@test"
    atts = [OutgoingAttachment(content_id(d), d.mime_type, d.content) for d in docs]
    return b"".join(mtom_stream(env, atts, boundary, root)), mtom_content_type(boundary, root, ITI41), boundary


def vihf(edit=None) -> etree._Element:
    signer = identities().alice.signature.signer()
    assertion = build_vihf(alice_claims(), signer_certificate=signer.certificate, issue_instant=datetime.now(UTC))
    if edit is not None:
        edit(assertion)
    return sign_assertion(assertion, signer)


# --- MTOM decoder -------------------------------------------------------------------------------------------


_EDIT = st.tuples(st.sampled_from(["flip", "insert", "delete", "cut", "dup"]), st.floats(0, 1),
                  st.binary(min_size=1, max_size=12))
_MARKERS = [b"\r\n", b"--", b"Content-ID: ", b"Content-Transfer-Encoding: base64\r\n", b"\n", b"=", b"<", b'"']


def _apply(data: bytes, edits: list[tuple[str, float, bytes]], markers: list[bytes]) -> bytes:
    out = bytearray(data)
    for op, where, payload in edits:
        i = int(where * len(out))
        if op == "flip" and out:
            out[min(i, len(out) - 1)] ^= payload[0] or 1
        elif op == "insert":
            out[i:i] = payload if payload[0] % 2 else markers[payload[0] % len(markers)]
        elif op == "delete":
            del out[i : i + len(payload)]
        elif op == "cut":
            del out[i:]
        elif op == "dup":
            out[i:i] = out[max(0, i - len(payload) * 8) : i]
    return bytes(out)


@FUZZ
@given(edits=st.lists(_EDIT, min_size=1, max_size=4), ctype_edit=st.sampled_from(
    ["keep", "no-start", "no-boundary", "other-boundary", "start-missing", "junk-params"]))
def test_mtom_decoder(node, client, edits, ctype_edit):
    doc = Doc(b"%PDF-1.4 fuzz\r\n--not-a-boundary\r\n" * 4, "Document01")
    body, ctype, boundary = mtom(envelope(ITI41, provide_and_register([doc])), [doc])
    markers = [*_MARKERS, b"\r\n--" + boundary.encode(), b"\r\n--" + boundary.encode() + b"--"]
    body = _apply(body, edits, markers)
    ctype = {"keep": ctype,
             "no-start": ctype.split("; start=")[0] + '; start-info="application/soap+xml"',
             "no-boundary": ctype.replace(f'boundary="{boundary}"; ', ""),
             "other-boundary": ctype.replace(boundary, boundary[:-3]),
             "start-missing": ctype.replace("start=\"<root", "start=\"<gone"),
             "junk-params": ctype + '; ;=; x="unterminated'}[ctype_edit]
    send(client, node.repository, body, ctype)


# --- ebRIM reader -------------------------------------------------------------------------------------------


def _mutate_tree(root: etree._Element, choices: list[tuple[int, str, str]]) -> None:
    for which, op, text in choices:
        elements = list(root.iter())
        if not elements:
            return
        el = elements[which % len(elements)]
        parent = el.getparent()
        if op == "remove" and parent is not None:
            parent.remove(el)
        elif op == "text":
            el.text = text
        elif op == "attr" and el.attrib:
            name = sorted(el.attrib)[which % len(el.attrib)]
            el.set(name, text)
        elif op == "drop-attr" and el.attrib:
            del el.attrib[sorted(el.attrib)[which % len(el.attrib)]]
        elif op == "dup" and parent is not None:
            el.addnext(copy.deepcopy(el))
        elif op == "rename":
            el.tag = etree.QName(etree.QName(el).namespace or "", text[:20] or "X").text if text.isidentifier() \
                else el.tag + "X"


_TREE_EDIT = st.tuples(st.integers(0, 10_000), st.sampled_from(["remove", "text", "attr", "drop-attr", "dup",
                                                                "rename"]),
                       st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=40)
                       | st.sampled_from(["", "urn:uuid:", "^^^&1.2.250&ISO", "2024", "-1", "9" * 30,
                                          "Document01", "SubmissionSet01", "x" * 300]))


@FUZZ
@given(edits=st.lists(_TREE_EDIT, min_size=1, max_size=4))
def test_ebrim_reader(node, client, edits):
    doc = Doc(b"ebRIM fuzz", "Document01")
    request = provide_and_register([doc])
    _mutate_tree(request, edits)
    body, ctype, _ = mtom(envelope(ITI41, request, vihf=vihf()), [doc])
    send(client, node.repository, body, ctype)


# --- VIHF reader --------------------------------------------------------------------------------------------


@FUZZ
@given(edits=st.lists(_TREE_EDIT, min_size=1, max_size=3))
def test_vihf_reader(node, client, edits):
    doc = Doc(b"VIHF fuzz", "Document01")
    try:
        assertion = vihf(lambda a: _mutate_tree(a, edits))
    except (ValueError, TypeError, etree.LxmlError, XmlError):
        return   # the test's signer refuses what cannot be signed: nothing to send
    body, ctype, _ = mtom(envelope(ITI41, provide_and_register([doc]), vihf=assertion), [doc])
    send(client, node.repository, body, ctype)
