"""Streaming MTOM/XOP codec (soap_wsdl._mtom): RFC 2046 framing, XOP roots and cid: references, CTE handling,
client quirks of docs/mtom.md §2-§4, cleanup on failure and constant memory."""

from __future__ import annotations

import base64
import hashlib
import pathlib
import random
import re
import tempfile
import tracemalloc
from collections.abc import Iterable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soap_wsdl._mtom import (
    Attachment,
    MimeError,
    MtomDecoder,
    MtomMessage,
    OutgoingAttachment,
    mtom_content_type,
    mtom_stream,
    new_boundary,
    parse_content_type,
)

ROOT_CT = 'application/xop+xml; charset=UTF-8; type="application/soap+xml"'
BOUNDARIES = ["MIMEBoundary_0123abcd", "uuid:7e1b1a8c-54a3-4d38-9a9c-0b64a2d5f0c1+id=1", "b"]
SIZES = st.lists(st.integers(min_value=1, max_value=97), min_size=1, max_size=8)
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def chunks(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    """Cut data into pieces whose lengths cycle through sizes."""
    pos = 0
    for n in _cycle(sizes):
        if pos >= len(data):
            return
        yield data[pos : pos + n]
        pos += n


def _cycle(sizes: list[int]) -> Iterator[int]:
    while True:
        yield from sizes


def decode(
    body: bytes | Iterable[bytes], content_type: str, spool: pathlib.Path, sizes: list[int] | None = None
) -> MtomMessage:
    decoder = MtomDecoder(content_type, spool)
    pieces = chunks(body, sizes or [len(body) or 1]) if isinstance(body, bytes) else body
    for piece in pieces:
        decoder.feed(piece)
    return decoder.close()


def multipart(boundary: str, parts: list[tuple[list[str], bytes]], nl: bytes = b"\r\n") -> bytes:
    """Frame parts by hand: '--b' NL headers NL NL content NL '--b' ... NL '--b--' NL."""
    delimiter = b"--" + boundary.encode()
    out = bytearray()
    for headers, content in parts:
        out += delimiter + nl + b"".join(h.encode() + nl for h in headers) + nl + content + nl
    return bytes(out + delimiter + b"--" + nl)


def related(boundary: str, start: str | None = "<root@x>") -> str:
    value = f'multipart/related; boundary="{boundary}"; type="application/xop+xml"'
    return value + (f'; start="{start}"' if start is not None else "")


def fresh_spool(tmp_path: pathlib.Path) -> pathlib.Path:
    """One spool directory per hypothesis example, so leftovers are attributable."""
    return pathlib.Path(tempfile.mkdtemp(dir=tmp_path))


def is_clean(content: bytes, boundary: bytes) -> bool:
    """True if content, framed as a part body, holds no real delimiter (RFC 2046 forbids that, not us)."""
    framed = b"\n" + content + b"\r\n--" + boundary + b"--"
    match = re.search(rb"\n--" + re.escape(boundary) + rb"(?:--|[ \t]*\r?\n)", framed)
    return match is not None and match.start() == len(content) + 2


def nasty_content(boundary: str) -> st.SearchStrategy[bytes]:
    """Binary content rich in CR, LF, NUL, '--' and near-miss delimiters such as CRLF '--boundaryX'."""
    b = boundary.encode()
    tricky = [
        b"\r\n", b"\n", b"\r", b"\x00", b"--", b"-", b" ", b"\t", b[:3],
        b"\r\n--" + b + b"X", b"\n--" + b + b"-x", b"--" + b, b"--" + b + b"0", b"\r\n--" + b[:-1],
        b"\r\n--" + b + b" x", b"\r\n--" + b + b"\r", b"\n--" + b + b"\t\tz",
    ]  # fmt: skip
    piece = st.one_of(st.binary(max_size=40), st.sampled_from(tricky))
    return st.lists(piece, max_size=12).map(b"".join).filter(lambda c: is_clean(c, b))


def attachment(message: MtomMessage, href: str) -> Attachment:
    found = message.resolve(href)
    assert found is not None, href
    return found


# ---------------------------------------------------------------------------------------------------------
# Properties


@PROPERTY
@given(data=st.data())
def test_roundtrip_arbitrary_binary_under_any_chunking(tmp_path: pathlib.Path, data: st.DataObject) -> None:
    boundary = data.draw(st.sampled_from(BOUNDARIES))
    root = data.draw(nasty_content(boundary))
    contents = data.draw(st.lists(nasty_content(boundary), max_size=3))
    from_file = data.draw(st.lists(st.booleans(), min_size=len(contents), max_size=len(contents)))
    read_size = data.draw(st.integers(min_value=1, max_value=50))
    sizes = data.draw(SIZES)
    source_dir = fresh_spool(tmp_path)
    outgoing = []
    for i, (content, use_file) in enumerate(zip(contents, from_file, strict=True)):
        source: pathlib.Path | bytes = content
        if use_file:
            source = source_dir / f"src{i}"
            source.write_bytes(content)
        outgoing.append(OutgoingAttachment(f"doc{i}@example.fr", "application/pdf", source))
    body = b"".join(mtom_stream(root, outgoing, boundary, "root@example.fr", chunk_size=read_size))
    spool = fresh_spool(tmp_path)

    message = decode(body, mtom_content_type(boundary, "root@example.fr", None), spool, sizes)

    assert message.root == root
    assert message.root_content_type == ROOT_CT
    assert set(message.attachments) == {o.content_id for o in outgoing}
    for out, content in zip(outgoing, contents, strict=True):
        got = attachment(message, "cid:" + out.content_id)
        assert got.path.read_bytes() == content
        assert (got.sha1, got.size) == (sha1(content), len(content))
        assert got.content_type == "application/pdf"
        assert got.lf_variant is None
    message.discard()
    assert list(spool.iterdir()) == []


@PROPERTY
@given(
    content=st.binary(max_size=700),
    line_length=st.sampled_from([4, 60, 76, 1000]),
    nl=st.sampled_from([b"\r\n", b"\n"]),
    cte=st.sampled_from(["base64", "BASE64", "Base64"]),
    sizes=SIZES,
)
def test_base64_parts_decode_to_the_original_bytes(
    tmp_path: pathlib.Path, content: bytes, line_length: int, nl: bytes, cte: str, sizes: list[int]
) -> None:
    text = base64.b64encode(content)
    encoded = nl.join(text[i : i + line_length] for i in range(0, len(text), line_length))
    body = multipart(
        "MIMEBoundary_Bound",
        [
            ([f"Content-Type: {ROOT_CT}", "Content-ID: <root@x>"], b"<env/>"),
            ([f"Content-Transfer-Encoding: {cte}", "Content-ID: <doc@x>"], encoded + nl),
        ],
        nl=nl,
    )
    spool = fresh_spool(tmp_path)

    message = decode(body, related("MIMEBoundary_Bound"), spool, sizes)

    got = attachment(message, "cid:doc@x")
    assert got.path.read_bytes() == content
    assert (got.sha1, got.size) == (sha1(content), len(content))
    assert got.content_type == "application/octet-stream"
    message.discard()


# ---------------------------------------------------------------------------------------------------------
# Framing


def test_lf_only_framing_offers_the_lf_variant(tmp_path: pathlib.Path) -> None:
    # ANS DRIMbox: LF line ends, Content-IDs without '@', BASE64 in capitals (docs/mtom.md §3, §4).
    signature = b"<ds:Signature>...</ds:Signature>"
    body = multipart(
        "MIMEBoundary_Bound",
        [
            ([f"Content-Type: {ROOT_CT}", "Content-ID: <0.1>"], b"<env/>"),
            (["Content-Type: text/xml", "Content-Transfer-Encoding: binary", "Content-ID: <0.2>"], signature),
            (
                ["Content-Type: text/plain", "Content-Transfer-Encoding: BASE64", "Content-ID: <0.3>"],
                base64.encodebytes(b"hello"),
            ),
        ],
        nl=b"\n",
    )
    message = decode(body, related("MIMEBoundary_Bound", "<0.1>"), tmp_path, [7])

    assert message.root == b"<env/>"
    signed = attachment(message, "cid:0.2")
    assert signed.path.read_bytes() == signature
    assert signed.lf_variant == (sha1(signature + b"\n"), len(signature) + 1)
    adopted = signed.adopt_lf_variant()
    assert adopted.path.read_bytes() == signature + b"\n"
    assert (adopted.sha1, adopted.size, adopted.lf_variant) == (sha1(signature + b"\n"), len(signature) + 1, None)
    with pytest.raises(ValueError, match="not LF-framed"):
        adopted.adopt_lf_variant()
    assert attachment(message, "cid:0.3").path.read_bytes() == b"hello"


def test_crlf_framing_strips_exactly_one_crlf(tmp_path: pathlib.Path) -> None:
    content = b"\r\n\r\n%PDF\r\n\n\r\r\n"
    body = multipart("b", [([f"Content-Type: {ROOT_CT}"], b"<env/>"), (["Content-ID: <d@x>"], content)])
    got = attachment(decode(body, related("b", None), tmp_path), "cid:d@x")
    assert got.path.read_bytes() == content
    assert got.lf_variant is None


def test_preamble_epilogue_padding_folding_and_empty_parts(tmp_path: pathlib.Path) -> None:
    body = (
        b"This is a preamble\r\n--bX is still preamble\r\n--b \t\r\n"
        b"Content-Type: application/xop+xml;\r\n\tcharset=UTF-8\r\nContent-ID:\r\n <root@x>\r\n\r\n"
        b"<env/>\r\n--b\t\r\n"
        b"Content-ID: <empty@x>\r\n\r\n--b\r\n"  # empty content: the header's empty line is the delimiter's CRLF
        b"Content-ID: <also-empty@x>\r\n\r\n\r\n--b--  \r\nepilogue\r\n--b\r\nContent-ID: <ignored@x>\r\n"
    )
    message = decode(body, related("b"), tmp_path, [1])
    assert message.root == b"<env/>"
    assert message.root_content_type == "application/xop+xml;\tcharset=UTF-8"
    assert set(message.attachments) == {"empty@x", "also-empty@x"}
    assert all(a.size == 0 and a.path.read_bytes() == b"" for a in message.attachments.values())


def test_xds_example_11_1_decodes_exactly(tmp_path: pathlib.Path) -> None:
    document = b"Compte rendu de consultation du 12/03/2024 - patient fictif.\r\n"
    for size in (1, 2, 3, 5, 64, 4096, len(ITI41_BODY)):
        spool = fresh_spool(tmp_path)
        message = decode(ITI41_BODY, ITI41_CONTENT_TYPE, spool, [size])
        assert message.root.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\r\n<soap:Envelope')
        assert message.root.endswith(b"</soap:Envelope>")
        assert message.root_content_type == ROOT_CT
        doc = attachment(message, "cid:doc1@example.fr")
        assert doc.path.read_bytes() == document
        assert (doc.size, doc.sha1) == (62, "2fac7e66622f681a12881b4c22817b1aec4c7a00")
        assert (doc.content_id, doc.content_type, doc.lf_variant) == ("doc1@example.fr", "text/plain", None)
        assert list(message.attachments) == ["doc1@example.fr"]
        message.discard()
        message.discard()  # idempotent
        assert list(spool.iterdir()) == []


# ---------------------------------------------------------------------------------------------------------
# Roots and references


def test_missing_start_makes_the_first_part_the_root(tmp_path: pathlib.Path) -> None:
    body = multipart("b", [(["Content-ID: <a@x>"], b"<env/>"), (["Content-ID: <b@x>"], b"doc")])
    message = decode(body, related("b", None), tmp_path)
    assert message.root == b"<env/>"
    assert list(message.attachments) == ["b@x"]


def test_start_may_name_a_later_part(tmp_path: pathlib.Path) -> None:
    body = multipart("b", [(["Content-ID: <a@x>"], b"doc"), (["Content-ID: <b@x>"], b"<env/>")])
    message = decode(body, related("b", "<b@x>"), tmp_path)
    assert message.root == b"<env/>"
    assert attachment(message, "cid:a@x").path.read_bytes() == b"doc"


def test_start_naming_no_part_is_refused_and_cleaned_up(tmp_path: pathlib.Path) -> None:
    body = multipart("b", [(["Content-ID: <a@x>"], b"<env/>"), (["Content-ID: <b@x>"], b"doc")])
    with pytest.raises(MimeError, match="names no MIME part"):
        decode(body, related("b", "<nowhere@x>"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_wcf_boundary_header_order_and_encoded_href(tmp_path: pathlib.Path) -> None:
    boundary = "uuid:2b1ec5f8-8c0f-4a5e-a1d3-4c1b2d3e4f50+id=1"
    content_type = (
        f'multipart/related;type="application/xop+xml";boundary="{boundary}";'
        'start="<http://tempuri.org/0>";start-info="application/soap+xml"'
    )
    body = multipart(
        boundary,
        [
            (["Content-ID: <http://tempuri.org/0>", "Content-Transfer-Encoding: 8bit", f"Content-Type: {ROOT_CT}"],
             b"<env/>"),
            (["Content-ID: <http://tempuri.org/1/63>", "Content-Transfer-Encoding: binary",
              "Content-Type: application/octet-stream"], b"%PDF-1.4"),
        ],
    )  # fmt: skip
    message = decode(body, content_type, tmp_path, [5])
    assert message.root == b"<env/>"
    got = attachment(message, "cid:http%3A%2F%2Ftempuri.org%2F1%2F63")
    assert got.path.read_bytes() == b"%PDF-1.4"
    assert message.resolve("cid:http://tempuri.org/1/63") == got


def test_cxf_percent_encoded_hrefs_and_content_ids(tmp_path: pathlib.Path) -> None:
    body = multipart(
        "uuid:0f3c",
        [
            ([f"Content-Type: {ROOT_CT}", "Content-ID: <root.message@cxf.apache.org>"], b"<env/>"),
            (["Content-ID: <uuid-1@urn:ihe:iti:xds-b:2007>"], b"one"),
            (["Content-ID: <uuid-2@urn%3Aihe%3Aiti%3Axds-b%3A2007>"], b"two"),
        ],
    )
    message = decode(body, related("uuid:0f3c", "<root.message@cxf.apache.org>"), tmp_path)
    assert attachment(message, "cid:uuid-1@urn%3Aihe%3Aiti%3Axds-b%3A2007").path.read_bytes() == b"one"
    assert attachment(message, "cid:uuid-2@urn:ihe:iti:xds-b:2007").path.read_bytes() == b"two"
    assert attachment(message, "CID:uuid-2@urn%3Aihe%3Aiti%3Axds-b%3A2007").content_id == (
        "uuid-2@urn:ihe:iti:xds-b:2007"
    )
    assert message.resolve("cid:uuid-3@urn:ihe:iti:xds-b:2007") is None
    assert message.resolve("http://example.fr/uuid-1") is None


def test_header_names_and_values_are_case_insensitive(tmp_path: pathlib.Path) -> None:
    body = (
        b"--b\r\nCONTENT-TYPE: application/xop+xml\r\ncontent-id: <root@x>\r\n\r\n<env/>\r\n"
        b"--b\r\ncontent-transfer-encoding: BINARY\r\nContent-Id: <d@x>\r\ncontent-type: image/png\r\n\r\n"
        b"\x89PNG\r\n--b--"
    )
    message = decode(body, 'Multipart/Related; BOUNDARY="b"; Start="<root@x>"', tmp_path)
    assert message.root == b"<env/>"
    got = attachment(message, "cid:d@x")
    assert (got.content_type, got.path.read_bytes()) == ("image/png", b"\x89PNG")


# ---------------------------------------------------------------------------------------------------------
# Refusals


def test_every_truncation_is_refused_without_leftovers(tmp_path: pathlib.Path) -> None:
    body = multipart(
        "bnd",
        [([f"Content-Type: {ROOT_CT}", "Content-ID: <root@x>"], b"<env/>"),
         (["Content-ID: <a@x>"], b"\r\n--bndX"), (["Content-ID: <b@x>"], b"payload\r\n")],
    )  # fmt: skip
    complete = body.index(b"--bnd--") + len(b"--bnd--")
    for cut in range(complete):
        decoder = MtomDecoder(related("bnd"), tmp_path)
        for piece in chunks(body[:cut], [3]):
            decoder.feed(piece)
        with pytest.raises(MimeError, match=r"truncated|no MIME part"):
            decoder.close()
        assert list(tmp_path.iterdir()) == [], cut
    decode(body[:complete], related("bnd"), tmp_path).discard()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "no MIME part"),
        (b"just text, no boundary\r\n", "no MIME part"),
        (b"--b--\r\n", "no MIME part"),
        (b"--b\r\nContent-ID: <root@x>\r\n\r\n<env/>\r\n--b\r\n\r\norphan\r\n--b--", "has no Content-ID"),
        (b"--b\r\nContent-ID: <root@x>\r\n\r\n<env/>\r\n--b\r\nContent-ID: <root@x>\r\n\r\n\r\n--b--", "duplicate"),
        (b"--b\r\nContent-ID <root@x>\r\n\r\n<env/>\r\n--b--", "malformed MIME part header"),
        (b"--b\r\n continued\r\nContent-ID: <root@x>\r\n\r\n<env/>\r\n--b--", "continuation"),
    ],
)
def test_malformed_packages_are_refused(tmp_path: pathlib.Path, body: bytes, reason: str) -> None:
    with pytest.raises(MimeError, match=reason):
        decode(body, related("b"), tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/mixed; boundary=b",
        "application/soap+xml; charset=UTF-8",
        "multipart/related; type=application/xop+xml",
        'multipart/related; boundary=""',
        "garbage",
        'multipart/related; boundary="b',
    ],
)
def test_wrong_content_type_is_refused(tmp_path: pathlib.Path, content_type: str) -> None:
    with pytest.raises(MimeError):
        MtomDecoder(content_type, tmp_path)


