SELECT c.name, c.allow_international, c.allow_premium_rate, c.allow_kazakhstan, c.mask_numbers,
       c.sticky, c.sticky_days,
       (SELECT count(*) FROM district d WHERE d.company_id = c.id) AS districts,
       (SELECT count(*) FROM did WHERE did.company_id = c.id) AS dids
  FROM company c
 WHERE %(key)s::text IS NULL OR c.name = %(key)s
 ORDER BY c.name
