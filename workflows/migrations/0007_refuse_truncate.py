"""The engine's append-only records refuse TRUNCATE as well as UPDATE and DELETE.

The trigger function is the audit app's (audit 0003): one refusal, worded the same everywhere.
"""

from django.db import migrations

TABLES = [
    ("decision", "workflows_decision"),
    ("attempt", "workflows_attempt"),
    ("outcome", "workflows_outcome"),
    ("event", "workflows_event"),
    ("workflowversion", "workflows_workflowversion"),
]

FORWARD = "\n".join(
    f"CREATE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON {table} "
    "FOR EACH STATEMENT EXECUTE FUNCTION handoff_refuse_truncate();"
    for name, table in TABLES
)
REVERSE = "\n".join(
    f"DROP TRIGGER IF EXISTS {name}_no_truncate ON {table};" for name, table in TABLES
)


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0006_ownership_history"),
        ("audit", "0003_trail_guards"),
    ]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