@pytest.mark.parametrize("encoding", ["quoted-printable", "x-uuencode", "gzip"])
def test_unsupported_transfer_encoding_is_named(tmp_path: pathlib.Path, encoding: str) -> None:
    body = multipart(
        "b",
        [(["Content-ID: <root@x>"], b"<env/>"),
         (["Content-ID: <d@x>", f"Content-Transfer-Encoding: {encoding.upper()}"], b"x=3D")],
    )  # fmt: skip
    with pytest.raises(MimeError, match=encoding):
        decode(body, related("b"), tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("encoded", [b"aGVsbG8*", b"aGVsbG8", b"aGk=aGk=", b"aGk=\r\naGk="])
def test_invalid_base64_is_refused(tmp_path: pathlib.Path, encoded: bytes) -> None:
    body = multipart(
        "b",
        [(["Content-ID: <root@x>"], b"<env/>"),
         (["Content-ID: <d@x>", "Content-Transfer-Encoding: base64"], encoded)],
    )  # fmt: skip
    with pytest.raises(MimeError, match="base64"):
        decode(body, related("b"), tmp_path, [2])
    assert list(tmp_path.iterdir()) == []


def test_oversized_header_block_is_refused_during_feed(tmp_path: pathlib.Path) -> None:
    decoder = MtomDecoder(related("b"), tmp_path, max_header_bytes=256)
    decoder.feed(b"--b\r\nContent-ID: <root@x>\r\n\r\n<env/>\r\n--b\r\nContent-ID: <a@x>\r\n\r\ndata\r\n--b\r\n")
    assert len(list(tmp_path.iterdir())) == 1  # the finished attachment
    filler = b"X-Filler: " + b"f" * 20 + b"\r\n"  # 32 bytes: 8 of them still fit in 256
    for _ in range(8):
        decoder.feed(filler)
    with pytest.raises(MimeError, match="header block larger than 256"):
        decoder.feed(filler)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError):
        decoder.feed(b"more")


