-- pbxctl report managers: per manager, in the window: inbound calls they answered; of
-- those, the calls that reached them through stickiness (they rang first because the
-- client's last answered call was theirs: migration 007); inbound calls missed (neither
-- answered nor refused) while they were first in line; outbound calls they made; talk
-- minutes of every call they were on (the manager of the record, any direction). Current
-- names; a removed manager's as recorded.
WITH w AS (
    SELECT company_id, company, direction, outcome, duration_s, sticky,
           manager_id, manager, first_manager_id, first_manager
      FROM call_record
     WHERE started_at >= %(since)s::date::timestamptz
       AND started_at < (%(until)s::date + 1)::timestamptz
       AND (%(company_id)s::int IS NULL OR company_id = %(company_id)s)
       AND (%(district_id)s::int IS NULL OR district_id = %(district_id)s)
       AND (manager_id IS NOT NULL OR first_manager_id IS NOT NULL)
), roles AS (
    SELECT manager_id AS id, min(manager) AS name, company_id, min(company) AS company,
           count(*) FILTER (WHERE direction = 'inbound' AND outcome = 'answered') AS answered,
           count(*) FILTER (WHERE direction = 'inbound' AND outcome = 'answered' AND sticky
                              AND manager_id = first_manager_id) AS sticky,
           0 AS missed_first,
           count(*) FILTER (WHERE direction = 'outbound') AS outbound,
           sum(duration_s) AS talk_s
      FROM w WHERE manager_id IS NOT NULL
     GROUP BY manager_id, company_id
    UNION ALL
    SELECT first_manager_id, min(first_manager), company_id, min(company), 0, 0, count(*), 0, 0
      FROM w
     WHERE first_manager_id IS NOT NULL AND direction = 'inbound'
       AND outcome NOT IN ('answered', 'refused')
     GROUP BY first_manager_id, company_id
)
SELECT COALESCE(c.name, min(r.company)) AS company, r.id AS manager_id,
       COALESCE(m.name, min(r.name)) AS manager,
       sum(r.answered)::int AS answered, sum(r.sticky)::int AS sticky,
       sum(r.missed_first)::int AS missed_first,
       sum(r.outbound)::int AS outbound, round(sum(r.talk_s) / 60, 1) AS talk_min
  FROM roles r
  LEFT JOIN company c ON c.id = r.company_id
  LEFT JOIN manager m ON m.id = r.id
 GROUP BY r.id, r.company_id, c.name, m.name
 ORDER BY 1, 3, 2
