UPDATE district SET
       name = COALESCE(%(rename)s, name),
       caller_id = COALESCE(%(caller_id)s, caller_id),
       active = COALESCE(%(active)s, active)
 WHERE company_id = %(company_id)s AND name = %(key)s
RETURNING name
