"""The application's own database role: what it may do to each table (README, "Production").

Migrations run as the owner of the tables; the application runs as a role that owns nothing,
so it cannot disable or drop a trigger, and is granted per table only what the code needs. The
append-only records get SELECT and INSERT; audit entries also the one-time seal of the seal
columns; events may move on but never be deleted; TRUNCATE is granted on nothing. Archived
audit entries leave only through the retention cut, a function that runs as the owner. Every other
table gets the four ordinary privileges.
"""

from __future__ import annotations

from django.apps import apps
from django.db.backends.base.base import BaseDatabaseWrapper

from audit.models import AuditEntry, ChainCheck, RetentionFloor
from audit.retention import CUT_FUNCTION
from workflows.models import Attempt, Decision, Event, Outcome, WorkflowVersion

ORDINARY = "SELECT, INSERT, UPDATE, DELETE"
APPEND_ONLY = "SELECT, INSERT"
SEAL_COLUMNS = ("seq", "prev_hash", "hash", "sealed_at")

RESTRICTED = {
    AuditEntry: f"SELECT, INSERT, UPDATE ({', '.join(SEAL_COLUMNS)})",
    ChainCheck: APPEND_ONLY,
    # Written only by the retention cut, which runs as the owner.
    RetentionFloor: "SELECT",
    Decision: APPEND_ONLY,
    Attempt: APPEND_ONLY,
    Outcome: APPEND_ONLY,
    WorkflowVersion: APPEND_ONLY,
    Event: "SELECT, INSERT, UPDATE",
}


def app_role_grants(role: str, *, connection: BaseDatabaseWrapper) -> list[str]:
    """The statements, run by the tables' owner after every migrate, that set the role's rights.

    They start by revoking everything, so running them again narrows a role that had more.
    """
    quote = connection.ops.quote_name
    who = quote(role)
    restricted = {model._meta.db_table: grant for model, grant in RESTRICTED.items()}
    tables = sorted({model._meta.db_table for model in apps.get_models(include_auto_created=True)})
    statements = [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {who}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {who}",
        f"GRANT USAGE ON SCHEMA public TO {who}",
        f"GRANT SELECT ON django_migrations TO {who}",
    ]
    statements += [
        f"GRANT {restricted.get(table, ORDINARY)} ON {quote(table)} TO {who}" for table in tables
    ]
    statements.append(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {who}")
    # The one way to remove audit entries: below a retention floor, after their archive.
    statements.append(f"GRANT EXECUTE ON FUNCTION {CUT_FUNCTION} TO {who}")
    return statements
