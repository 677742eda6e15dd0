"""Grant the roles their permissions on four-eyes approval requests (DESIGN.md section 6).

Operators, managers, admins and auditors read approval requests (operators ask for them);
managers and admins decide them. Who may decide a given request also depends on the role it
requires, and nobody decides their own.
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

READ = ["view_approvalrequest"]
DECIDE = [*READ, "decide_approvalrequest"]
GRANTS = {"operator": READ, "manager": DECIDE, "admin": DECIDE, "auditor": READ}


def grant(apps, schema_editor):
    create_permissions(global_apps.get_app_config("exceptions"), apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in GRANTS.items():
        Group.objects.get(name=role).permissions.add(
            *Permission.objects.filter(content_type__app_label="exceptions", codename__in=codenames)
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    codenames = {name for names in GRANTS.values() for name in names}
    for group in Group.objects.filter(name__in=GRANTS):
        group.permissions.remove(
            *group.permissions.filter(content_type__app_label="exceptions", codename__in=codenames)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0005_sample_review_permissions"),
        ("exceptions", "0008_approvals"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
