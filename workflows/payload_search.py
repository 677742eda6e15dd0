"""The words of an event's payload, for full-text search over events.

One expression, used by the index on workflows_event and by every query that searches it: the
planner uses an expression index only for the very same expression. Payloads never change (a
trigger refuses it), so an expression index costs nothing but the insert, and needs no column
(adding a stored column would rewrite the whole table).
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchVectorField
from django.db.models import Func

# The same words the queue's search column holds of a payload: every string and number.
PAYLOAD_WORDS_SQL = (
    "jsonb_to_tsvector('simple'::regconfig, %(expressions)s, '[\"string\", \"numeric\"]'::jsonb)"
)


class PayloadWords(Func):
    """jsonb_to_tsvector('simple', payload, '["string", "numeric"]'): immutable, so indexable."""

    template = PAYLOAD_WORDS_SQL
    output_field = SearchVectorField()

    def __init__(self, expression: Any = "payload", **extra: Any) -> None:
        super().__init__(expression, **extra)


def payload_query(text: str) -> SearchQuery:
    """What a person typed, as the queue reads it: words, "phrases", -exclusions, or."""
    return SearchQuery(text, config="simple", search_type="websearch")
