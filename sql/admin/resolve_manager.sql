-- A manager by id, or by name when the name is unique in the company.
SELECT id FROM manager
 WHERE company_id = %(company_id)s AND (id::text = %(manager)s OR name = %(manager)s)
 ORDER BY (id::text = %(manager)s) DESC
