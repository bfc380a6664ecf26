-- Generated call records for benchmarks/test_records_bench.py: pbx.records records spread
-- evenly over the 365 days before now, in arrival order (as the loader ships them), each
-- month in its partition; 10 companies of 10 districts (3 DIDs, 4 managers each), clients
-- drawn from 200,000 numbers. Company 1 masks clients. Set by the loader: pbx.records.
-- Mix: 55 % inbound (70 % answered, 3 % refused), 40 % outbound, the rest internal and a
-- few emergency calls; 2-30 s to answer, 10-600 s talked. random() is seeded: every run
-- generates the same records. The indexes and the primary key are dropped for the load and
-- made again from their own definitions after it (several times faster than maintaining
-- them row by row).

SET session_replication_role = replica;  -- a fresh database: no audit, no notifications

INSERT INTO trunk (name, carrier, sources, egress_host, is_default)
VALUES ('perf-carrier', 'Perf Carrier', '{127.0.0.2/32}', '127.0.0.2', true);

INSERT INTO company (id, name, mask_numbers) OVERRIDING SYSTEM VALUE
SELECT c, 'Company ' || c, c = 1 FROM generate_series(1, 10) AS c;

INSERT INTO district (id, company_id, name, caller_id) OVERRIDING SYSTEM VALUE
SELECT d, (d - 1) / 10 + 1, 'District ' || d, '+78612' || lpad(((d - 1) * 3)::text, 6, '0')
  FROM generate_series(1, 100) AS d;

INSERT INTO did (number, company_id, district_id, trunk_id, label)
SELECT '+78612' || lpad(((d - 1) * 3 + j)::text, 6, '0'), (d - 1) / 10 + 1, d, t.id,
       (ARRAY['site', 'avito', 'cian'])[j + 1]
  FROM trunk t, generate_series(1, 100) AS d, generate_series(0, 2) AS j;

INSERT INTO manager (id, company_id, district_id, name, position) OVERRIDING SYSTEM VALUE
SELECT (d - 1) * 4 + p, (d - 1) / 10 + 1, d, 'Manager ' || d || '-' || p, p
  FROM generate_series(1, 100) AS d, generate_series(1, 4) AS p;

SELECT setval(pg_get_serial_sequence('company', 'id'), 10),
       setval(pg_get_serial_sequence('district', 'id'), 100),
       setval(pg_get_serial_sequence('manager', 'id'), 400);

SET session_replication_role = origin;

SELECT call_record_partition((date_trunc('month', now()) - m * interval '1 month')::date)
  FROM generate_series(-1, 12) AS m;

CREATE TEMP TABLE call_record_keys ON COMMIT DROP AS
SELECT 'ALTER TABLE call_record ADD CONSTRAINT ' || conname || ' ' || pg_get_constraintdef(oid)
           AS make, 'ALTER TABLE call_record DROP CONSTRAINT ' || conname AS drop, 1 AS step
  FROM pg_constraint WHERE conrelid = 'call_record'::regclass AND contype = 'p'
UNION ALL
SELECT replace(pg_get_indexdef(indexrelid), ' ON ONLY ', ' ON '), 'DROP INDEX ' || indexrelid::regclass, 2
  FROM pg_index WHERE indrelid = 'call_record'::regclass AND NOT indisprimary;

DO $$
DECLARE k record;
BEGIN
    FOR k IN SELECT * FROM call_record_keys ORDER BY step DESC LOOP EXECUTE k.drop; END LOOP;
END $$;

SELECT setseed(0.42);

INSERT INTO call_record (call_key, started_at, answered_at, ended_at, duration_s, direction,
                         outcome, sip_status, company_id, company, district_id, district, did,
                         did_label, manager_id, manager, first_manager_id, first_manager, sim,
                         rang_before, client, trunk)