def test_root_and_part_count_limits(tmp_path: pathlib.Path) -> None:
    body = multipart("b", [(["Content-ID: <root@x>"], b"x" * 100), (["Content-ID: <a@x>"], b"a")])
    decoder = MtomDecoder(related("b"), tmp_path, max_root_bytes=99)
    with pytest.raises(MimeError, match="root MIME part is larger than 99 bytes"):
        decoder.feed(body)
    decoder = MtomDecoder(related("b"), tmp_path, max_parts=1)
    with pytest.raises(MimeError, match="more than 1 MIME parts"):
        decoder.feed(body)
    assert list(tmp_path.iterdir()) == []


def test_decoder_discard_removes_partial_files_and_close_hands_them_over(tmp_path: pathlib.Path) -> None:
    decoder = MtomDecoder(related("b"), tmp_path)
    decoder.feed(b"--b\r\nContent-ID: <root@x>\r\n\r\n<env/>\r\n--b\r\nContent-ID: <a@x>\r\n\r\nhalf a docu")
    assert len(list(tmp_path.iterdir())) == 1
    decoder.discard()
    decoder.discard()
    assert list(tmp_path.iterdir()) == []

    decoder = MtomDecoder(related("b"), tmp_path)
    decoder.feed(b"")
    decoder.feed(b"--b\r\nContent-ID: <root@x>\r\n\r\n<env/>\r\n--b\r\nContent-ID: <a@x>\r\n\r\ndoc\r\n--b--")
    message = decoder.close()
    decoder.discard()  # the files now belong to the message
    assert attachment(message, "cid:a@x").path.read_bytes() == b"doc"
    with pytest.raises(RuntimeError):
        decoder.close()
    message.discard()
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------------
# Header values and the encoder


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            'multipart/related; boundary="uuid:x+id=1"; type="application/xop+xml"; start="<a@b>"',
            ("multipart/related", {"boundary": "uuid:x+id=1", "type": "application/xop+xml", "start": "<a@b>"}),
        ),
        ('Multipart/Related;BOUNDARY="a;b=c";Start=<r>', ("multipart/related", {"boundary": "a;b=c", "start": "<r>"})),
        (r'text/plain; note="say \"hi\"\\"; x=1', ("text/plain", {"note": 'say "hi"\\', "x": "1"})),
        ("text/plain;;  flag; charset = utf-8 ;", ("text/plain", {"charset": "utf-8"})),
        ("text/plain; a=1; a=2", ("text/plain", {"a": "1"})),
        ("Application/XOP+XML", ("application/xop+xml", {})),
    ],
)
def test_parse_content_type(value: str, expected: tuple[str, dict[str, str]]) -> None:
    assert parse_content_type(value) == expected


