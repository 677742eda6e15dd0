"""Grant the roles their permissions on ownership (DESIGN.md section 2).

Everyone with a role reads teams, memberships and workflow ownership; admins change them;
managers and admins reassign any case and see the ownership-gaps radar (operators reassign
only the cases they own).
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

READ = [("workflows", "view_workflowownership")]
CHANGE = [("workflows", "add_workflowownership"), ("workflows", "change_workflowownership")]
OVERSEE = [("exceptions", "reassign_exceptioncase"), ("exceptions", "view_ownership_gaps")]

GRANTS = {
    "operator": READ,
    "manager": READ + OVERSEE,
    "admin": READ + CHANGE + OVERSEE,
    "auditor": READ,
}


def _permissions(apps, pairs):
    Permission = apps.get_model("auth", "Permission")
    found = []
    for app_label, codename in pairs:
        found.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return found


def grant(apps, schema_editor):
    for label in ("workflows", "exceptions"):
        create_permissions(global_apps.get_app_config(label), apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    for role, pairs in GRANTS.items():
        Group.objects.get(name=role).permissions.add(*_permissions(apps, pairs))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for role, pairs in GRANTS.items():
        Group.objects.get(name=role).permissions.remove(*_permissions(apps, pairs))


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0002_engine_permissions"),
        ("workflows", "0006_ownership_history"),
        ("exceptions", "0007_ownership_and_notices"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
