SELECT did.number, c.name AS company, d.name AS district, t.name AS trunk, did.label
  FROM did JOIN company c ON c.id = did.company_id
  JOIN district d ON d.id = did.district_id
  JOIN trunk t ON t.id = did.trunk_id
 WHERE (%(company_id)s::int IS NULL OR did.company_id = %(company_id)s)
   AND (%(key)s::text IS NULL OR did.number = %(key)s)
 ORDER BY did.number
