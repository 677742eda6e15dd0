"""Workflow ownership with validity dates, and when a team stopped taking work.

Workflows loaded before ownership was kept get their history from their versions: a row each
time a version changed the owner lines, and one for the current version if an older one was
made current again. All of it is marked as coming from the definitions.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models
from django.utils import timezone


def _lines(definition):
    return definition["owner"], list(definition.get("fallback_owners") or [])


def backfill(apps, schema_editor):
    Team = apps.get_model("workflows", "Team")
    Workflow = apps.get_model("workflows", "Workflow")
    Ownership = apps.get_model("workflows", "WorkflowOwnership")
    now = timezone.now()
    Team.objects.filter(active=False, deactivated_at__isnull=True).update(deactivated_at=now)
    for workflow in Workflow.objects.exclude(current_version=None):
        rows = []
        for version in workflow.versions.order_by("number"):
            lines = _lines(version.definition)
            if rows and (rows[-1].owner, rows[-1].fallback_owners) == lines:
                continue
            start = max(version.created_at, rows[-1].valid_from) if rows else workflow.created_at
            if rows:
                rows[-1].valid_to = start
            rows.append(
                Ownership(
                    workflow=workflow,
                    owner=lines[0],
                    fallback_owners=lines[1],
                    valid_from=start,
                    source="definition",
                    version=version,
                    set_by="system",
                    reason=f"owner lines of version {version.number}",
                )
            )
        current = workflow.current_version
        if (rows[-1].owner, rows[-1].fallback_owners) != _lines(current.definition):
            rows[-1].valid_to = now
            rows.append(
                Ownership(
                    workflow=workflow,
                    owner=current.definition["owner"],
                    fallback_owners=_lines(current.definition)[1],
                    valid_from=now,
                    source="definition",
                    version=current,
                    set_by="system",
                    reason=f"owner lines of version {current.number}",
                )
            )
        # A period that would be empty (two versions in the same instant) is left out.
        kept = [r for r in rows if r.valid_to is None or r.valid_to > r.valid_from]
        Ownership.objects.bulk_create(kept)


def unfill(apps, schema_editor):
    apps.get_model("workflows", "WorkflowOwnership").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0005_processing_failures_and_superseded_attempts"),
    ]

    operations = [
        migrations.AddField(
            model_name="team",
            name="deactivated_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name="WorkflowOwnership",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("owner", models.SlugField(max_length=64)),
                ("fallback_owners", models.JSONField(default=list)),
                ("valid_from", models.DateTimeField(default=django.utils.timezone.now)),
                ("valid_to", models.DateTimeField(blank=True, null=True)),
                (
                    "source",
                    models.CharField(
                        choices=[("definition", "Definition load"), ("console", "Console")],
                        max_length=12,
                    ),
                ),
                ("set_by", models.CharField(max_length=200)),
                ("reason", models.TextField(blank=True)),
                (
                    "version",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="workflows.workflowversion",
                    ),
                ),
                (
                    "workflow",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="ownerships",
                        to="workflows.workflow",
                    ),
                ),
            ],
            options={
                "ordering": ["workflow", "valid_from", "id"],
                "indexes": [
                    models.Index(fields=["workflow", "valid_from"], name="ownership_workflow_idx")
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            ("valid_to__isnull", True),
                            ("valid_to__gt", models.F("valid_from")),
                            _connector="OR",
                        ),
                        name="ownership_period_valid",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("valid_to__isnull", True)),
                        fields=("workflow",),
                        name="ownership_one_open_per_workflow",
                    ),
                ],
            },
        ),
        migrations.RunPython(backfill, unfill),
    ]
