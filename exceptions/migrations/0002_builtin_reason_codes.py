"""The built-in reason codes of DESIGN.md section 4, with default SLA clocks."""

from datetime import timedelta

from django.db import migrations

BUILTIN = [
    # code, label, description, acknowledge within, resolve within, note required
    (
        "validation_failed",
        "Validation failed",
        "The payload misses a required field or has a field of the wrong type.",
        timedelta(minutes=30),
        timedelta(hours=4),
        False,
    ),
    (
        "rule_error",
        "Rule error",
        "A routing, enrichment or review rule failed while it ran.",
        timedelta(minutes=30),
        timedelta(hours=4),
        False,
    ),
    (
        "no_owner",
        "No owner",
        "Routing found no active owner and the fallback chain was empty or inactive.",
        timedelta(minutes=15),
        timedelta(hours=2),
        False,
    ),
    (
        "review_required",
        "Review required",
        "A review rule matched: a person must approve before the action runs.",
        timedelta(hours=1),
        timedelta(hours=8),
        True,
    ),
    (
        "delivery_rejected",
        "Delivery rejected",
        "The destination refused the delivery (a 4xx that retrying will not fix).",
        timedelta(minutes=30),
        timedelta(hours=4),
        False,
    ),
    (
        "delivery_failed",
        "Delivery failed",
        "Every retry on the schedule failed.",
        timedelta(minutes=30),
        timedelta(hours=4),
        False,
    ),
    (
        "outcome_missing",
        "Outcome missing",
        "The destination did not confirm the outcome within the workflow's window.",
        timedelta(hours=1),
        timedelta(hours=8),
        False,
    ),
    (
        "outcome_failed",
        "Outcome failed",
        "The destination reported that the business outcome did not happen.",
        timedelta(hours=1),
        timedelta(hours=8),
        False,
    ),
    (
        "payload_shape_changed",
        "Payload shape changed",
        "The payload's shape drifted from what the workflow has seen before.",
        timedelta(hours=1),
        timedelta(hours=8),
        False,
    ),
]


def seed(apps, schema_editor):
    ReasonCode = apps.get_model("exceptions", "ReasonCode")
    for code, label, description, ack, resolve, note in BUILTIN:
        ReasonCode.objects.update_or_create(
            code=code,
            defaults={
                "label": label,
                "description": description,
                "default_acknowledge_within": ack,
                "default_resolve_within": resolve,
                "note_required": note,
                "builtin": True,
            },
        )


def unseed(apps, schema_editor):
    apps.get_model("exceptions", "ReasonCode").objects.filter(builtin=True).delete()


class Migration(migrations.Migration):
    dependencies = [("exceptions", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
