-- mask_numbers, sticky, sticky_days: not given keeps it; 'company' stores NULL (as the
-- company).
UPDATE district SET
       name = COALESCE(%(rename)s, name),
       caller_id = COALESCE(%(caller_id)s, caller_id),
       active = COALESCE(%(active)s, active),
       mask_numbers = CASE WHEN %(mask_numbers)s::text IS NULL THEN mask_numbers
                           ELSE NULLIF(%(mask_numbers)s::text, 'company')::boolean END,
       sticky = CASE WHEN %(sticky)s::text IS NULL THEN sticky
                     ELSE NULLIF(%(sticky)s::text, 'company')::boolean END,
       sticky_days = CASE WHEN %(sticky_days)s::text IS NULL THEN sticky_days
                          ELSE NULLIF(%(sticky_days)s::text, 'company')::integer END
 WHERE company_id = %(company_id)s AND name = %(key)s
RETURNING name
