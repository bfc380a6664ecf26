SELECT id FROM district WHERE company_id = %(company_id)s AND name = %(district)s
