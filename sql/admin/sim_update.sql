UPDATE sim SET
       manager_id = COALESCE(%(manager_id)s, manager_id),
       ha1 = COALESCE(%(ha1)s, ha1),
       active = COALESCE(%(active)s, active)
 WHERE username = %(key)s
RETURNING username
