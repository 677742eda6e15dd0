"""The one byte form of a JSON value, and its hash: for audit entries, payloads and definitions.

It lives in audit, the lowest layer, because the audit chain needs it and depends on nothing of
ours; workflows hash payloads and definitions with the same function.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8, no NaN: equal values give equal bytes."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def canonical_hash(value: Any) -> str:
    """SHA-256 hex of canonical_json(value)."""
    return hashlib.sha256(canonical_json(value)).hexdigest()
