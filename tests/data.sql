-- Test data on top of the demo (sql/demo.sql), in the realm set by the loader.
-- south-link: a second carrier that writes numbers the national way (8XXXXXXXXXX),
-- sends from 127.0.0.4, challenges us, and accepts caller IDs it does not own.
INSERT INTO trunk (name, carrier, sources, egress_host, egress_port, number_format,
                   auth_username, auth_password, accepts_foreign_caller_id)
VALUES ('south-link', 'South Link', '{127.0.0.4/32}', '127.0.0.4', 5060, 'national',
        'kuban-realty', 's3cret', true);
-- west-line: a carrier that accepts only its own numbers as caller ID.
INSERT INTO trunk (name, carrier, sources, egress_host, egress_port, number_format)
VALUES ('west-line', 'West Line', '{127.0.0.5/32}', '127.0.0.5', 5060, 'plus_less');

-- Pavel's caller-ID override: a Krasnodar number rented from south-link.
INSERT INTO did (number, company_id, district_id, trunk_id, label)
SELECT '+78612100103', di.company_id, di.id, t.id, 'south-link number'
  FROM district di, trunk t WHERE di.name = 'Krasnodar' AND t.name = 'south-link';
UPDATE manager SET caller_id = '+78612100103' WHERE name = 'Pavel';

-- An inactive SIM of an active manager, and an active SIM of an inactive manager.
INSERT INTO manager (company_id, district_id, name, position, active)
SELECT di.company_id, di.id, 'Gleb', 3, false FROM district di WHERE di.name = 'Anapa';
INSERT INTO sim (username, manager_id, ha1, active)
SELECT v.username, m.id,
       md5(v.username || ':' || current_setting('pbx.realm') || ':demo-' || substr(v.username, 2)),
       v.active
  FROM (VALUES ('+79181110009', 'Denis', false), ('+79181110010', 'Gleb', true))
       AS v (username, manager, active)
  JOIN manager m ON m.name = v.manager;

-- A SIM only the abuse tests attack (tests/test_abuse_e2e.py): guessing its password locks
-- it, which no other test must feel.
INSERT INTO sim (username, manager_id, ha1)
SELECT '+79181110011', m.id,
       md5('+79181110011:' || current_setting('pbx.realm') || ':demo-79181110011')
  FROM manager m WHERE m.name = 'Denis';

-- Sticky manager (migration 007) is on by default; the suite's call flows reuse a few client
-- numbers and assert the districts' fixed order, so it is off here and
-- tests/test_sticky_e2e.py switches it on for its own clients.
UPDATE company SET sticky = false;
