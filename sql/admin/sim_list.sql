SELECT s.username, c.name AS company, m.name AS manager, m.id AS manager_id,
       d.name AS district, s.active
  FROM sim s JOIN manager m ON m.id = s.manager_id
  JOIN company c ON c.id = m.company_id
  JOIN district d ON d.id = m.district_id
 WHERE (%(company_id)s::int IS NULL OR m.company_id = %(company_id)s)
   AND (%(key)s::text IS NULL OR s.username = %(key)s)
 ORDER BY s.username
