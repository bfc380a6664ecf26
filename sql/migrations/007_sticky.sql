-- Sticky manager (README, Sticky manager): a client who calls back rings first the manager
-- of their last answered call with the company, either direction, within the window.
-- The relation is kept from the call records themselves (a trigger on call_record), so
-- whatever ships a record keeps it; its changes reach the proxies' workers through the
-- routing change notifications (004), keyed by the client's number.

-- A company's setting (on by default: the customer asked for it), a district's override
-- (NULL: as the company). The window is whole days; the proxy loads the relations of the
-- longest window in use, so a year bounds what every worker holds.
ALTER TABLE company
    ADD COLUMN sticky boolean NOT NULL DEFAULT true,
    ADD COLUMN sticky_days integer NOT NULL DEFAULT 30
        CONSTRAINT company_sticky_days_range CHECK (sticky_days BETWEEN 1 AND 365);
ALTER TABLE district
    ADD COLUMN sticky boolean,
    ADD COLUMN sticky_days integer
        CONSTRAINT district_sticky_days_range CHECK (sticky_days BETWEEN 1 AND 365);

COMMENT ON COLUMN company.sticky IS
    'a client calling back rings the manager of their last answered call first';
COMMENT ON COLUMN district.sticky IS 'NULL: as the company; true/false: this district';
COMMENT ON COLUMN district.sticky_days IS 'NULL: as the company';

-- An inbound call whose first SIM rang because of the client's relation to its manager
-- (pbxctl report managers counts those that manager answered).
ALTER TABLE call_record ADD COLUMN sticky boolean NOT NULL DEFAULT false;
ALTER TABLE call_record ADD CONSTRAINT call_record_sticky_inbound
    CHECK (NOT sticky OR direction = 'inbound');

-- One relation per company and client: the manager of the client's last answered call.
-- No foreign keys, as for records: a relation whose manager is gone or inactive is ignored
-- by the proxy, not refused here (a record shipped late must never fail for it).
CREATE TABLE sticky_relation (
    company_id  integer NOT NULL,
    client      text NOT NULL CONSTRAINT sticky_relation_client_e164 CHECK (is_e164(client)),
    manager_id  integer NOT NULL,
    answered_at timestamptz NOT NULL,
    -- client first: a notification names clients, and a worker reloads those
    CONSTRAINT sticky_relation_pkey PRIMARY KEY (client, company_id)
);
-- Workers load the relations answered within the longest window.
CREATE INDEX sticky_relation_answered ON sticky_relation (answered_at);

-- From each batch of records: the answered inbound and outbound calls with a manager of
-- the record's company and a client number; per client the latest of the batch, and never
-- over a later one already kept (records arrive late after an outage, or out of order).
CREATE FUNCTION sticky_from_records() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sticky_relation AS s (company_id, client, manager_id, answered_at)
    SELECT DISTINCT ON (r.company_id, r.client) r.company_id, r.client, r.manager_id,
           r.answered_at
      FROM new_rows r
      JOIN manager m ON m.id = r.manager_id AND m.company_id = r.company_id
     WHERE r.answered_at IS NOT NULL AND r.client IS NOT NULL
       AND r.direction IN ('inbound', 'outbound')
     ORDER BY r.company_id, r.client, r.answered_at DESC
    ON CONFLICT (company_id, client) DO UPDATE
       SET manager_id = EXCLUDED.manager_id, answered_at = EXCLUDED.answered_at
     WHERE s.answered_at < EXCLUDED.answered_at;
    RETURN NULL;
END $$;

-- A statement trigger on the partitioned table sees the rows of every partition.
CREATE TRIGGER call_record_sticky AFTER INSERT ON call_record
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sticky_from_records();

-- 'sticky_relation client=+79891234567,...': each worker reloads those clients only.
CREATE TRIGGER sticky_relation_notify_insert AFTER INSERT ON sticky_relation
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_routing_change('client=client');
CREATE TRIGGER sticky_relation_notify_update AFTER UPDATE ON sticky_relation
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_routing_change('client=client');
CREATE TRIGGER sticky_relation_notify_delete AFTER DELETE ON sticky_relation
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_routing_change('client=client');
CREATE TRIGGER sticky_relation_notify_truncate AFTER TRUNCATE ON sticky_relation
    FOR EACH STATEMENT EXECUTE FUNCTION notify_routing_change();

-- Relations from the records already there (an upgraded database keeps its history).
INSERT INTO sticky_relation (company_id, client, manager_id, answered_at)
SELECT DISTINCT ON (r.company_id, r.client) r.company_id, r.client, r.manager_id, r.answered_at
  FROM call_record r
  JOIN manager m ON m.id = r.manager_id AND m.company_id = r.company_id
 WHERE r.answered_at IS NOT NULL AND r.client IS NOT NULL
   AND r.direction IN ('inbound', 'outbound')
 ORDER BY r.company_id, r.client, r.answered_at DESC;

COMMENT ON TABLE sticky_relation IS
    'per company and client, the manager of the last answered call (kept by call_record_sticky)';
