DELETE FROM sim WHERE username = %(key)s RETURNING username
