SELECT m.id, c.name AS company, d.name AS district, m.name, m.position,
       m.caller_id, COALESCE(m.caller_id, d.caller_id) AS shows, m.active,
       (SELECT string_agg(s.username, ',' ORDER BY s.username) FROM sim s WHERE s.manager_id = m.id) AS sims
  FROM manager m JOIN company c ON c.id = m.company_id
  JOIN district d ON d.id = m.district_id
 WHERE (%(company_id)s::int IS NULL OR m.company_id = %(company_id)s)
   AND (%(key)s::int IS NULL OR m.id = %(key)s)
 ORDER BY c.name, d.name, m.position, m.id
