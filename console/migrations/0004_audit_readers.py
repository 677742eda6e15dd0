"""Auditors and admins read every entry of the trail; the other roles, those of what they see."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {"admin": ["view_all_auditentry"], "auditor": ["view_all_auditentry"]}


def grant(apps, schema_editor):
    create_permissions(global_apps.get_app_config("audit"), apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in GRANTS.items():
        Group.objects.get(name=role).permissions.add(
            *Permission.objects.filter(content_type__app_label="audit", codename__in=codenames)
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in GRANTS.items():
        Group.objects.get(name=role).permissions.remove(
            *Permission.objects.filter(content_type__app_label="audit", codename__in=codenames)
        )


class Migration(migrations.Migration):
    dependencies = [("console", "0003_ownership_permissions"), ("audit", "0003_trail_guards")]

    operations = [migrations.RunPython(grant, revoke)]
