-- Generated data set for performance runs (benchmarks/): one company, one carrier, and
-- pbx.districts districts, each with pbx.dids_per_district DIDs and
-- pbx.managers_per_district managers with one SIM each. Numbers are in real ranges:
-- DIDs +7 861 2XX XX XX (Krasnodar, up to 1,000,000), SIMs +7 918 XXX XX XX.
-- SIM passwords are 'perf-' and the SIM's digits. Set by the loader: pbx.realm and the sizes.
-- Audit and notification triggers are skipped for the bulk load (a fresh database).

SET session_replication_role = replica;

INSERT INTO trunk (name, carrier, sources, egress_host, egress_port, number_format, is_default)
VALUES ('perf-carrier', 'Perf Carrier', '{127.0.0.2/32}', '127.0.0.2', 5060, 'national', true);

INSERT INTO company (name) VALUES ('Perf Realty');

INSERT INTO district (id, company_id, name, caller_id)
OVERRIDING SYSTEM VALUE
SELECT i, c.id, 'District ' || i,
       '+78612' || lpad(((i - 1) * current_setting('pbx.dids_per_district')::int)::text, 6, '0')
  FROM company c, generate_series(1, current_setting('pbx.districts')::int) AS i;

INSERT INTO did (number, company_id, district_id, trunk_id, label)
SELECT '+78612' || lpad(((i - 1) * k + j - 1)::text, 6, '0'), 1, i, t.id, 'perf'
  FROM trunk t,
       (SELECT current_setting('pbx.dids_per_district')::int AS k) AS s,
       generate_series(1, current_setting('pbx.districts')::int) AS i,
       generate_series(1, s.k) AS j;

INSERT INTO manager (id, company_id, district_id, name, position)
OVERRIDING SYSTEM VALUE
SELECT (i - 1) * m + p, 1, i, 'Manager ' || i || '-' || p, p
  FROM (SELECT current_setting('pbx.managers_per_district')::int AS m) AS s,
       generate_series(1, current_setting('pbx.districts')::int) AS i,
       generate_series(1, s.m) AS p;

INSERT INTO sim (username, manager_id, ha1)
SELECT u, n, md5(u || ':' || current_setting('pbx.realm') || ':perf-' || substr(u, 2))
  FROM (SELECT id AS n, '+7918' || lpad(id::text, 7, '0') AS u FROM manager) AS m;

SELECT setval(pg_get_serial_sequence('district', 'id'), (SELECT max(id) FROM district));
SELECT setval(pg_get_serial_sequence('manager', 'id'), (SELECT max(id) FROM manager));

SET session_replication_role = origin;
ANALYZE;
