"""The built-in reason code for an event whose processing kept failing (DESIGN.md section 4)."""

from datetime import timedelta

from django.db import migrations


def seed(apps, schema_editor):
    apps.get_model("exceptions", "ReasonCode").objects.update_or_create(
        code="processing_error",
        defaults={
            "label": "Processing error",
            "description": (
                "An unexpected error stopped the event's processing several times in a row: "
                "it is no longer retried, and the error is shown for a person to act on."
            ),
            "default_acknowledge_within": timedelta(minutes=30),
            "default_resolve_within": timedelta(hours=4),
            "note_required": False,
            "builtin": True,
        },
    )


def unseed(apps, schema_editor):
    apps.get_model("exceptions", "ReasonCode").objects.filter(code="processing_error").delete()


class Migration(migrations.Migration):
    dependencies = [("exceptions", "0005_bulk_job_progressed_at")]

    operations = [migrations.RunPython(seed, unseed)]
