-- The SIMs a notified change touched (sql/migrations/004): named, of the managers, the
-- districts or the companies named, or showing a caller ID whose DID changed. Columns as
-- sims.sql; each branch uses an index.
WITH touched AS (
    SELECT unnest(%(sims)s::text[]) AS username
    UNION SELECT s.username FROM sim s WHERE s.manager_id = ANY(%(managers)s::int[])
    UNION SELECT s.username FROM sim s JOIN manager m ON m.id = s.manager_id
           WHERE m.district_id = ANY(%(districts)s::int[])
    UNION SELECT s.username FROM sim s JOIN manager m ON m.id = s.manager_id
           WHERE m.company_id = ANY(%(companies)s::int[])
    UNION SELECT s.username FROM sim s JOIN manager m ON m.id = s.manager_id
           WHERE m.caller_id = ANY(%(numbers)s::text[])
    UNION SELECT s.username FROM sim s JOIN manager m ON m.id = s.manager_id
           JOIN district di ON di.id = m.district_id
           WHERE m.caller_id IS NULL AND di.caller_id = ANY(%(numbers)s::text[])
)
SELECT s.username,
       s.ha1,
       s.active   AS sim_active,
       m.active   AS manager_active,
       m.id       AS manager_id,
       di.id      AS district_id,
       m.company_id,
       di.name    AS district_name,
       cid.number AS caller_id,
       cid.trunk_id AS caller_id_trunk_id,
       c.allow_international,
       c.allow_premium_rate,
       c.allow_kazakhstan,
       COALESCE(di.mask_numbers, c.mask_numbers) AS mask_numbers,
       c.name     AS company_name
  FROM sim s
  JOIN manager m ON m.id = s.manager_id
  JOIN district di ON di.id = m.district_id
  JOIN company c ON c.id = m.company_id
  JOIN did cid ON cid.number = COALESCE(m.caller_id, di.caller_id)
 WHERE s.username IN (SELECT username FROM touched)
