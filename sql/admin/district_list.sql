-- mask_numbers as stored (NULL: as the company), masked as the proxy applies it.
SELECT c.name AS company, d.name, d.caller_id, d.active, d.mask_numbers,
       COALESCE(d.mask_numbers, c.mask_numbers) AS masked,
       (SELECT count(*) FROM manager m WHERE m.district_id = d.id AND m.active) AS managers,
       (SELECT count(*) FROM did WHERE did.district_id = d.id) AS dids
  FROM district d JOIN company c ON c.id = d.company_id
 WHERE (%(company_id)s::int IS NULL OR d.company_id = %(company_id)s)
   AND (%(key)s::text IS NULL OR d.name = %(key)s)
 ORDER BY c.name, d.name
