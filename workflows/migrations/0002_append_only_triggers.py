"""The engine's records are append-only, enforced by the database.

Versions, decisions, attempts and outcomes refuse UPDATE and DELETE. An event's state moves on,
but what was received (payload, its hash, source, headers, key, time, workflow, version) cannot
change, and events are never deleted.
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION handoff_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE FUNCTION handoff_event_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'events are never deleted: DELETE of event % refused', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.payload IS DISTINCT FROM OLD.payload
       OR NEW.payload_hash IS DISTINCT FROM OLD.payload_hash
       OR NEW.source IS DISTINCT FROM OLD.source
       OR NEW.headers IS DISTINCT FROM OLD.headers
       OR NEW.idempotency_key IS DISTINCT FROM OLD.idempotency_key
       OR NEW.received_at IS DISTINCT FROM OLD.received_at
       OR NEW.workflow_id IS DISTINCT FROM OLD.workflow_id
       OR NEW.version_id IS DISTINCT FROM OLD.version_id
       OR NEW.replay_of_id IS DISTINCT FROM OLD.replay_of_id THEN
        RAISE EXCEPTION 'the source record of event % cannot change', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER workflowversion_append_only BEFORE UPDATE OR DELETE ON workflows_workflowversion
    FOR EACH ROW EXECUTE FUNCTION handoff_refuse_change();
CREATE TRIGGER decision_append_only BEFORE UPDATE OR DELETE ON workflows_decision
    FOR EACH ROW EXECUTE FUNCTION handoff_refuse_change();
CREATE TRIGGER attempt_append_only BEFORE UPDATE OR DELETE ON workflows_attempt
    FOR EACH ROW EXECUTE FUNCTION handoff_refuse_change();
CREATE TRIGGER outcome_append_only BEFORE UPDATE OR DELETE ON workflows_outcome
    FOR EACH ROW EXECUTE FUNCTION handoff_refuse_change();
CREATE TRIGGER event_source_immutable BEFORE UPDATE OR DELETE ON workflows_event
    FOR EACH ROW EXECUTE FUNCTION handoff_event_guard();
"""

REVERSE = """
DROP TRIGGER IF EXISTS event_source_immutable ON workflows_event;
DROP TRIGGER IF EXISTS outcome_append_only ON workflows_outcome;
DROP TRIGGER IF EXISTS attempt_append_only ON workflows_attempt;
DROP TRIGGER IF EXISTS decision_append_only ON workflows_decision;
DROP TRIGGER IF EXISTS workflowversion_append_only ON workflows_workflowversion;
DROP FUNCTION IF EXISTS handoff_event_guard();
DROP FUNCTION IF EXISTS handoff_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("workflows", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
