-- mask_numbers, sticky, sticky_days: a value, or 'company' (and not given): NULL, as the
-- company.
INSERT INTO district (company_id, name, caller_id, active, mask_numbers, sticky, sticky_days)
VALUES (%(company_id)s, %(name)s, %(caller_id)s, COALESCE(%(active)s, true),
        NULLIF(%(mask_numbers)s::text, 'company')::boolean,
        NULLIF(%(sticky)s::text, 'company')::boolean,
        NULLIF(%(sticky_days)s::text, 'company')::integer)
RETURNING id, name
