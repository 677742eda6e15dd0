"""Everyone reads sample reviews and shape drift; managers and admins draw and mark samples."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

READ = ["view_samplereview", "view_samplereviewitem", "view_shapedrift"]
GRANTS = {
    "operator": READ,
    "manager": [*READ, "review_samplereview"],
    "admin": [*READ, "review_samplereview"],
    "auditor": READ,
}


def grant(apps, schema_editor):
    create_permissions(global_apps.get_app_config("workflows"), apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in GRANTS.items():
        Group.objects.get(name=role).permissions.add(
            *Permission.objects.filter(content_type__app_label="workflows", codename__in=codenames)
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    codenames = {name for names in GRANTS.values() for name in names}
    for group in Group.objects.filter(name__in=GRANTS):
        group.permissions.remove(
            *group.permissions.filter(content_type__app_label="workflows", codename__in=codenames)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0004_audit_readers"),
        ("workflows", "0009_sample_reviews_and_shape_drift"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
