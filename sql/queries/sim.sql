-- One corporate SIM with what routing and digest authentication need about it.
SELECT s.username,
       s.ha1,
       s.active   AS sim_active,
       m.active   AS manager_active,
       m.id       AS manager_id,
       m.company_id,
       di.name    AS district_name
  FROM sim s
  JOIN manager m ON m.id = s.manager_id
  JOIN district di ON di.id = m.district_id
 WHERE s.username = %(username)s
