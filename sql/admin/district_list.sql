-- mask_numbers, sticky and sticky_days as stored (NULL: as the company); masked and
-- sticky_window as the proxy applies them.
SELECT c.name AS company, d.name, d.caller_id, d.active, d.mask_numbers,
       COALESCE(d.mask_numbers, c.mask_numbers) AS masked,
       d.sticky, d.sticky_days,
       CASE WHEN COALESCE(d.sticky, c.sticky)
            THEN COALESCE(d.sticky_days, c.sticky_days) || ' days' ELSE 'off' END AS sticky_window,
       (SELECT count(*) FROM manager m WHERE m.district_id = d.id AND m.active) AS managers,
       (SELECT count(*) FROM did WHERE did.district_id = d.id) AS dids
  FROM district d JOIN company c ON c.id = d.company_id
 WHERE (%(company_id)s::int IS NULL OR d.company_id = %(company_id)s)
   AND (%(key)s::text IS NULL OR d.name = %(key)s)
 ORDER BY c.name, d.name
