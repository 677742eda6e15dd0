"""The queue's keyset pagination is the one in audit.pagination (the trail pages with it too)."""

from audit.pagination import (
    InvalidCursor,
    KeysetPage,
    SortSpec,
    decode_cursor,
    encode_cursor,
    keyset_page,
)

__all__ = [
    "InvalidCursor",
    "KeysetPage",
    "SortSpec",
    "decode_cursor",
    "encode_cursor",
    "keyset_page",
]
