-- Change notifications name the keys that changed, so that each proxy worker rebuilds only
-- the plans those rows touch (kemi/directory.py), not every SIM. One notification per
-- statement, from its transition tables: '<table> <kind>=<key>,<key> <kind>=...', e.g.
-- 'manager manager=3 district=2,5' (a manager moved: both districts' hunting changed).
-- '<table> *' when the keys would not fit a notification (a bulk import) or on TRUNCATE.

CREATE FUNCTION notify_routing_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    spec text;
    kind text;
    col text;
    keys text;
    parts text[] := '{}';
    payload text;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('routing_changed', TG_TABLE_NAME || ' *');
        RETURN NULL;
    END IF;
    -- TG_ARGV: 'kind=column' pairs, e.g. 'sim=username'.
    FOREACH spec IN ARRAY TG_ARGV LOOP
        kind := split_part(spec, '=', 1);
        col := split_part(spec, '=', 2);
        IF TG_OP = 'INSERT' THEN
            EXECUTE format('SELECT string_agg(DISTINCT %I::text, '','') FROM new_rows '
                           'WHERE %I IS NOT NULL', col, col) INTO keys;
        ELSIF TG_OP = 'DELETE' THEN
            EXECUTE format('SELECT string_agg(DISTINCT %I::text, '','') FROM old_rows '
                           'WHERE %I IS NOT NULL', col, col) INTO keys;
        ELSE
            EXECUTE format('SELECT string_agg(DISTINCT k::text, '','') FROM ('
                           'SELECT %I AS k FROM new_rows UNION SELECT %I FROM old_rows) u '
                           'WHERE k IS NOT NULL', col, col) INTO keys;
        END IF;
        IF keys IS NOT NULL THEN
            parts := parts || (kind || '=' || keys);
        END IF;
    END LOOP;
    IF cardinality(parts) = 0 THEN
        RETURN NULL;  -- the statement touched no row
    END IF;
    payload := TG_TABLE_NAME || ' ' || array_to_string(parts, ' ');
    IF octet_length(payload) > 7900 THEN  -- NOTIFY payloads end at 8000 bytes
        payload := TG_TABLE_NAME || ' *';
    END IF;
    PERFORM pg_notify('routing_changed', payload);
    RETURN NULL;
END $$;

DO $$
DECLARE
    t text;
    spec text[];
    specs jsonb := '{"company": ["company=id"],
                     "trunk": ["trunk=id"],
                     "district": ["district=id"],
                     "did": ["did=number", "district=district_id"],
                     "manager": ["manager=id", "district=district_id"],
                     "sim": ["sim=username"]}';
BEGIN
    FOR t IN SELECT jsonb_object_keys(specs) LOOP
        spec := ARRAY(SELECT jsonb_array_elements_text(specs -> t));
        EXECUTE format('DROP TRIGGER %I ON %I', t || '_notify', t);
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION notify_routing_change(%s)',
                       t || '_notify_insert', t, array_to_string(ARRAY(
                           SELECT quote_literal(s) FROM unnest(spec) s), ', '));
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING NEW TABLE AS new_rows '
                       'OLD TABLE AS old_rows FOR EACH STATEMENT '
                       'EXECUTE FUNCTION notify_routing_change(%s)',
                       t || '_notify_update', t, array_to_string(ARRAY(
                           SELECT quote_literal(s) FROM unnest(spec) s), ', '));
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS old_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION notify_routing_change(%s)',
                       t || '_notify_delete', t, array_to_string(ARRAY(
                           SELECT quote_literal(s) FROM unnest(spec) s), ', '));
        EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION notify_routing_change()',
                       t || '_notify_truncate', t);
    END LOOP;
END $$;

DROP FUNCTION notify_routing_changed();

-- Incremental reloads find a company's and a caller ID's SIMs through these.
CREATE INDEX manager_company_idx ON manager (company_id);
CREATE INDEX manager_caller_id_idx ON manager (caller_id) WHERE caller_id IS NOT NULL;
CREATE INDEX district_caller_id_idx ON district (caller_id);
