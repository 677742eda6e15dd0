"""Cursors no server of ours hands out: each must be refused, by the pages and by the API."""

from __future__ import annotations

import base64
import json


def b64(raw: str, *, padded: bool = False) -> str:
    encoded = base64.urlsafe_b64encode(raw.encode()).decode()
    return encoded if padded else encoded.rstrip("=")


WHEN = "2024-05-01T10:00:00+00:00"
# What a crafted cursor decodes to, for the sorts on (date, id).
DECODED = {
    "not json": "not json",
    "json object": '{"a": 1}',
    "json string": '"x"',
    "too short": json.dumps([WHEN]),
    "too long": json.dumps([WHEN, 1, 2, 3]),
    "empty list": "[]",
    "null values": "[null, null]",
    "date is a number": "[1, 1]",
    "date is not a date": '["tomorrow", 1]',
    "date without a zone": '["2024-05-01T10:00:00", 1]',
    "id is text": json.dumps([WHEN, "one"]),
    "id is a bool": json.dumps([WHEN, True]),
    "id is a float": json.dumps([WHEN, 1.5]),
    "id is infinite": f'["{WHEN}", 1e400]',
    "id beyond bigint": json.dumps([WHEN, 2**70]),
    "id negative": json.dumps([WHEN, -5]),
    "date out of range": '["9999-12-31T23:59:59-14:00", 1]',
    "nul in a value": json.dumps([WHEN, "a\x00b"]),
}
MALFORMED = {
    "garbage": "garbage!!~~",
    "bad base64": "a",
    "huge cursor": b64(json.dumps([WHEN, 1])) * 200,
    **{name: b64(raw) for name, raw in DECODED.items()},
    "not utf-8": base64.urlsafe_b64encode(b'["\xff\xfe", 1]').decode(),
    **{f"{name}, padded": b64(raw, padded=True) for name, raw in DECODED.items()},
}
GROUP_MALFORMED = {
    # Groups page on (date, fingerprint): text is what their second key is.
    **{name: cursor for name, cursor in MALFORMED.items() if not name.startswith("id is text")},
    # A flat page's cursor is not a group page's: the second key there is a fingerprint.
    "flat cursor": b64(json.dumps([WHEN, 7])),
    "fingerprint with nul": b64(json.dumps([WHEN, "ab\x00"])),
}