SELECT md5(b.g::text) || '@10.0.' || b.g % 250 || '.1;' || left(md5('tag' || b.g), 8),
       b.started, a.answered, COALESCE(a.answered + b.talk * interval '1 s',
                                       b.started + b.wait * interval '1 s'),
       CASE WHEN a.answered IS NULL THEN 0 ELSE b.talk END,
       k.direction, o.outcome,
       CASE o.outcome WHEN 'answered' THEN 200 WHEN 'busy' THEN 486 WHEN 'cancelled' THEN 487
                      WHEN 'refused' THEN 403 WHEN 'carrier_failure' THEN 503 ELSE 480 END,
       (b.d - 1) / 10 + 1, 'Company ' || ((b.d - 1) / 10 + 1), b.d, 'District ' || b.d,
       CASE WHEN k.direction <> 'internal'
            THEN '+78612' || lpad(((b.d - 1) * 3 + CASE WHEN k.direction = 'inbound' THEN b.j
                                                        ELSE 0 END)::text, 6, '0') END,
       CASE WHEN k.direction = 'inbound' THEN (ARRAY['site', 'avito', 'cian'])[b.j + 1] END,
       m.manager_id, 'Manager ' || b.d || '-' || (m.manager_id - (b.d - 1) * 4),
       m.first_id, CASE WHEN m.first_id IS NOT NULL THEN 'Manager ' || b.d || '-1' END,
       '+7918' || lpad(m.manager_id::text, 7, '0'),
       CASE WHEN k.direction = 'inbound' AND m.manager_id IS NOT NULL THEN b.p ELSE 0 END,
       CASE WHEN k.direction IN ('inbound', 'outbound')
            THEN '+7989' || lpad(b.client::text, 7, '0') END,
       CASE WHEN k.direction <> 'internal' THEN 'perf-carrier' END
  FROM (SELECT g, now() - interval '365 days' + (g - 1) * (interval '365 days' / n) AS started,
               1 + floor(random() * 100)::int AS d, random() AS r1, random() AS r2,
               2 + floor(random() * 29)::int AS wait, 10 + floor(random() * 591)::int AS talk,
               floor(random() * 200000)::int AS client, floor(random() * 3)::int AS j,
               floor(random() * 4)::int AS p
          FROM (SELECT current_setting('pbx.records')::bigint AS n) AS s,
               generate_series(1, s.n) AS g) AS b
 CROSS JOIN LATERAL (SELECT CASE WHEN b.r1 < 0.55 THEN 'inbound' WHEN b.r1 < 0.95 THEN 'outbound'
                                 WHEN b.r1 < 0.9995 THEN 'internal' ELSE 'emergency' END
                            AS direction) AS k
 CROSS JOIN LATERAL (SELECT CASE k.direction
        WHEN 'inbound' THEN CASE WHEN b.r2 < 0.70 THEN 'answered' WHEN b.r2 < 0.80 THEN 'no_answer'
                                 WHEN b.r2 < 0.85 THEN 'busy' WHEN b.r2 < 0.93 THEN 'cancelled'
                                 WHEN b.r2 < 0.97 THEN 'nobody_reachable' ELSE 'refused' END
        WHEN 'outbound' THEN CASE WHEN b.r2 < 0.60 THEN 'answered' WHEN b.r2 < 0.70 THEN 'busy'
                                  WHEN b.r2 < 0.85 THEN 'no_answer' WHEN b.r2 < 0.95 THEN 'cancelled'
                                  ELSE 'carrier_failure' END
        WHEN 'internal' THEN CASE WHEN b.r2 < 0.80 THEN 'answered' ELSE 'no_answer' END
        ELSE 'answered' END AS outcome) AS o
 CROSS JOIN LATERAL (SELECT CASE WHEN o.outcome = 'answered'
                                 THEN b.started + b.wait * interval '1 s' END AS answered) AS a
 CROSS JOIN LATERAL (SELECT
        CASE WHEN k.direction <> 'inbound' THEN (b.d - 1) * 4 + 1 + b.p
             WHEN o.outcome = 'answered' THEN (b.d - 1) * 4 + 1 + b.p END AS manager_id,
        CASE WHEN k.direction = 'inbound' AND o.outcome <> 'refused' THEN (b.d - 1) * 4 + 1 END
            AS first_id) AS m;

SET maintenance_work_mem = '512MB';
DO $$
DECLARE k record;
BEGIN
    FOR k IN SELECT * FROM call_record_keys ORDER BY step LOOP EXECUTE k.make; END LOOP;
END $$;

ANALYZE;
