INSERT INTO sim (username, manager_id, ha1, active)
VALUES (%(username)s, %(manager_id)s, %(ha1)s, COALESCE(%(active)s, true))
RETURNING username
