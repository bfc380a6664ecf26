-- pbxctl report calls: per district and day (records_clock's time zone) of the window
-- [since, until]: inbound calls; answered; missed (inbound, neither answered nor refused);
-- the answer rate of the calls that rang (answered / (answered + missed), in percent); the median
-- time to answer (answered_at - started_at, s); outbound calls; talk minutes (every
-- direction). Current company and district names; a removed one's as recorded.
SELECT COALESCE(c.name, g.company) AS company, COALESCE(d.name, g.district) AS district,
       g.day, g.inbound, g.answered, g.missed,
       round(100.0 * g.answered / NULLIF(g.answered + g.missed, 0), 1) AS answer_rate,
       round(g.median_answer_s::numeric, 1) AS median_answer_s,
       g.outbound, round(g.talk_s / 60, 1) AS talk_min
  FROM (SELECT company_id, district_id, min(company) AS company, min(district) AS district,
               started_at::date AS day,
               count(*) FILTER (WHERE direction = 'inbound') AS inbound,
               count(*) FILTER (WHERE direction = 'inbound' AND outcome = 'answered') AS answered,
               count(*) FILTER (WHERE direction = 'inbound'
                                  AND outcome NOT IN ('answered', 'refused')) AS missed,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM answered_at - started_at))
                   FILTER (WHERE direction = 'inbound' AND outcome = 'answered') AS median_answer_s,
               count(*) FILTER (WHERE direction = 'outbound') AS outbound,
               sum(duration_s) AS talk_s
          FROM call_record
         WHERE started_at >= %(since)s::date::timestamptz
           AND started_at < (%(until)s::date + 1)::timestamptz
           AND (%(company_id)s::int IS NULL OR company_id = %(company_id)s)
           AND (%(district_id)s::int IS NULL OR district_id = %(district_id)s)
         GROUP BY company_id, district_id, started_at::date) AS g
  LEFT JOIN company c ON c.id = g.company_id
  LEFT JOIN district d ON d.id = g.district_id
 ORDER BY 1, 2, g.day
