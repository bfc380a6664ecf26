-- Demo data: one Krasnodar Krai real-estate agency, its districts, numbers, managers
-- and SIMs, and one carrier trunk. SIM passwords are 'demo-' || username digits, e.g.
-- +79181110001 -> demo-79181110001; only their HA1 is stored, in the realm set by the
-- loader (SET pbx.realm).

INSERT INTO trunk (name, carrier, sources, egress_host, egress_port, number_format, is_default)
VALUES ('kuban-telecom', 'Kuban Telecom', '{127.0.0.2/32}', '127.0.0.2', 5060, 'e164', true);

INSERT INTO company (name) VALUES ('Kuban Realty');

-- Each district publishes its own number; the DIDs are inserted in the same
-- transaction (the caller-ID foreign key is checked at commit).
INSERT INTO district (company_id, name, caller_id)
SELECT c.id, d.name, d.caller_id
  FROM company c,
       (VALUES ('Krasnodar',    '+78612100101'),
               ('Sochi',        '+78622550101'),
               ('Novorossiysk', '+78617300101'),
               ('Anapa',        '+78613350101')) AS d (name, caller_id)
 WHERE c.name = 'Kuban Realty';

INSERT INTO did (number, company_id, district_id, trunk_id, label)
SELECT v.number, di.company_id, di.id, t.id, v.label
  FROM (VALUES ('+78612100101', 'Krasnodar',    'main ad'),
               ('+78612100102', 'Krasnodar',    'avito campaign'),
               ('+78622550101', 'Sochi',        'main ad'),
               ('+78617300101', 'Novorossiysk', 'main ad'),
               ('+78613350101', 'Anapa',        'main ad')) AS v (number, district, label)
  JOIN district di ON di.name = v.district
  JOIN trunk t ON t.name = 'kuban-telecom';

INSERT INTO manager (company_id, district_id, name, position)
SELECT di.company_id, di.id, v.name, v.position
  FROM (VALUES ('Krasnodar',    'Olga',   1),
               ('Krasnodar',    'Pavel',  2),
               ('Sochi',        'Ivan',   1),
               ('Sochi',        'Boris',  2),
               ('Novorossiysk', 'Nina',   1),
               ('Novorossiysk', 'Sergei', 2),
               ('Anapa',        'Anna',   1),
               ('Anapa',        'Denis',  2)) AS v (district, name, position)
  JOIN district di ON di.name = v.district;

INSERT INTO sim (username, manager_id, ha1)
SELECT v.username, m.id,
       md5(v.username || ':' || current_setting('pbx.realm') || ':demo-' || substr(v.username, 2))
  FROM (VALUES ('+79181110001', 'Olga'),
               ('+79181110002', 'Pavel'),
               ('+79181110003', 'Ivan'),
               ('+79181110004', 'Boris'),
               ('+79181110005', 'Nina'),
               ('+79181110006', 'Sergei'),
               ('+79181110007', 'Anna'),
               ('+79181110008', 'Denis')) AS v (username, manager)
  JOIN manager m ON m.name = v.manager;
