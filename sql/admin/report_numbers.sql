-- pbxctl report numbers: per DID dialled and its label as recorded, the inbound calls of
-- the window; unique clients (withheld numbers not counted); answered; missed (neither
-- answered nor refused). Busiest first.
SELECT g.did, g.did_label AS label, COALESCE(c.name, g.company) AS company,
       g.calls, g.clients, g.answered, g.missed
  FROM (SELECT did, did_label, company_id, min(company) AS company,
               count(*) AS calls,
               count(DISTINCT client) AS clients,
               count(*) FILTER (WHERE outcome = 'answered') AS answered,
               count(*) FILTER (WHERE outcome NOT IN ('answered', 'refused')) AS missed
          FROM call_record
         WHERE direction = 'inbound'
           AND started_at >= %(since)s::date::timestamptz
           AND started_at < (%(until)s::date + 1)::timestamptz
           AND (%(company_id)s::int IS NULL OR company_id = %(company_id)s)
           AND (%(district_id)s::int IS NULL OR district_id = %(district_id)s)
         GROUP BY did, did_label, company_id) AS g
  LEFT JOIN company c ON c.id = g.company_id
 ORDER BY g.calls DESC, g.did, g.did_label
