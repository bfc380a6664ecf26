-- Companies whose managers see masked numbers in at least one district: the proxy refuses to
-- start without keys while there is one (kemi/handler.py).
SELECT DISTINCT c.name
  FROM company c JOIN district d ON d.company_id = c.id
 WHERE COALESCE(d.mask_numbers, c.mask_numbers)
 ORDER BY c.name
