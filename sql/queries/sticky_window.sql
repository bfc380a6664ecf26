-- The longest sticky window of any district where sticky routing is on, in days (0: none):
-- a worker holds the relations answered within it (kemi/directory.py).
SELECT COALESCE(max(COALESCE(di.sticky_days, c.sticky_days)), 0) AS days
  FROM district di
  JOIN company c ON c.id = di.company_id
 WHERE COALESCE(di.sticky, c.sticky) AND di.active
