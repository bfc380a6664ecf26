DELETE FROM company WHERE name = %(key)s RETURNING name
