"""/events/: an index to page events in received order, and one over the words of payloads.

Both are built CONCURRENTLY: on a table of millions of events a plain CREATE INDEX would hold
ingest up for minutes. No column is added (a stored tsvector column would rewrite the table):
the search index is over an expression of the payload, which never changes.
"""

import django.contrib.postgres.indexes
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

import workflows.payload_search


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("workflows", "0007_refuse_truncate"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="event",
            index=models.Index(models.F("received_at"), models.F("id"), name="event_received_idx"),
        ),
        AddIndexConcurrently(
            model_name="event",
            index=django.contrib.postgres.indexes.GinIndex(
                workflows.payload_search.PayloadWords(), name="event_payload_search_idx"
            ),
        ),
    ]
