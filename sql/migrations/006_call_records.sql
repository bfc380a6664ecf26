-- Call records (RECORDS-README-DRAFT.md): one row per call attempt, shipped by the proxy
-- with INSERT ... ON CONFLICT (call_key, started_at) DO NOTHING, so a record shipped twice
-- (after a crash) is kept once. No foreign keys: records outlive the routing rows they name,
-- so each keeps the ids and the names as they were when the call was made.
-- Monthly partitions (UTC months) by started_at, and a DEFAULT partition for a month that
-- has none yet; pbxctl records prune drops whole months.

CREATE TABLE call_record (
    call_key         text NOT NULL,            -- Call-ID;From-tag of the initial INVITE
    started_at       timestamptz NOT NULL,     -- the INVITE arrived
    answered_at      timestamptz,              -- 200 OK; NULL when not answered
    ended_at         timestamptz NOT NULL,     -- BYE, CANCEL or the final failure
    duration_s       numeric(10,3) NOT NULL DEFAULT 0,  -- talk time: answered_at to ended_at
    direction        text NOT NULL CONSTRAINT call_record_direction_known
                     CHECK (direction IN ('inbound', 'outbound', 'internal', 'emergency')),
    outcome          text NOT NULL CONSTRAINT call_record_outcome_known
                     CHECK (outcome IN ('answered', 'busy', 'no_answer', 'cancelled',
                                        'nobody_reachable', 'refused', 'carrier_failure')),
    sip_status       smallint NOT NULL CONSTRAINT call_record_sip_status_range
                     CHECK (sip_status BETWEEN 100 AND 699),
    sip_reason       text NOT NULL DEFAULT '',
    company_id       integer,
    company          text,
    district_id      integer,
    district         text,
    did              text,     -- E.164: the DID dialled (inbound), the caller ID shown (outbound)
    did_label        text,
    manager_id       integer,
    manager          text,     -- outbound: the caller; inbound: who answered (NULL: nobody)
    first_manager_id integer,
    first_manager    text,     -- inbound: the manager first in line
    sim              text,     -- the SIM that answered or called, E.164
    rang_before      smallint NOT NULL DEFAULT 0,  -- SIMs rung that did not answer
    client           text,     -- the client's real number, E.164 (NULL: withheld)
    trunk            text,
    CONSTRAINT call_record_pkey PRIMARY KEY (call_key, started_at),
    CONSTRAINT call_record_ended_after_start CHECK (ended_at >= started_at),
    CONSTRAINT call_record_answered_during_call
        CHECK (answered_at IS NULL OR answered_at BETWEEN started_at AND ended_at),
    CONSTRAINT call_record_answered_outcome
        CHECK ((outcome = 'answered') = (answered_at IS NOT NULL)),
    CONSTRAINT call_record_duration_not_negative CHECK (duration_s >= 0),
    CONSTRAINT call_record_duration_zero_unanswered
        CHECK (answered_at IS NOT NULL OR duration_s = 0),
    CONSTRAINT call_record_rang_before_not_negative CHECK (rang_before >= 0),
    CONSTRAINT call_record_client_e164 CHECK (client IS NULL OR is_e164(client)),
    CONSTRAINT call_record_did_e164 CHECK (did IS NULL OR is_e164(did)),
    CONSTRAINT call_record_sim_e164 CHECK (sim IS NULL OR is_e164(sim))
) PARTITION BY RANGE (started_at);

CREATE TABLE call_record_default PARTITION OF call_record DEFAULT;

-- The reports (sql/admin/report_*.sql) read a window of started_at, all of it or one
-- company's or one district's; the call-back list looks for later calls to one client.
CREATE INDEX call_record_started ON call_record (started_at);
CREATE INDEX call_record_company_started ON call_record (company_id, started_at);
CREATE INDEX call_record_district_started ON call_record (district_id, started_at);
CREATE INDEX call_record_company_client ON call_record (company_id, client, started_at)
    WHERE client IS NOT NULL;

-- The partition of the UTC month of `month` (call_record_YYYY_MM), made if absent: safe to
-- call again and from several sessions at once. Rows of that month already in the DEFAULT
-- partition move into it.
CREATE FUNCTION call_record_partition(month date) RETURNS text
    LANGUAGE plpgsql AS $$
DECLARE
    first_day date := date_trunc('month', month)::date;
    part_name text := 'call_record_' || to_char(first_day, 'YYYY_MM');
    low timestamptz := first_day::timestamp AT TIME ZONE 'UTC';
    high timestamptz := (first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC';
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('call_record_partition'));
    IF EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'call_record'::regclass AND c.relname = part_name) THEN
        RETURN part_name;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE call_record INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                   part_name);
    EXECUTE format('WITH moved AS (DELETE FROM call_record_default
                                    WHERE started_at >= $1 AND started_at < $2 RETURNING *)
                    INSERT INTO %I SELECT * FROM moved', part_name) USING low, high;
    EXECUTE format('ALTER TABLE call_record ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   part_name, low, high);
    RETURN part_name;
END $$;

-- Records started before `before`: monthly partitions entirely before it are dropped, rows
-- before it are deleted from the partition it falls in and from DEFAULT. What was removed:
-- one row per partition touched (action 'dropped' or 'deleted', with the records removed).
CREATE FUNCTION call_record_prune(before timestamptz)
    RETURNS TABLE (partition text, action text, records bigint)
    LANGUAGE plpgsql AS $$
DECLARE
    part record;
    low timestamptz;
    high timestamptz;
    removed bigint;
BEGIN
    FOR part IN
        SELECT c.relname::text AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'call_record'::regclass
         ORDER BY c.relname
    LOOP
        IF part.bound = 'DEFAULT' THEN
            low := '-infinity';
            high := 'infinity';
        ELSE
            low := substring(part.bound FROM $re$FROM \('([^']+)'\)$re$)::timestamptz;
            high := substring(part.bound FROM $re$TO \('([^']+)'\)$re$)::timestamptz;
        END IF;
        CONTINUE WHEN low >= before;
        IF high <= before THEN
            EXECUTE format('SELECT count(*) FROM %I', part.name) INTO removed;
            EXECUTE format('DROP TABLE %I', part.name);
            RETURN QUERY SELECT part.name, 'dropped'::text, removed;
        ELSE
            EXECUTE format('DELETE FROM %I WHERE started_at < $1', part.name) USING before;
            GET DIAGNOSTICS removed = ROW_COUNT;
            IF removed > 0 THEN
                RETURN QUERY SELECT part.name, 'deleted'::text, removed;
            END IF;
        END IF;
    END LOOP;
END $$;

SELECT call_record_partition(current_date);
SELECT call_record_partition((current_date + interval '1 month')::date);

COMMENT ON TABLE call_record IS
    'one row per call attempt (RECORDS-README-DRAFT.md); pbxctl report reads it';
