DELETE FROM did WHERE number = %(key)s RETURNING number
