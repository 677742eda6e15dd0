"""The four roles as groups, with the permissions that exist when this migration runs.

Apps that add models later grant their permissions to these groups in their own migrations.
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = ("operator", "manager", "admin", "auditor")

# Everyone may read the trail; auditors and admins may export it and verify the chain.
AUDIT_PERMISSIONS = {
    "operator": ["view_auditentry"],
    "manager": ["view_auditentry", "export_auditentry"],
    "admin": ["view_auditentry", "export_auditentry", "verify_auditentry"],
    "auditor": ["view_auditentry", "export_auditentry", "verify_auditentry"],
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; make sure the audit ones exist now.
    for label in ("auth", "audit"):
        create_permissions(global_apps.get_app_config(label), apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(
            *Permission.objects.filter(
                content_type__app_label="audit", codename__in=AUDIT_PERMISSIONS[role]
            )
        )
    # Admins manage people and their roles.
    Group.objects.get(name="admin").permissions.add(
        *Permission.objects.filter(
            content_type__app_label="auth",
            codename__in=["view_user", "add_user", "change_user", "view_group"],
        )
    )


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("audit", "0002_append_only_trigger"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
