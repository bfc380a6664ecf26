-- pbxctl report missed: the call-back list. Per company and client (a known number), the
-- client's last inbound call of the window that reached us (refused calls left out) was
-- missed, and nothing since says the client was served: no outbound call attempt from the
-- same company to that number, nor an answered inbound call, at any time after it (also
-- after the window: the list is of who still waits). Newest first; `calls`: the client's
-- inbound calls of the window to that company. `masked`: whether the record's district
-- shows clients masked now (a removed district or company: masked, to be safe).
WITH inbound AS (
    SELECT company_id, company, district_id, district, client, did, started_at, outcome,
           row_number() OVER (PARTITION BY company_id, client ORDER BY started_at DESC) AS recent,
           count(*) OVER (PARTITION BY company_id, client) AS calls
      FROM call_record
     WHERE direction = 'inbound' AND outcome <> 'refused'
       AND client IS NOT NULL AND company_id IS NOT NULL
       AND started_at >= %(since)s::date::timestamptz
       AND started_at < (%(until)s::date + 1)::timestamptz
       AND (%(company_id)s::int IS NULL OR company_id = %(company_id)s)
       AND (%(district_id)s::int IS NULL OR district_id = %(district_id)s)
)
SELECT COALESCE(c.name, i.company) AS company, i.company_id, i.client, i.did,
       COALESCE(d.name, i.district) AS district, i.started_at AS last_call, i.calls,
       COALESCE(d.mask_numbers, c.mask_numbers, true) AS masked
  FROM inbound i
  LEFT JOIN company c ON c.id = i.company_id
  LEFT JOIN district d ON d.id = i.district_id
 WHERE i.recent = 1 AND i.outcome <> 'answered'
   AND NOT EXISTS (
       SELECT 1 FROM call_record later
        WHERE later.company_id = i.company_id AND later.client = i.client
          AND later.started_at > i.started_at
          AND (later.direction = 'outbound'
               OR (later.direction = 'inbound' AND later.outcome = 'answered')))
 ORDER BY i.started_at DESC, i.client
