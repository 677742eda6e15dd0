"""Nobody shortens the trail quietly: TRUNCATE of the audit table is refused too; the chain's
checks are kept; entries name their workflow; auditors may read every entry.

Row triggers do not fire on TRUNCATE, so the append-only trigger of 0002 never saw it. This
statement trigger has no way around it for anyone: tests that must empty the database do it the
way only a superuser can (session_replication_role = replica), which the application's
production role cannot do (README, "Production").
"""

from django.db import migrations, models

REFUSE_TRUNCATE = """
CREATE FUNCTION handoff_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_auditentry
    FOR EACH STATEMENT EXECUTE FUNCTION handoff_refuse_truncate();
"""

ALLOW_TRUNCATE = """
DROP TRIGGER IF EXISTS audit_entry_no_truncate ON audit_auditentry;
DROP FUNCTION IF EXISTS handoff_refuse_truncate();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_append_only_trigger"),
    ]

    operations = [
        migrations.RunSQL(REFUSE_TRUNCATE, ALLOW_TRUNCATE),
        migrations.CreateModel(
            name="ChainCheck",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("checked_at", models.DateTimeField()),
                ("ok", models.BooleanField()),
                ("entries", models.BigIntegerField(default=0)),
                ("head_seq", models.BigIntegerField(blank=True, null=True)),
                ("head_hash", models.CharField(blank=True, max_length=64)),
                ("head_checked", models.BooleanField(default=False)),
                ("broken_seq", models.BigIntegerField(blank=True, null=True)),
                ("problem", models.TextField(blank=True)),
            ],
            options={
                "indexes": [models.Index(fields=["-checked_at"], name="audit_check_recent_idx")],
            },
        ),
        migrations.AlterModelOptions(
            name="auditentry",
            options={
                "permissions": [
                    ("export_auditentry", "Can export the audit trail"),
                    ("verify_auditentry", "Can verify the audit chain"),
                    (
                        "view_all_auditentry",
                        "Can read every entry, not only those of objects one sees",
                    ),
                ],
                "verbose_name": "audit entry",
                "verbose_name_plural": "audit entries",
            },
        ),
        migrations.AddField(
            model_name="auditentry",
            name="workflow",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=models.Index(fields=["workflow", "created_at"], name="audit_workflow_idx"),
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=models.Index(
                condition=models.Q(("request_id", ""), _negated=True),
                fields=["request_id"],
                name="audit_request_idx",
            ),
        ),
    ]
