"""The grouped queue: two indexes of open cases by fingerprint, to walk the groups.

Built CONCURRENTLY: on a table of millions of cases a plain CREATE INDEX would hold every case
write up for as long as it takes.
"""

import datetime

import django.db.models.functions.comparison
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

_OPEN = models.Q(("state__in", ["open", "acknowledged", "snoozed"]))
# The columns the queue filters on most: a filtered walk reads the index alone.
_INCLUDE = ("owner_user", "owner_team", "workflow", "reason", "sla_due_at")


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("exceptions", "0008_approvals"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="exceptioncase",
            index=models.Index(
                models.F("fingerprint"),
                django.db.models.functions.comparison.Coalesce(
                    "sla_due_at",
                    models.Value(datetime.datetime(9999, 12, 31, 0, 0, tzinfo=datetime.UTC)),
                ),
                models.F("id"),
                condition=_OPEN,
                include=_INCLUDE,
                name="case_open_group_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="exceptioncase",
            index=models.Index(
                models.F("fingerprint"),
                models.F("opened_at"),
                models.F("id"),
                condition=_OPEN,
                include=_INCLUDE,
                name="case_open_group_age_idx",
            ),
        ),
    ]
