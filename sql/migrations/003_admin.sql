-- Administration: every change to the routing tables is audited and notified to the
-- running proxies, whether it comes from pbxctl or from plain SQL.

-- Two active districts cannot publish the same number.
CREATE UNIQUE INDEX district_caller_id_unique_active ON district (caller_id) WHERE active;

CREATE TABLE audit (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    db_user     text NOT NULL DEFAULT current_user,
    application text NOT NULL DEFAULT current_setting('application_name'),
    table_name  text NOT NULL,
    operation   text NOT NULL,
    old_row     jsonb,
    new_row     jsonb
);
CREATE INDEX audit_at_idx ON audit (at);

-- Credentials are never copied into the audit: a changed secret shows as "changed".
CREATE FUNCTION audit_redact(row_data jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN row_data IS NULL THEN NULL ELSE
        row_data
        || CASE WHEN row_data ? 'ha1' THEN '{"ha1": "(secret)"}'::jsonb ELSE '{}' END
        || CASE WHEN row_data ->> 'auth_password' IS NOT NULL
                THEN '{"auth_password": "(secret)"}'::jsonb ELSE '{}' END
    END $$;

CREATE FUNCTION audit_row() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit (table_name, operation, old_row, new_row)
    VALUES (TG_TABLE_NAME, TG_OP,
            CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN audit_redact(to_jsonb(OLD)) END,
            CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN audit_redact(to_jsonb(NEW)) END);
    RETURN NULL;
END $$;

-- One notification per statement; PostgreSQL delivers it at commit, and folds
-- duplicates within a transaction.
CREATE FUNCTION notify_routing_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('routing_changed', TG_TABLE_NAME);
    RETURN NULL;
END $$;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['company', 'trunk', 'district', 'did', 'manager', 'sim'] LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %I
                        FOR EACH ROW EXECUTE FUNCTION audit_row()', t || '_audit', t);
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION notify_routing_changed()',
                       t || '_notify', t);
    END LOOP;
END $$;
