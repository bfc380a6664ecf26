DELETE FROM district WHERE company_id = %(company_id)s AND name = %(key)s RETURNING name
