"""Grant the roles their permissions on the engine's and the queue's models."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

READ = [
    "view_team",
    "view_membership",
    "view_workflow",
    "view_workflowversion",
    "view_event",
    "view_decision",
    "view_attempt",
    "view_outcome",
    "view_reasoncode",
    "view_exceptioncase",
]
TRIAGE = ["triage_exceptioncase", "change_exceptioncase"]
CONFIGURE = [
    "add_team",
    "change_team",
    "add_membership",
    "change_membership",
    "add_workflow",
    "change_workflow",
    "add_workflowversion",
    "view_apitoken",
    "add_apitoken",
    "change_apitoken",
    "add_reasoncode",
    "change_reasoncode",
]

GRANTS = {
    "operator": READ + TRIAGE,
    "manager": READ + TRIAGE,
    "admin": READ + TRIAGE + CONFIGURE,
    "auditor": READ,
}


def grant(apps, schema_editor):
    for label in ("workflows", "exceptions"):
        create_permissions(global_apps.get_app_config(label), apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in GRANTS.items():
        Group.objects.get(name=role).permissions.add(
            *Permission.objects.filter(
                content_type__app_label__in=["workflows", "exceptions"], codename__in=codenames
            )
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.filter(name__in=GRANTS):
        group.permissions.remove(
            *group.permissions.filter(content_type__app_label__in=["workflows", "exceptions"])
        )


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0001_roles"),
        ("workflows", "0002_append_only_triggers"),
        ("exceptions", "0002_builtin_reason_codes"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
