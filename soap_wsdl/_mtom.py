"""Streaming MTOM/XOP codec: ``multipart/related`` packages (RFC 2387) framed per RFC 2046 §5.1.1.

Decoding (`MtomDecoder`) is a push parser: the server feeds body chunks as they arrive and memory stays
constant whatever the attachment size. The root (SOAP) part is kept in memory up to a limit; every other part
is decoded straight into a temp file while its SHA-1 and size are computed, so the repository never reads a
document twice (docs/mtom.md §2). Encoding (`mtom_stream`) yields the body of an MTOM message, reading
attachment files in chunks.

Framing rules the decoder applies, and why:

- The delimiter is ``CRLF "--" boundary``: exactly one CRLF before ``--boundary`` belongs to the delimiter, no
  other byte is ever trimmed (zeep's ``strip(b"\\r\\n")`` corrupts documents, zeep issue #1249).
- ``--boundary`` only delimits when followed by ``--`` (close delimiter) or by optional transport padding
  (spaces, tabs) and a line break; ``--boundaryX`` inside content is content.
- LF-only framing (``LF "--" boundary``, ANS DRIMbox) is accepted. Such a client counts that LF as content, so
  the attachment also carries the hash and size of that reading (`Attachment.lf_variant`, docs/mtom.md §4).
- ``cid:`` references and Content-IDs are both percent-decoded before comparing (RFC 2392; CXF and WCF send
  encoded hrefs, docs/mtom.md §3).
"""

from __future__ import annotations

import binascii
import contextlib
import dataclasses
import enum
import errno
import hashlib
import os
import pathlib
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import unquote

_CR = 0x0D
_LF = 0x0A
_SPACE = 0x20
_TAB = 0x09
#: Longest transport padding we look through after ``--boundary``. Real senders pad with a few blanks at most;
#: a longer run of blanks cannot be a delimiter line for us, so it stays content and the hold-back stays bounded.
_MAX_PADDING = 1024
#: Transfer encodings that leave bytes as they are (RFC 2045 §6.2).
_IDENTITY_ENCODINGS = frozenset({"", "binary", "8bit", "7bit"})
_DEFAULT_CONTENT_TYPE = "application/octet-stream"


class MimeError(Exception):
    """Malformed MIME/MTOM packaging; str(e) is a readable reason that will go into a SOAP Sender fault."""


