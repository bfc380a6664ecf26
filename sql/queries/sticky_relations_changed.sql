-- The relations of the clients a notification named, answered within the last %(days)s
-- days (one primary-key probe per client). Columns in kemi.relations' row order.
SELECT client, company_id, manager_id, extract(epoch FROM answered_at)::bigint AS answered
  FROM sticky_relation
 WHERE client = ANY (%(clients)s::text[])
   AND answered_at > now() - make_interval(days => %(days)s)
