-- mask_numbers: true, false, or 'company' (and not given): NULL, as the company.
INSERT INTO district (company_id, name, caller_id, active, mask_numbers)
VALUES (%(company_id)s, %(name)s, %(caller_id)s, COALESCE(%(active)s, true),
        NULLIF(%(mask_numbers)s::text, 'company')::boolean)
RETURNING id, name