# --------------------------------------------------------------------------------------------------------------
# Header values


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type value into (media type, parameters) per RFC 2045 §5.1.

    ``'multipart/related; boundary="uuid:x+id=1"; start="<a@b>"'`` gives
    ``('multipart/related', {'boundary': 'uuid:x+id=1', 'start': '<a@b>'})``. The media type and parameter
    names are lowercased; values are unquoted. Parsing is quote-aware: ``;`` inside a quoted string does not
    split and a backslash escapes the next character. A parameter without ``=`` is ignored; the first of
    duplicated parameters wins. Raises `MimeError` if there is no ``type/subtype`` or a quote is unterminated.
    """
    media, _, rest = value.partition(";")
    media = media.strip().lower()
    kind, slash, subtype = media.partition("/")
    if not slash or not kind or not subtype:
        raise MimeError(f"malformed Content-Type {value!r}: no type/subtype")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        if rest[i] in "; \t\r\n":
            i += 1
            continue
        j = i
        while j < n and rest[j] not in "=;":
            j += 1
        name = rest[i:j].strip().lower()
        if j >= n or rest[j] == ";":
            i = j
            continue
        param_value, i = _parse_param_value(rest, j + 1, value)
        if name:
            params.setdefault(name, param_value)
    return media, params


def _parse_param_value(text: str, i: int, whole: str) -> tuple[str, int]:
    """Read a token or quoted-string (RFC 2045 §5.1, RFC 822 quoted-pair) at text[i:]; return it and the index
    of the ``;`` that ends it (or len(text))."""
    n = len(text)
    while i < n and text[i] in " \t\r\n":
        i += 1
    if i >= n or text[i] != '"':
        end = text.find(";", i)
        end = n if end < 0 else end
        return text[i:end].strip(), end
    i += 1
    close = text.find('"', i)
    if close >= 0 and text.find("\\", i, close) < 0:
        # No quoted-pair before the closing quote (the usual case): the value is the slice, no per-character
        # walk (this header is parsed for every MTOM request).
        end = text.find(";", close + 1)
        return text[i:close], n if end < 0 else end
    chars: list[str] = []
    while True:
        if i >= n:
            raise MimeError(f"malformed Content-Type {whole!r}: unterminated quoted string")
        c = text[i]
        if c == "\\" and i + 1 < n:
            chars.append(text[i + 1])
            i += 2
        elif c == '"':
            break
        else:
            chars.append(c)
            i += 1
    end = text.find(";", i + 1)
    # Anything between the closing quote and the next ';' is junk we tolerate rather than refuse.
    return "".join(chars), n if end < 0 else end


def _normalize_cid(raw: str) -> str:
    """Content-ID or cid: URL body -> comparable id: surrounding ``<>`` removed, then percent-decoded (RFC 2392)."""
    cid = raw.strip()
    if cid.startswith("<") and cid.endswith(">"):
        cid = cid[1:-1].strip()
    return unquote(cid)


def _parse_part_headers(block: bytes) -> dict[str, str]:
    """Parse a part's header block (RFC 2045 §3 / RFC 5322 §2.2): names lowercased, folded lines unfolded,
    values stripped, first occurrence wins. Bytes are read as Latin-1 so that no input can fail to decode."""
    fields: list[tuple[str, list[str]]] = []
    for raw_line in block.decode("latin-1").split("\n"):
        line = raw_line.removesuffix("\r")
        if not line:
            continue
        if line[0] in " \t":
            if not fields:
                raise MimeError("malformed MIME part headers: continuation line before any header")
            fields[-1][1].append(line)
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise MimeError(f"malformed MIME part header line {line[:80]!r}")
        fields.append((name.strip().lower(), [value]))
    headers: dict[str, str] = {}
    for name, pieces in fields:
        headers.setdefault(name, "".join(pieces).strip())
    return headers


# --------------------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Attachment:
    """A decoded non-root part, spooled to ``path``.

    ``lf_variant`` is set only when the part ended with an LF-only delimiter (``LF --boundary``, no CR before
    it): it is the (sha1, size) the content would have if that LF were counted as content, which is what ANS
    DRIMbox clients declare (docs/mtom.md §4). The caller compares the declared hash with ``sha1`` first and, on
    mismatch, with ``lf_variant`` before calling `adopt_lf_variant`.
    """

    content_id: str
    content_type: str
    path: pathlib.Path
    size: int
    sha1: str
    lf_variant: tuple[str, int] | None

    def adopt_lf_variant(self) -> Attachment:
        """Append ``b"\\n"`` to the file and return the attachment with sha1/size from ``lf_variant``.

        Raises ValueError if the part was not LF-framed.
        """
        if self.lf_variant is None:
            raise ValueError(f"attachment {self.content_id!r} was not LF-framed: no LF variant to adopt")
        with self.path.open("ab") as file:
            file.write(b"\n")
        sha1, size = self.lf_variant
        return dataclasses.replace(self, sha1=sha1, size=size, lf_variant=None)


@dataclass
class MtomMessage:
    """A decoded MTOM package (XOP 1.0 §4): the root part in memory, the other parts as temp files."""

    root: bytes
    root_content_type: str
    attachments: dict[str, Attachment]

    def resolve(self, href: str) -> Attachment | None:
        """The attachment an ``xop:Include/@href`` points to, or None.

        ``href`` is ``cid:`` + the URL-encoded Content-ID (RFC 2392); both sides are compared percent-decoded
        because CXF and WCF encode ``:`` and ``/`` in the href but not in the header (docs/mtom.md §3).
        """
        scheme, colon, rest = href.strip().partition(":")
        if not colon or scheme.lower() != "cid":
            return None
        return self.attachments.get(_normalize_cid(rest))

    def discard(self) -> None:
        """Delete every attachment temp file. Idempotent."""
        for attachment in self.attachments.values():
            attachment.path.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------------------
# Decoding: delimiter search


class _Delimiter(NamedTuple):
    content_end: int  # index in the buffer where the part's content ends
    line_end: int  # index just past the delimiter line (or past "--boundary--" for the close delimiter)
    close: bool
    lf_only: bool  # the delimiter was "LF --boundary" with no CR before the LF


_NEED_MORE = -1
_NOT_DELIMITER = -2
_CLOSE = -3


def _classify_after_boundary(buf: bytearray, j: int) -> int:
    """What follows ``--boundary`` ending at buf[j] (RFC 2046 §5.1.1 BNF).

    Returns the index past the line break for a delimiter line, `_CLOSE` for ``--boundary--``, `_NEED_MORE` if
    the buffer ends before this can be decided, or `_NOT_DELIMITER` (e.g. ``--boundaryX``: content).
    """
    n = len(buf)
    if j >= n:
        return _NEED_MORE
    if buf[j] == 0x2D:  # '-'
        if j + 1 >= n:
            return _NEED_MORE
        return _CLOSE if buf[j + 1] == 0x2D else _NOT_DELIMITER
    k = j
    limit = min(n, j + _MAX_PADDING + 1)
    while k < limit and buf[k] in (_SPACE, _TAB):
        k += 1
    if k - j > _MAX_PADDING:
        return _NOT_DELIMITER
    if k >= n:
        return _NEED_MORE
    if buf[k] == _LF:
        return k + 1
    if buf[k] == _CR:
        if k + 1 >= n:
            return _NEED_MORE
        return k + 2 if buf[k + 1] == _LF else _NOT_DELIMITER
    return _NOT_DELIMITER


def _find_delimiter(buf: bytearray, pattern: bytes, at_start: bool) -> _Delimiter | int:
    """Find the first delimiter in ``buf``; if there is none yet, return how many leading bytes are certainly
    content (everything except what could be the start of a delimiter split across chunks).

    ``pattern`` is ``LF--boundary``; a CR just before it also belongs to the delimiter. ``at_start`` says that
    buf[0] is the first byte after the part headers' empty line (or of the whole body): there, ``--boundary``
    needs no line break of its own (RFC 2046: an empty body, or no preamble). Each call looks at the buffer
    once, and the caller keeps only a tail of len(pattern) bytes between calls, so decoding is O(n).
    """
    if at_start:
        head = pattern[1:]
        if buf.startswith(head):
            verdict = _classify_after_boundary(buf, len(head))
            if verdict == _NEED_MORE:
                return 0
            if verdict != _NOT_DELIMITER:
                return _delimiter(0, len(head), verdict, lf_only=False)
        elif head.startswith(buf):
            return 0
    pos = 0
    while True:
        i = buf.find(pattern, pos)
        if i < 0:
            # Keep len(pattern) bytes: a partial "LF--bound" plus the CR that may precede it.
            return max(0, len(buf) - len(pattern))
        lf_only = i == 0 or buf[i - 1] != _CR
        content_end = i if lf_only else i - 1
        verdict = _classify_after_boundary(buf, i + len(pattern))
        if verdict == _NEED_MORE:
            return content_end
        if verdict != _NOT_DELIMITER:
            return _delimiter(content_end, i + len(pattern), verdict, lf_only=lf_only)
        pos = i + 1


def _delimiter(content_end: int, boundary_end: int, verdict: int, *, lf_only: bool) -> _Delimiter:
    if verdict == _CLOSE:
        return _Delimiter(content_end, boundary_end + 2, close=True, lf_only=lf_only)
    return _Delimiter(content_end, verdict, close=False, lf_only=lf_only)


def _find_header_end(buf: bytearray, scan_from: int) -> tuple[int, int] | None:
    """Locate the empty line ending a header block at buf[0:] (CRLF CRLF or LF LF, mixes tolerated).

    Returns (end of the header text, start of the body) or None if the block is not complete yet.
    """
    if buf.startswith(b"\r\n"):
        return 0, 2
    if buf.startswith(b"\n"):
        return 0, 1
    # The earlier of the two empty-line forms; the LF LF search stops where CRLF CRLF was found, so neither
    # search runs on into the part's content (for the root part, the whole envelope).
    crlf = buf.find(b"\n\r\n", scan_from)
    lf = buf.find(b"\n\n", scan_from, crlf + 1 if crlf >= 0 else len(buf))
    if lf >= 0:
        return lf + 1, lf + 2
    if crlf >= 0:
        return crlf + 1, crlf + 3
    return None


# --------------------------------------------------------------------------------------------------------------
# Decoding: where part content goes


class _Base64Stream:
    """Incremental base64 decoder (RFC 2045 §6.8): whitespace and line breaks are ignored, a partial 4-character
    quantum is carried to the next chunk, anything else that is not base64 raises `MimeError`."""

    _IGNORED = b" \t\r\n\x0b\x0c"

    def __init__(self) -> None:
        self._carry = b""
        self._padded = False

    def decode(self, data: bytes | memoryview) -> bytes:
        text = self._carry + bytes(data).translate(None, self._IGNORED)
        if not text:
            return b""
        if self._padded:
            raise MimeError("invalid base64 content: data after '=' padding")
        cut = len(text) - len(text) % 4
        self._carry, quanta = text[cut:], text[:cut]
        if not quanta:
            return b""
        self._padded = quanta.endswith(b"=")
        if self._padded and self._carry:
            raise MimeError("invalid base64 content: data after '=' padding")
        try:
            return binascii.a2b_base64(quanta, strict_mode=True)
        except binascii.Error as exc:
            raise MimeError(f"invalid base64 content: {exc}") from None

    def finish(self) -> None:
        if self._carry:
            raise MimeError("invalid base64 content: ends with an incomplete 4-character group")


class _MemorySink:
    """The root part: kept in memory, bounded."""

    def __init__(self, limit: int) -> None:
        self.data = bytearray()
        self._limit = limit

    def write(self, chunk: bytes | memoryview) -> None:
        if len(self.data) + len(chunk) > self._limit:
            raise MimeError(f"root MIME part is larger than {self._limit} bytes")
        self.data += chunk


class _FileSink:
    """An attachment: spooled to a temp file, hashed on the way.

    Written with ``os.write`` on the descriptor, through a buffer of its own, rather than a ``BufferedWriter``
    (``open(fd)``): that one asks the kernel for the file's status, whether it is a terminal and its position
    (three system calls per attachment, every ITI-41; issue 13) before a byte is written."""

    def __init__(self, spool_dir: str) -> None:
        self.fd, name = _create_spool_file(spool_dir)
        self.path = pathlib.Path(name)
        self._buffer = bytearray()
        # XDS hash is an integrity check defined as SHA-1 (ITI TF-3 4.2.3.2.11), not a security control.
        self.sha1 = hashlib.sha1(usedforsecurity=False)
        self.size = 0

    def write(self, chunk: bytes | memoryview) -> None:
        self.sha1.update(chunk)
        self.size += len(chunk)
        if not self._buffer and len(chunk) >= _SPOOL_WRITE:
            self._write_all(chunk)   # a large piece goes to the file as it is, without a copy
            return
        self._buffer += chunk
        if len(self._buffer) >= _SPOOL_WRITE:
            self._flush()

    @property
    def buffered(self) -> bytearray:
        return self._buffer

    def close(self) -> None:
        """Write what is buffered and close the file (OSError, e.g. disk full, with the file closed)."""
        if self.fd < 0:
            return
        try:
            self._flush()
        finally:
            fd, self.fd = self.fd, -1
            os.close(fd)

    def abandon(self) -> None:
        """Close the file without writing what is buffered (the part is being discarded)."""
        self._buffer = bytearray()
        self.close()

    def _flush(self) -> None:
        self._write_all(self._buffer)
        self._buffer = bytearray()

    def _write_all(self, data: bytes | bytearray | memoryview) -> None:
        with memoryview(data) as view:
            done = 0
            while done < len(view):
                done += os.write(self.fd, view[done:])


_SPOOL_WRITE = 64 * 1024
"""Bytes of an attachment gathered before they are written to its spool file."""
_SPOOL_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)


def _create_spool_file(spool_dir: str) -> tuple[int, str]:
    """A new file ``mtom-<random>.part`` in ``spool_dir``, created exclusively and readable by its owner only
    (what ``tempfile.mkstemp`` does, without its per-call parameter handling and name generator: one spool file
    per attachment of every ITI-41, issue 13). Names carry 64 random bits; a clash is retried as mkstemp does."""
    for _ in range(tempfile.TMP_MAX):
        name = f"{spool_dir}/mtom-{secrets.token_hex(8)}.part"
        try:
            return os.open(name, _SPOOL_FLAGS, 0o600), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no usable temporary file name found in the spool directory")


@dataclass
class _Part:
    content_id: str  # "" only for a root part sent without Content-ID
    content_type: str
    base64: _Base64Stream | None
    sink: _MemorySink | _FileSink

    def write(self, raw: bytes | memoryview) -> None:
        self.sink.write(self.base64.decode(raw) if self.base64 is not None else raw)


class _State(enum.Enum):
    PREAMBLE = enum.auto()
    HEADERS = enum.auto()
    BODY = enum.auto()
    EPILOGUE = enum.auto()
    CLOSED = enum.auto()
    FAILED = enum.auto()


# --------------------------------------------------------------------------------------------------------------
# Decoding: the push parser


class MtomDecoder:
    """Push parser for a ``multipart/related`` (MTOM/XOP) body: `feed` chunks as they arrive, then `close`.

    Memory is constant whatever the attachment sizes (the root part excepted, bounded by ``max_root_bytes``):
    only a tail as long as the delimiter is held back between chunks. The root part is the one whose Content-ID
    equals the ``start`` parameter, or the first part when ``start`` is absent (XOP 1.0 §4.1, RFC 2387 §3.2).
    Every other part needs a Content-ID and is spooled to ``tempfile.mkstemp(dir=spool_dir)``.

    Any `MimeError` from `feed` or `close` deletes the temp files created so far; so does any other exception
    (I/O error) raised from them. After a successful `close` the files belong to the returned `MtomMessage`
    and `discard` on the decoder no longer touches them.

    ``on_root(root_bytes, root_content_type)`` is called as soon as the root part is complete, before any byte
    of another part is written to disk (the server verifies the caller there: an anonymous client must not be
    able to fill the disk); whatever it raises comes out of `feed`/`close`, the package being discarded. With
    ``on_root`` set, a part before the root part is refused (`MimeError`): nothing may be stored before it.
    """

    def __init__(
        self,
        content_type: str,
        spool_dir: pathlib.Path,
        *,
        max_root_bytes: int = 64 * 1024 * 1024,
        max_header_bytes: int = 16 * 1024,
        max_parts: int = 10_000,
        on_root: Callable[[bytes, str], None] | None = None,
    ) -> None:
        media, params = parse_content_type(content_type)
        if media != "multipart/related":
            raise MimeError(f"expected a multipart/related (MTOM) body, got {media!r}")
        boundary = params.get("boundary", "")
        if not boundary or "\r" in boundary or "\n" in boundary:
            raise MimeError("multipart/related Content-Type has no usable boundary parameter")
        try:
            self._pattern = b"\n--" + boundary.encode("latin-1")
        except UnicodeEncodeError:
            raise MimeError("multipart boundary is not a Latin-1 string") from None
        start = params.get("start")
        self._start = _normalize_cid(start) if start is not None else None
        self._spool_dir = os.fspath(spool_dir)
        self._max_root_bytes = max_root_bytes
        self._max_header_bytes = max_header_bytes
        self._max_parts = max_parts
        self._on_root = on_root

        self._state = _State.PREAMBLE
        self._buf = bytearray()
        self._at_start = True  # nothing consumed since the body / the current part's content began
        self._header_scan = 0
        self._part: _Part | None = None
        self._part_count = 0
        self._seen_ids: set[str] = set()
        self._root: _MemorySink | None = None
        self._root_content_type = ""
        self._attachments: dict[str, Attachment] = {}
        self._created: list[pathlib.Path] = []

    @property
    def buffered_bytes(self) -> int:
        """Bytes this decoder holds in memory: the unparsed tail and the root part (the rest is on disk)."""
        sink = self._part.sink if self._part is not None else None
        return len(self._buf) + (len(self._root.data) if self._root is not None else 0) + (
            len(sink.data) if isinstance(sink, _MemorySink) else len(sink.buffered) if sink is not None else 0)

    def feed(self, data: bytes) -> None:
        """Consume the next chunk of the body. Raises `MimeError` as soon as the package is known to be bad."""
        self._require_usable()
        if self._state is _State.EPILOGUE:
            return  # RFC 2046: the epilogue is ignored; do not even buffer it
        with self._cleanup_on_error():
            self._buf += data
            self._advance()

    def close(self) -> MtomMessage:
        """Finish: return the message, or raise `MimeError` if the package is incomplete or malformed."""
        self._require_usable()
        with self._cleanup_on_error():
            if self._state is _State.PREAMBLE:
                raise MimeError("no MIME part: the body contains no '--boundary' delimiter line")
            if self._state is not _State.EPILOGUE:
                raise MimeError("truncated MIME package: the close delimiter '--boundary--' is missing")
            if self._root is None:
                raise MimeError(f"the start parameter <{self._start}> names no MIME part")
            message = MtomMessage(bytes(self._root.data), self._root_content_type, self._attachments)
            self._state = _State.CLOSED
            self._created = []  # the files now belong to the message
            self._buf = bytearray()
            return message

    def discard(self) -> None:
        """Delete the temp files created so far (call on any failure). Idempotent; no-op after `close`."""
        if self._state is not _State.CLOSED:
            self._state = _State.FAILED
            self._release()

    # -- internals -----------------------------------------------------------------------------------------

    def _require_usable(self) -> None:
        if self._state in (_State.CLOSED, _State.FAILED):
            raise RuntimeError(f"MtomDecoder is {self._state.name.lower()}")

    @contextlib.contextmanager
    def _cleanup_on_error(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self.discard()
            raise

    def _release(self) -> None:
        if self._part is not None and isinstance(self._part.sink, _FileSink):
            self._part.sink.abandon()
        self._part = None
        for path in self._created:
            path.unlink(missing_ok=True)
        self._created = []
        self._attachments = {}
        self._root = None
        self._buf = bytearray()

    def _advance(self) -> None:
        steps = {
            _State.PREAMBLE: self._skip_preamble,
            _State.HEADERS: self._read_headers,
            _State.BODY: self._read_content,
        }
        while (step := steps.get(self._state)) is not None and step():
            pass
        if self._state is _State.EPILOGUE:
            self._buf = bytearray()

    def _skip_preamble(self) -> bool:
        found = _find_delimiter(self._buf, self._pattern, self._at_start)
        if isinstance(found, int):
            if found:
                del self._buf[:found]
                self._at_start = False
            return False
        if found.close:
            raise MimeError("no MIME part: the body starts with the close delimiter")
        del self._buf[: found.line_end]
        self._state = _State.HEADERS
        return True

    def _read_headers(self) -> bool:
        end = _find_header_end(self._buf, self._header_scan)
        if end is None or end[1] > self._max_header_bytes:
            if end is not None or len(self._buf) > self._max_header_bytes:
                raise MimeError(f"MIME part header block larger than {self._max_header_bytes} bytes")
            self._header_scan = max(0, len(self._buf) - 2)  # the next search re-reads only a short tail
            return False
        text_end, body_start = end
        headers = _parse_part_headers(bytes(self._buf[:text_end]))
        del self._buf[:body_start]
        self._header_scan = 0
        self._begin_part(headers)
        self._state = _State.BODY
        self._at_start = True
        return True

    def _begin_part(self, headers: dict[str, str]) -> None:
        self._part_count += 1
        if self._part_count > self._max_parts:
            raise MimeError(f"more than {self._max_parts} MIME parts")
        raw_id = headers.get("content-id")
        content_id = _normalize_cid(raw_id) if raw_id is not None else ""
        if content_id:
            if content_id in self._seen_ids:
                raise MimeError(f"duplicate Content-ID <{content_id}>")
            self._seen_ids.add(content_id)
        content_type = headers.get("content-type") or _DEFAULT_CONTENT_TYPE
        encoding = headers.get("content-transfer-encoding", "").lower()
        if encoding in _IDENTITY_ENCODINGS:
            base64 = None
        elif encoding == "base64":
            base64 = _Base64Stream()
        else:
            raise MimeError(f"unsupported Content-Transfer-Encoding {encoding!r} in MIME part {self._part_count}")
        is_root = self._part_count == 1 if self._start is None else content_id == self._start
        sink: _MemorySink | _FileSink
        if not is_root and self._root is None and self._on_root is not None:
            raise MimeError(f"MIME part {self._part_count} comes before the root part"
                            f"{f' <{self._start}>' if self._start else ''}: the SOAP envelope must come first")
        if is_root:
            sink = _MemorySink(self._max_root_bytes)
            self._root_content_type = content_type
        elif not content_id:
            raise MimeError(f"MIME part {self._part_count} has no Content-ID, so nothing can reference it")
        else:
            sink = _FileSink(self._spool_dir)
            self._created.append(sink.path)
        self._part = _Part(content_id, content_type, base64, sink)

    def _read_content(self) -> bool:
        found = _find_delimiter(self._buf, self._pattern, self._at_start)
        if isinstance(found, int):
            self._write_content(found)
            del self._buf[:found]
            return False
        self._write_content(found.content_end)
        del self._buf[: found.line_end]
        self._finish_part(found.lf_only)
        self._state = _State.EPILOGUE if found.close else _State.HEADERS
        return True

    def _write_content(self, end: int) -> None:
        if end <= 0:
            return
        part = self._current_part()
        self._at_start = False
        # A view, not a copy; both views are released before the caller resizes the buffer.
        with memoryview(self._buf) as whole, whole[:end] as content:
            part.write(content)

    def _current_part(self) -> _Part:
        if self._part is None:  # unreachable: the BODY state always has a part
            raise RuntimeError("MtomDecoder: no current part")
        return self._part

    def _finish_part(self, lf_only: bool) -> None:
        part = self._current_part()
        if part.base64 is not None:
            part.base64.finish()
        sink = part.sink
        if isinstance(sink, _MemorySink):
            self._root = sink
            self._part = None
            if self._on_root is not None:
                self._on_root(bytes(sink.data), self._root_content_type)
            return
        else:
            sink.close()
            lf_variant = None
            if lf_only:
                with_lf = sink.sha1.copy()
                with_lf.update(b"\n")
                lf_variant = (with_lf.hexdigest(), sink.size + 1)
            self._attachments[part.content_id] = Attachment(
                part.content_id, part.content_type, sink.path, sink.size, sink.sha1.hexdigest(), lf_variant
            )
        self._part = None


# --------------------------------------------------------------------------------------------------------------
# Encoding


@dataclass(frozen=True)
class OutgoingAttachment:
    """A part to send: ``source`` is a file (read in chunks), bytes, or an iterable of byte chunks (a stream
    from object storage, read as the message is sent). ``content_id`` is without ``<>``."""

    content_id: str
    content_type: str
    source: pathlib.Path | bytes | Iterable[bytes]


def new_boundary() -> str:
    """A fresh boundary: 128 random bits, so no document content can anticipate it (RFC 2046 §5.1.1)."""
    return "MIMEBoundary_" + secrets.token_hex(16)


def mtom_content_type(boundary: str, root_content_id: str, action: str | None) -> str:
    """The HTTP Content-Type of an MTOM message (SOAP 1.2 MTOM §4.3, docs/mtom.md §1): ``multipart/related;
    boundary="..."; type="application/xop+xml"; start="<root>"; start-info="application/soap+xml"[;
    action="..."]``, every value quoted."""
    params = [
        ("boundary", boundary),
        ("type", "application/xop+xml"),
        ("start", f"<{root_content_id}>"),
        ("start-info", "application/soap+xml"),
    ]
    if action is not None:
        params.append(("action", action))
    return "multipart/related; " + "; ".join(f"{name}={_quoted(value)}" for name, value in params)


def mtom_stream(
    envelope: bytes,
    attachments: Iterable[OutgoingAttachment],
    boundary: str,
    root_content_id: str,
    chunk_size: int = 256 * 1024,
) -> Iterator[bytes]:
    """Yield the ``multipart/related`` body of an MTOM message (XOP 1.0 §4, RFC 2046 §5.1.1).

    First the root part (``application/xop+xml; charset=UTF-8; type="application/soap+xml"``, binary,
    ``Content-ID: <root_content_id>``) holding ``envelope``, then each attachment with
    ``Content-Transfer-Encoding: binary``, file sources read ``chunk_size`` bytes at a time, CRLF framing and
    the close delimiter. The boundary must not occur in the content: use `new_boundary`. Raises ValueError
    (eagerly for the boundary and root id, while streaming for attachments) for header values that are not
    ASCII or contain line breaks.
    """
    if not boundary:
        raise ValueError("empty MIME boundary")
    root_head = _part_head(
        boundary,
        'application/xop+xml; charset=UTF-8; type="application/soap+xml"',
        root_content_id,
        first=True,
    )
    return _stream(root_head, envelope, attachments, boundary, chunk_size)


def _stream(
    root_head: bytes,
    envelope: bytes,
    attachments: Iterable[OutgoingAttachment],
    boundary: str,
    chunk_size: int,
) -> Iterator[bytes]:
    yield root_head
    yield envelope
    for attachment in attachments:
        yield _part_head(boundary, attachment.content_type, attachment.content_id, first=False)
        if isinstance(attachment.source, bytes):
            if attachment.source:
                yield attachment.source
            continue
        if not isinstance(attachment.source, pathlib.Path):
            yield from (chunk for chunk in attachment.source if chunk)
            continue
        with attachment.source.open("rb") as file:
            while chunk := file.read(chunk_size):
                yield chunk
    yield f"\r\n--{boundary}--\r\n".encode("ascii")


def _part_head(boundary: str, content_type: str, content_id: str, *, first: bool) -> bytes:
    """Delimiter line plus part headers plus the empty line. Every delimiter but the first starts with the CRLF
    that RFC 2046 makes part of it, so content is written with nothing appended."""
    for value in (boundary, content_type, content_id):
        _check_header_text(value)
    head = (
        f"--{boundary}\r\n"
        f"Content-Type: {content_type}\r\n"
        "Content-Transfer-Encoding: binary\r\n"
        f"Content-ID: <{content_id}>\r\n\r\n"
    )
    return (b"" if first else b"\r\n") + head.encode("ascii")


def _quoted(value: str) -> str:
    _check_header_text(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check_header_text(text: str) -> None:
    if not text.isascii() or "\r" in text or "\n" in text:
        raise ValueError(f"MIME header value must be ASCII without line breaks: {text[:80]!r}")
