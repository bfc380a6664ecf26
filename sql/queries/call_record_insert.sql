-- The loader's statement (migration 006): one call attempt's record, shipped by the proxy.
-- A record shipped twice (after a crash) is kept once: the primary key is (call_key,
-- started_at). A batch of rows is one multi-row INSERT of the same form (harness/records.py).
INSERT INTO call_record (call_key, started_at, answered_at, ended_at, duration_s, direction,
                         outcome, sip_status, sip_reason, company_id, company, district_id,
                         district, did, did_label, manager_id, manager, first_manager_id,
                         first_manager, sim, rang_before, client, trunk, sticky)
VALUES (%(call_key)s, %(started_at)s, %(answered_at)s, %(ended_at)s, %(duration_s)s,
        %(direction)s, %(outcome)s, %(sip_status)s, %(sip_reason)s, %(company_id)s,
        %(company)s, %(district_id)s, %(district)s, %(did)s, %(did_label)s, %(manager_id)s,
        %(manager)s, %(first_manager_id)s, %(first_manager)s, %(sim)s, %(rang_before)s,
        %(client)s, %(trunk)s, %(sticky)s)
ON CONFLICT (call_key, started_at) DO NOTHING
