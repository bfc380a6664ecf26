-- Test data on top of the demo: a second carrier that writes numbers the Russian
-- national way (8XXXXXXXXXX) and sends from 127.0.0.4.
INSERT INTO trunk (name, carrier, sources, egress_host, egress_port, number_format)
VALUES ('south-link', 'South Link', '{127.0.0.4/32}', '127.0.0.4', 5060, 'national');
