DELETE FROM trunk WHERE name = %(key)s RETURNING name
