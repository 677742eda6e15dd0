"""Text that came from outside, made safe to store and to show.

Response bodies, header values and error messages come from systems Handoff does not control. A
destination may answer with a binary page, UTF-16, a NUL byte or a lone surrogate; PostgreSQL
refuses NUL in text and jsonb, and a refused write must never be how an event gets stuck. Every
piece of outside text goes through `external_text` before it is stored.
"""

from __future__ import annotations

import codecs
import re
import zlib

REPLACEMENT = "\ufffd"
DEFAULT_LIMIT = 2000
HEX_EXCERPT_BYTES = 64
# A compressed body is inflated to at most this much before it is shown: never a bomb.
MAX_INFLATED_BYTES = 64 * 1024

# NUL, the other C0 controls but tab, newline and carriage return, DEL, and lone surrogates.
_UNSHOWABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def external_text(data: bytes | str | None, *, limit: int = DEFAULT_LIMIT) -> str:
    """At most `limit` characters of text safe for a PostgreSQL text or jsonb column.

    Bytes are decoded as UTF-8 (or by their byte-order mark); bytes that are not text are shown
    as `binary, N bytes: <hex excerpt>` rather than as mojibake.
    """
    if data is None:
        return ""
    if isinstance(data, bytes):
        text = _decoded(data)
        if text is None:
            excerpt = data[:HEX_EXCERPT_BYTES].hex(" ")
            more = " …" if len(data) > HEX_EXCERPT_BYTES else ""
            return _shortened(f"binary, {len(data)} bytes: {excerpt}{more}", limit)
    else:
        text = data
    return _shortened(_UNSHOWABLE.sub(REPLACEMENT, text), limit)


def inflated(body: bytes, content_encoding: str) -> bytes | None:
    """A gzip or deflate body inflated to at most MAX_INFLATED_BYTES; None for other codings."""
    coding = content_encoding.strip().lower()
    if coding in ("", "identity"):
        return body
    if coding not in ("gzip", "x-gzip", "deflate"):
        return None
    # wbits 47 accepts both gzip and zlib headers; max_length bounds the output, not the input.
    inflater = zlib.decompressobj(wbits=47)
    try:
        return inflater.decompress(body, MAX_INFLATED_BYTES)
    except zlib.error:
        return None


def _decoded(data: bytes) -> str | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                return None
    if b"\x00" in data[:512]:
        # Text formats this side of UTF-16 have no NUL; a NUL early on means a binary body.
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(data) - 3:
            # A multi-byte character cut by the excerpt's end: the rest is fine.
            return data[: exc.start].decode("utf-8")
        if _mostly_text(data):
            return data.decode("utf-8", errors="replace")
        return None


def _mostly_text(data: bytes) -> bool:
    sample = data[:512]
    printable = sum(1 for byte in sample if byte >= 0x20 or byte in (9, 10, 13))
    return printable >= 0.9 * len(sample)


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
