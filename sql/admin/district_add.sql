INSERT INTO district (company_id, name, caller_id, active)
VALUES (%(company_id)s, %(name)s, %(caller_id)s, COALESCE(%(active)s, true))
RETURNING id, name
