-- Sticky relations answered within the last %(days)s days: all of them (clients NULL), or
-- those of the clients a notification named. Columns in kemi.relations' row order.
SELECT client, company_id, manager_id, extract(epoch FROM answered_at)::bigint AS answered
  FROM sticky_relation
 WHERE answered_at > now() - make_interval(days => %(days)s)
   AND (%(clients)s::text[] IS NULL OR client = ANY (%(clients)s::text[]))
