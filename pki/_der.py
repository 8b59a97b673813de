"""The few DER shapes the IGC-Santé private extensions and DN ``#hex`` values use (X.690 §8, §10).

Only definite lengths, only the types listed; anything else is a :class:`ValueError`.
"""

from __future__ import annotations

INTEGER = 0x02
UTF8_STRING = 0x0C
PRINTABLE_STRING = 0x13
T61_STRING = 0x14
IA5_STRING = 0x16
UNIVERSAL_STRING = 0x1C
BMP_STRING = 0x1E
SEQUENCE = 0x30

_STRING_CODECS = {
    UTF8_STRING: "utf-8",
    PRINTABLE_STRING: "ascii",
    IA5_STRING: "ascii",
    T61_STRING: "latin-1",
    BMP_STRING: "utf-16-be",
    UNIVERSAL_STRING: "utf-32-be",
}


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _length(len(content)) + content


def encode_integer(value: int) -> bytes:
    size = max(1, (value.bit_length() + 8) // 8)  # room for the sign bit
    return tlv(INTEGER, value.to_bytes(size, "big", signed=True))


def encode_utf8_sequence(values: list[str]) -> bytes:
    return tlv(SEQUENCE, b"".join(tlv(UTF8_STRING, v.encode("utf-8")) for v in values))


def read_tlv(data: bytes, pos: int = 0) -> tuple[int, bytes, int]:
    """(tag, content, position after the element)."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, data[pos:end], end


def decode_single(data: bytes) -> tuple[int, bytes]:
    tag, content, end = read_tlv(data)
    if end != len(data):
        raise ValueError("trailing bytes after DER element")
    return tag, content


def decode_integer(data: bytes) -> int:
    tag, content = decode_single(data)
    if tag != INTEGER or not content:
        raise ValueError("not a DER INTEGER")
    return int.from_bytes(content, "big", signed=True)


def decode_string(data: bytes) -> str:
    """A DirectoryString-like value (UTF8String, PrintableString, IA5String, T61String, BMPString, ...)."""
    tag, content = decode_single(data)
    codec = _STRING_CODECS.get(tag)
    if codec is None:
        raise ValueError(f"DER tag {tag:#x} is not a string type")
    return content.decode(codec)


def decode_string_sequence(data: bytes) -> tuple[str, ...]:
    tag, content = decode_single(data)
    if tag != SEQUENCE:
        raise ValueError("not a DER SEQUENCE")
    out: list[str] = []
    pos = 0
    while pos < len(content):
        _, _, end = read_tlv(content, pos)
        out.append(decode_string(content[pos:end]))
        pos = end
    return tuple(out)