@given(st.lists(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E)), min_size=1, max_size=4))
def test_quoted_parameter_values_round_trip(values: list[str]) -> None:
    """Any printable value, quotes, backslashes and ';' included, comes back as the encoder quoted it (the
    plain-slice fast path and the quoted-pair walk agree)."""
    names = [f"p{i}" for i in range(len(values))]
    header = "multipart/related; " + "; ".join(
        f'{name}="{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for name, value in zip(names, values, strict=True))
    assert parse_content_type(header) == ("multipart/related", dict(zip(names, values, strict=True)))


def test_content_type_and_boundary_helpers() -> None:
    value = mtom_content_type("MIMEBoundary_1", "root@x", "urn:ihe:iti:2007:RetrieveDocumentSetResponse")
    assert value == (
        'multipart/related; boundary="MIMEBoundary_1"; type="application/xop+xml"; start="<root@x>"; '
        'start-info="application/soap+xml"; action="urn:ihe:iti:2007:RetrieveDocumentSetResponse"'
    )
    assert "action" not in parse_content_type(mtom_content_type("b", "r", None))[1]
    first, second = new_boundary(), new_boundary()
    assert re.fullmatch(r"MIMEBoundary_[0-9a-f]{32}", first)
    assert first != second


def test_stream_layout_and_header_injection() -> None:
    body = b"".join(mtom_stream(b"<env/>", [OutgoingAttachment("d@x", "text/plain", b"doc")], "b", "r@x"))
    assert body == (
        b"--b\r\nContent-Type: " + ROOT_CT.encode() + b"\r\nContent-Transfer-Encoding: binary\r\n"
        b"Content-ID: <r@x>\r\n\r\n<env/>"
        b"\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <d@x>\r\n\r\n"
        b"doc\r\n--b--\r\n"
    )
    with pytest.raises(ValueError, match="line breaks"):
        mtom_stream(b"", [], "b", "r@x\r\nX-Evil: 1")
    bad = OutgoingAttachment("d@x", "text/plain\r\nX-Evil: 1", b"doc")
    with pytest.raises(ValueError, match="line breaks"):
        b"".join(mtom_stream(b"", [bad], "b", "r@x"))


def test_large_attachment_streams_in_constant_memory(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "source.bin"
    rng = random.Random(41)
    expected = hashlib.sha1()
    with source.open("wb") as file:
        for _ in range(50):
            block = b"\r\n--" + rng.randbytes(1024 * 1024 - 10) + b"\r\n\r\n--"
            file.write(block)
            expected.update(block)
    spool = tmp_path / "spool"
    spool.mkdir()
    boundary = new_boundary()

    tracemalloc.start()
    try:
        stream = mtom_stream(
            b"<env/>", [OutgoingAttachment("big@x", "application/pdf", source)], boundary, "r@x", 64 * 1024
        )
        message = decode(stream, mtom_content_type(boundary, "r@x", None), spool)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    got = attachment(message, "cid:big@x")
    assert (got.size, got.sha1) == (50 * 1024 * 1024, expected.hexdigest())
    assert peak < 3 * 1024 * 1024, peak


# ---------------------------------------------------------------------------------------------------------
# The ITI-41 example message (a made-up French patient), verbatim (lines end with CRLF on the wire)

ITI41_CONTENT_TYPE = (
    'multipart/related; boundary="MIMEBoundary_a1b2c3"; type="application/xop+xml"; '
    'start="<root.0@example.fr>"; start-info="application/soap+xml"; '
    'action="urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"'
)
ITI41_BODY = """\
--MIMEBoundary_a1b2c3
Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"
Content-Transfer-Encoding: binary
Content-ID: <root.0@example.fr>

<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing">
 <soap:Header>
  <wsa:Action soap:mustUnderstand="true">urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b</wsa:Action>
  <wsa:MessageID>urn:uuid:6da40ce1-3b53-48f9-9a8c-08c19fd8b0ec</wsa:MessageID>
  <wsa:ReplyTo><wsa:Address>http://www.w3.org/2005/08/addressing/anonymous</wsa:Address></wsa:ReplyTo>
  <wsa:To soap:mustUnderstand="true">https://xds.example.fr/xds/repository</wsa:To>
  <!-- DMP: wsse:Security with the signed VIHF SAML 2.0 assertion goes here -->
 </soap:Header>
 <soap:Body>
  <xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="urn:ihe:iti:xds-b:2007"
      xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">
   <lcm:SubmitObjectsRequest>
    <rim:RegistryObjectList>
     <rim:RegistryPackage id="SubmissionSet01">
      <rim:Slot name="submissionTime"><rim:ValueList><rim:Value>20240312101500</rim:Value></rim:ValueList></rim:Slot>
      <rim:Name><rim:LocalizedString xml:lang="fr-FR" value="Consultation du 12/03/2024"/></rim:Name>
      <rim:Classification id="cl-ss-author" classificationScheme="urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
          classifiedObject="SubmissionSet01" nodeRepresentation="">
       <rim:Slot name="authorPerson"><rim:ValueList><rim:Value>801234567897^MARTIN^Claire^^^^^^&amp;1.2.250.1.71.4.2.1&amp;ISO</rim:Value></rim:ValueList></rim:Slot>
       <rim:Slot name="authorInstitution"><rim:ValueList><rim:Value>CH FICTIF^^^^^&amp;1.2.250.1.71.4.2.2&amp;ISO^^^^1750000000</rim:Value></rim:ValueList></rim:Slot>
      </rim:Classification>
      <rim:Classification id="cl-ss-ct" classificationScheme="urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
          classifiedObject="SubmissionSet01" nodeRepresentation="04">
       <rim:Slot name="codingScheme"><rim:ValueList><rim:Value>1.2.250.1.213.2.2</rim:Value></rim:ValueList></rim:Slot>
       <rim:Name><rim:LocalizedString value="Hospitalisation de jour"/></rim:Name>
      </rim:Classification>
      <rim:ExternalIdentifier id="ei-ss-uid" registryObject="SubmissionSet01"
          identificationScheme="urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8" value="1.2.250.1.999.1.1.8121.2.1">
       <rim:Name><rim:LocalizedString value="XDSSubmissionSet.uniqueId"/></rim:Name>
      </rim:ExternalIdentifier>
      <rim:ExternalIdentifier id="ei-ss-src" registryObject="SubmissionSet01"
          identificationScheme="urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832" value="1.2.250.1.999.1.1.8121">
       <rim:Name><rim:LocalizedString value="XDSSubmissionSet.sourceId"/></rim:Name>
      </rim:ExternalIdentifier>
      <rim:ExternalIdentifier id="ei-ss-pid" registryObject="SubmissionSet01"
          identificationScheme="urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446" value="123456789012345^^^&amp;1.2.250.1.213.1.4.10&amp;ISO">
       <rim:Name><rim:LocalizedString value="XDSSubmissionSet.patientId"/></rim:Name>
      </rim:ExternalIdentifier>
     </rim:RegistryPackage>
     <rim:Classification id="cl-ss-node" classifiedObject="SubmissionSet01"
         classificationNode="urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"/>
     <rim:ExtrinsicObject id="Document01" mimeType="text/plain" objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">
      <rim:Slot name="creationTime"><rim:ValueList><rim:Value>20240312093000</rim:Value></rim:ValueList></rim:Slot>
      <rim:Slot name="languageCode"><rim:ValueList><rim:Value>fr-FR</rim:Value></rim:ValueList></rim:Slot>
      <rim:Slot name="serviceStartTime"><rim:ValueList><rim:Value>20240312090000</rim:Value></rim:ValueList></rim:Slot>
      <rim:Slot name="serviceStopTime"><rim:ValueList><rim:Value>20240312093000</rim:Value></rim:ValueList></rim:Slot>
      <rim:Slot name="sourcePatientId"><rim:ValueList><rim:Value>IPP0001^^^&amp;1.2.250.1.999.1.1.8121.4&amp;ISO</rim:Value></rim:ValueList></rim:Slot>
      <rim:Slot name="sourcePatientInfo"><rim:ValueList>
       <rim:Value>PID-5|DUPONT^Marie^^^^^L</rim:Value><rim:Value>PID-7|19800101</rim:Value><rim:Value>PID-8|F</rim:Value>
      </rim:ValueList></rim:Slot>
      <rim:Slot name="hash"><rim:ValueList><rim:Value>2fac7e66622f681a12881b4c22817b1aec4c7a00</rim:Value></rim:ValueList></rim:Slot>
      <rim:Slot name="size"><rim:ValueList><rim:Value>62</rim:Value></rim:ValueList></rim:Slot>
      <rim:Name><rim:LocalizedString xml:lang="fr-FR" value="Compte rendu de consultation"/></rim:Name>
      <rim:Classification id="cl-de-author" classificationScheme="urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
          classifiedObject="Document01" nodeRepresentation="">
       <rim:Slot name="authorPerson"><rim:ValueList><rim:Value>801234567897^MARTIN^Claire^^^^^^&amp;1.2.250.1.71.4.2.1&amp;ISO</rim:Value></rim:ValueList></rim:Slot>
       <rim:Slot name="authorInstitution"><rim:ValueList><rim:Value>CH FICTIF^^^^^&amp;1.2.250.1.71.4.2.2&amp;ISO^^^^1750000000</rim:Value></rim:ValueList></rim:Slot>
      </rim:Classification>
      <rim:Classification id="cl-de-class" classificationScheme="urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
          classifiedObject="Document01" nodeRepresentation="10">
       <rim:Slot name="codingScheme"><rim:ValueList><rim:Value>1.2.250.1.213.1.1.4.1</rim:Value></rim:ValueList></rim:Slot>
       <rim:Name><rim:LocalizedString value="Compte rendu"/></rim:Name>
      </rim:Classification>
      <rim:Classification id="cl-de-conf" classificationScheme="urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
          classifiedObject="Document01" nodeRepresentation="N">
       <rim:Slot name="codingScheme"><rim:ValueList><rim:Value>2.16.840.1.113883.5.25</rim:Value></rim:ValueList></rim:Slot>
       <rim:Name><rim:LocalizedString value="Normal"/></rim:Name>
      </rim:Classification>
      <rim:Classification id="cl-de-format" classificationScheme="urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
          classifiedObject="Document01" nodeRepresentation="urn:ihe:iti:xds-sd:text:2008">
       <rim:Slot name="codingScheme"><rim:ValueList><rim:Value>1.3.6.1.4.1.19376.1.2.3</rim:Value></rim:ValueList></rim:Slot>
       <rim:Name><rim:LocalizedString value="Document à corps non structuré en texte brut"/></rim:Name>
      </rim:Classification>
      <rim:Classification id="cl-de-hcft" classificationScheme="urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
          classifiedObject="Document01" nodeRepresentation="SA01">
       <rim:Slot name="codingScheme"><rim:ValueList><rim:Value>1.2.250.1.71.4.2.4</rim:Value></rim:ValueList></rim:Slot>
       <rim:Name><rim:LocalizedString value="Etablissement public de santé"/></rim:Name>
      </rim:Classification>
      <rim:Classification id="cl-de-ps" classificationScheme="urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
          classifiedObject="Document01" nodeRepresentation="ETABLISSEMENT">
       <rim:Slot name="codingScheme"><rim:ValueList><rim:Value>1.2.250.1.213.1.1.4.9</rim:Value></rim:ValueList></rim:Slot>
       <rim:Name><rim:LocalizedString value="Etablissement de santé"/></rim:Name>
      </rim:Classification>
      <rim:Classification id="cl-de-type" classificationScheme="urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
          classifiedObject="Document01" nodeRepresentation="11488-4">
       <rim:Slot name="codingScheme"><rim:ValueList><rim:Value>2.16.840.1.113883.6.1</rim:Value></rim:ValueList></rim:Slot>
       <rim:Name><rim:LocalizedString value="Compte rendu de consultation"/></rim:Name>
      </rim:Classification>
      <rim:ExternalIdentifier id="ei-de-pid" registryObject="Document01"
          identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427" value="123456789012345^^^&amp;1.2.250.1.213.1.4.10&amp;ISO">
       <rim:Name><rim:LocalizedString value="XDSDocumentEntry.patientId"/></rim:Name>
      </rim:ExternalIdentifier>
      <rim:ExternalIdentifier id="ei-de-uid" registryObject="Document01"
          identificationScheme="urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab" value="1.2.250.1.999.1.1.8121.1.1">
       <rim:Name><rim:LocalizedString value="XDSDocumentEntry.uniqueId"/></rim:Name>
      </rim:ExternalIdentifier>
     </rim:ExtrinsicObject>
     <rim:Association id="Assoc01" associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
         sourceObject="SubmissionSet01" targetObject="Document01">
      <rim:Slot name="SubmissionSetStatus"><rim:ValueList><rim:Value>Original</rim:Value></rim:ValueList></rim:Slot>
     </rim:Association>
    </rim:RegistryObjectList>
   </lcm:SubmitObjectsRequest>
   <xdsb:Document id="Document01"><xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:doc1@example.fr"/></xdsb:Document>
  </xdsb:ProvideAndRegisterDocumentSetRequest>
 </soap:Body>
</soap:Envelope>
--MIMEBoundary_a1b2c3
Content-Type: text/plain
Content-Transfer-Encoding: binary
Content-ID: <doc1@example.fr>

Compte rendu de consultation du 12/03/2024 - patient fictif.

--MIMEBoundary_a1b2c3--
""".replace("\n", "\r\n").encode()  # noqa: E501


@given(st.lists(st.integers(1, 64), min_size=1, max_size=8))
@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_on_root_runs_before_any_attachment_file_exists(tmp_path: pathlib.Path, sizes: list[int]) -> None:
    """Whatever the chunking, the root part is handed over while the spool is still empty."""
    spool = fresh_spool(tmp_path)
    body = multipart("b", [(["Content-ID: <r@x>"], b"<env/>"), (["Content-ID: <d@x>"], b"document " * 20)])
    seen: list[tuple[bytes, list[str]]] = []
    decoder = MtomDecoder(related("b", "<r@x>"), spool,
                          on_root=lambda root, _ct: seen.append((root, sorted(p.name for p in spool.iterdir()))))
    for piece in chunks(body, sizes):
        decoder.feed(piece)
    message = decoder.close()
    assert seen == [(b"<env/>", [])]
    assert attachment(message, "cid:d@x").path.read_bytes() == b"document " * 20


def test_on_root_refusal_stops_the_package_and_leaves_nothing(tmp_path: pathlib.Path) -> None:
    class Refused(Exception):
        pass

    def refuse(_root: bytes, _ct: str) -> None:
        raise Refused

    body = multipart("b", [(["Content-ID: <r@x>"], b"<env/>"), (["Content-ID: <d@x>"], b"doc")])
    decoder = MtomDecoder(related("b", "<r@x>"), tmp_path, on_root=refuse)
    with pytest.raises(Refused):
        decoder.feed(body)
    assert list(tmp_path.iterdir()) == []


def test_with_on_root_a_part_before_the_root_is_refused(tmp_path: pathlib.Path) -> None:
    body = multipart("b", [(["Content-ID: <a@x>"], b"doc"), (["Content-ID: <b@x>"], b"<env/>")])
    decoder = MtomDecoder(related("b", "<b@x>"), tmp_path, on_root=lambda _r, _c: None)
    with pytest.raises(MimeError, match="MIME part 1 comes before the root part <b@x>"):
        decoder.feed(body)
    assert list(tmp_path.iterdir()) == []


def test_attachments_are_spooled_to_private_distinct_files_in_the_spool_directory(tmp_path: pathlib.Path) -> None:
    """Each attachment gets a file of its own, created exclusively in the spool directory and readable by its owner
    only (what tempfile.mkstemp guaranteed before the spool files were created directly, issue 13)."""
    parts = [(["Content-ID: <root@x>"], b"<env/>")] + [([f"Content-ID: <d{i}@x>"], b"doc %d" % i) for i in range(5)]
    message = decode(multipart("b", parts), related("b", "<root@x>"), tmp_path)
    paths = [att.path for att in message.attachments.values()]
    assert len(set(paths)) == 5
    for i, path in enumerate(paths):
        assert path.parent == tmp_path
        assert re.fullmatch(r"mtom-[0-9a-f]{16}\.part", path.name)
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.read_bytes() == b"doc %d" % i
    message.discard()
    assert list(tmp_path.iterdir()) == []
