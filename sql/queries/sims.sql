-- Every corporate SIM with what authentication and outbound routing need about it: its
-- caller ID (the manager's override, else the district's number), the trunk that owns
-- that number, and its company's destination policy. Columns in kemi.model.Sim's order.
-- Loaded whole once per worker; after that, sims_changed.sql reloads the SIMs a change
-- touched.
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
