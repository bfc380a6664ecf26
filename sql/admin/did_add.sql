INSERT INTO did (number, company_id, district_id, trunk_id, label)
VALUES (%(number)s, %(company_id)s, %(district_id)s, %(trunk_id)s, %(label)s)
RETURNING number
