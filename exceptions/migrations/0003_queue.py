"""The queue: SLA deadline and search columns, comments, saved views and bulk jobs."""

import datetime

import django.contrib.postgres.indexes
import django.contrib.postgres.search
import django.db.models.deletion
import django.db.models.functions.comparison
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

# Cases that exist already get their next deadline and their words.
BACKFILL = """
UPDATE exceptions_exceptioncase AS c SET
    sla_due_at = CASE
        WHEN c.state NOT IN ('open', 'acknowledged', 'snoozed') THEN NULL
        WHEN c.acknowledged_at IS NULL THEN LEAST(c.acknowledge_due_at, c.resolve_due_at)
        ELSE c.resolve_due_at
    END,
    search = to_tsvector('simple', c.detail)
        || jsonb_to_tsvector('simple', e.payload, '["string", "numeric"]')
FROM workflows_event AS e
WHERE e.id = c.event_id;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("exceptions", "0002_builtin_reason_codes"),
        ("workflows", "0003_event_pending_run"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="BulkJob",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "action",
                    models.CharField(
                        choices=[
                            ("assign", "Assign"),
                            ("acknowledge", "Acknowledge"),
                            ("snooze", "Snooze"),
                            ("resolve", "Resolve"),
                            ("dismiss", "Dismiss"),
                            ("retry", "Retry"),
                            ("replay", "Replay"),
                        ],
                        max_length=20,
                    ),
                ),
                ("params", models.JSONField(default=dict)),
                ("note", models.TextField(blank=True)),
                ("scope", models.CharField(blank=True, max_length=2000)),
                (
                    "state",
                    models.CharField(
                        choices=[("queued", "Queued"), ("running", "Running"), ("done", "Done")],
                        default="queued",
                        max_length=10,
                    ),
                ),
                ("total", models.PositiveIntegerField(default=0)),
                ("done", models.PositiveIntegerField(default=0)),
                ("succeeded", models.PositiveIntegerField(default=0)),
                ("skipped", models.PositiveIntegerField(default=0)),
                ("failed", models.PositiveIntegerField(default=0)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="BulkJobItem",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("succeeded", "Succeeded"),
                            ("skipped", "Skipped"),
                            ("failed", "Failed"),
                        ],
                        default="pending",
                        max_length=10,
                    ),
                ),
                ("message", models.TextField(blank=True)),
            ],
        ),
        migrations.CreateModel(
            name="Comment",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("body", models.TextField()),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "ordering": ["case", "created_at", "id"],
            },
        ),
        migrations.CreateModel(
            name="SavedView",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=80)),
                ("query", models.CharField(max_length=2000)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "ordering": ["owner", "name"],
            },
        ),
        migrations.AddField(
            model_name="exceptioncase",
            name="closed_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="exceptioncase",
            name="search",
            field=django.contrib.postgres.search.SearchVectorField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="exceptioncase",
            name="sla_due_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="exceptioncase",
            index=models.Index(
                django.db.models.functions.comparison.Coalesce(
                    "sla_due_at",
                    models.Value(datetime.datetime(9999, 12, 31, 0, 0, tzinfo=datetime.UTC)),
                ),
                models.F("id"),
                condition=models.Q(("state__in", ["open", "acknowledged", "snoozed"])),
                name="case_open_sla_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="exceptioncase",
            index=models.Index(
                models.F("opened_at"),
                models.F("id"),
                condition=models.Q(("state__in", ["open", "acknowledged", "snoozed"])),
                name="case_open_age_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="exceptioncase",
            index=models.Index(
                models.F("workflow"),
                models.F("opened_at"),
                models.F("id"),
                condition=models.Q(("state__in", ["open", "acknowledged", "snoozed"])),
                name="case_open_workflow_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="exceptioncase",
            index=models.Index(
                django.db.models.functions.comparison.Coalesce(
                    "sla_due_at",
                    models.Value(datetime.datetime(9999, 12, 31, 0, 0, tzinfo=datetime.UTC)),
                ),
                models.F("id"),
                name="case_sla_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="exceptioncase",
            index=models.Index(models.F("opened_at"), models.F("id"), name="case_age_idx"),
        ),
        migrations.AddIndex(
            model_name="exceptioncase",
            index=models.Index(
                models.F("workflow"),
                models.F("opened_at"),
                models.F("id"),
                name="case_workflow_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="exceptioncase",
            index=django.contrib.postgres.indexes.GinIndex(
                fields=["search"], name="case_search_idx"
            ),
        ),
        migrations.AddField(
            model_name="bulkjob",
            name="created_by",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="bulk_jobs",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="bulkjobitem",
            name="case",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="exceptions.exceptioncase",
            ),
        ),
        migrations.AddField(
            model_name="bulkjobitem",
            name="job",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="items",
                to="exceptions.bulkjob",
            ),
        ),
        migrations.AddField(
            model_name="comment",
            name="author",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="comment",
            name="case",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="comments",
                to="exceptions.exceptioncase",
            ),
        ),
        migrations.AddField(
            model_name="savedview",
            name="owner",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="saved_views",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddIndex(
            model_name="bulkjobitem",
            index=models.Index(
                condition=models.Q(("state", "pending")),
                fields=["job", "id"],
                name="bulkitem_pending_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="bulkjobitem",
            constraint=models.UniqueConstraint(
                fields=("job", "case"), name="bulkitem_job_case_unique"
            ),
        ),
        migrations.AddIndex(
            model_name="comment",
            index=models.Index(fields=["case", "created_at"], name="comment_case_idx"),
        ),
        migrations.AddConstraint(
            model_name="savedview",
            constraint=models.UniqueConstraint(
                fields=("owner", "name"), name="savedview_owner_name_unique"
            ),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]
