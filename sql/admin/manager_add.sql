INSERT INTO manager (company_id, district_id, name, position, caller_id, active)
VALUES (%(company_id)s, %(district_id)s, %(name)s, COALESCE(%(position)s, 1), %(caller_id)s,
        COALESCE(%(active)s, true))
RETURNING id, name
