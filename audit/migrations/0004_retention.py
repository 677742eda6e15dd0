"""Retention: old entries leave the hot table only through one narrow, recorded path.

A retention floor names the prefix of the chain that was archived (first_seq..floor_seq) and
the hash the next entry chains onto. The entries' trigger lets a DELETE through only for a
sealed entry at or below a floor written in the same transaction; floors are append-only and
each one must continue the last, name the real hash at its seq, and leave the newest entry in
place. The application's role may not DELETE entries nor INSERT floors at all: it calls
audit_retention_cut, which runs as the tables' owner and does both in one statement.
"""

from django.db import migrations, models

GUARDS = """
CREATE OR REPLACE FUNCTION audit_entry_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    seal_columns text[] := ARRAY['seq', 'prev_hash', 'hash', 'sealed_at'];
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.seq IS NOT NULL AND EXISTS (
            SELECT 1 FROM audit_retentionfloor f
            WHERE f.txid = txid_current() AND OLD.seq <= f.floor_seq
        ) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit entries are append-only: DELETE of entry % refused (only a '
            'retention cut removes archived entries below its floor)', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.seq IS NULL AND NEW.seq IS NOT NULL
       AND (to_jsonb(NEW) - seal_columns) = (to_jsonb(OLD) - seal_columns) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only: UPDATE of entry % refused', OLD.id
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE FUNCTION audit_floor_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    previous bigint;
    at_floor text;
    newest bigint;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        RAISE EXCEPTION 'retention floors are append-only: % refused', TG_OP
            USING ERRCODE = 'restrict_violation';
    END IF;
    SELECT coalesce(max(floor_seq), 0) INTO previous FROM audit_retentionfloor;
    IF NEW.first_seq <> previous + 1 OR NEW.floor_seq < NEW.first_seq THEN
        RAISE EXCEPTION 'a retention floor must continue the last one: first_seq % expected',
            previous + 1 USING ERRCODE = 'check_violation';
    END IF;
    SELECT hash INTO at_floor FROM audit_auditentry WHERE seq = NEW.floor_seq;
    IF at_floor IS DISTINCT FROM NEW.last_hash THEN
        RAISE EXCEPTION 'a retention floor must name the hash of entry seq %', NEW.floor_seq
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT max(seq) INTO newest FROM audit_auditentry;
    IF newest <= NEW.floor_seq THEN
        RAISE EXCEPTION 'a retention cut leaves the newest sealed entry (seq %) in place', newest
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.txid := txid_current();
    RETURN NEW;
END;
$$;

CREATE TRIGGER audit_floor_append_only
    BEFORE INSERT OR UPDATE OR DELETE ON audit_retentionfloor
    FOR EACH ROW EXECUTE FUNCTION audit_floor_guard();
CREATE TRIGGER audit_floor_no_truncate BEFORE TRUNCATE ON audit_retentionfloor
    FOR EACH STATEMENT EXECUTE FUNCTION handoff_refuse_truncate();

CREATE FUNCTION audit_retention_cut(
    p_created_at timestamptz, p_first_seq bigint, p_floor_seq bigint, p_last_hash text,
    p_rows bigint, p_archive text, p_archive_sha256 text, p_mac text
) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    removed bigint;
BEGIN
    INSERT INTO audit_retentionfloor
        (created_at, first_seq, floor_seq, last_hash, rows, archive, archive_sha256, mac, txid)
    VALUES
        (p_created_at, p_first_seq, p_floor_seq, p_last_hash, p_rows, p_archive,
         p_archive_sha256, p_mac, 0);
    DELETE FROM audit_auditentry WHERE seq <= p_floor_seq;
    GET DIAGNOSTICS removed = ROW_COUNT;
    IF removed <> p_rows THEN
        RAISE EXCEPTION 'the archive holds % entries but % were below the floor', p_rows, removed
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN removed;
END;
$$;
REVOKE ALL ON FUNCTION audit_retention_cut(
    timestamptz, bigint, bigint, text, bigint, text, text, text
) FROM PUBLIC;
"""

NO_GUARDS = """
DROP FUNCTION IF EXISTS audit_retention_cut(
    timestamptz, bigint, bigint, text, bigint, text, text, text
);
DROP TRIGGER IF EXISTS audit_floor_no_truncate ON audit_retentionfloor;
DROP TRIGGER IF EXISTS audit_floor_append_only ON audit_retentionfloor;
DROP FUNCTION IF EXISTS audit_floor_guard();
CREATE OR REPLACE FUNCTION audit_entry_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    seal_columns text[] := ARRAY['seq', 'prev_hash', 'hash', 'sealed_at'];
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'audit entries are append-only: DELETE of entry % refused', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.seq IS NULL AND NEW.seq IS NOT NULL
       AND (to_jsonb(NEW) - seal_columns) = (to_jsonb(OLD) - seal_columns) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only: UPDATE of entry % refused', OLD.id
        USING ERRCODE = 'restrict_violation';
END;
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_trail_guards")]

    operations = [
        migrations.CreateModel(
            name="RetentionFloor",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("created_at", models.DateTimeField()),
                ("first_seq", models.BigIntegerField()),
                ("floor_seq", models.BigIntegerField(unique=True)),
                ("last_hash", models.CharField(max_length=64)),
                ("rows", models.BigIntegerField()),
                ("archive", models.CharField(max_length=255)),
                ("archive_sha256", models.CharField(max_length=64)),
                ("mac", models.CharField(max_length=64)),
                ("txid", models.BigIntegerField(default=0, editable=False)),
            ],
            options={"ordering": ["floor_seq"]},
        ),
        migrations.RunSQL(GUARDS, NO_GUARDS),
    ]
