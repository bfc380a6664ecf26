SELECT id FROM company WHERE name = %(company)s
