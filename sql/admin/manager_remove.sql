DELETE FROM manager WHERE id = %(key)s RETURNING id, name
