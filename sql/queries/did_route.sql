-- The route of one DID: its district and the SIMs that ring, in hunting order
-- (manager position, then manager, then SIM), whether the SIMs see the caller masked, and
-- the sticky window in days (0: sticky routing off; migration 007).
-- One indexed lookup per uncached DID.
SELECT d.number,
       di.company_id,
       di.id      AS district_id,
       di.name    AS district_name,
       di.active  AS district_active,
       COALESCE(di.mask_numbers, c.mask_numbers) AS mask_numbers,
       c.name     AS company_name,
       CASE WHEN COALESCE(di.sticky, c.sticky) THEN COALESCE(di.sticky_days, c.sticky_days)
            ELSE 0 END AS sticky_days,
       ARRAY(SELECT s.username
               FROM manager m JOIN sim s ON s.manager_id = m.id
              WHERE m.district_id = di.id AND m.active AND s.active
              ORDER BY m.position, m.id, s.username) AS hunt
  FROM did d
  JOIN district di ON di.id = d.district_id
  JOIN company c ON c.id = di.company_id
 WHERE d.number = %(number)s
