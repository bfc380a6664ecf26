-- Every sticky relation answered within the last %(days)s days: a worker's full load.
-- Columns in kemi.relations' row order.
SELECT client, company_id, manager_id, extract(epoch FROM answered_at)::bigint AS answered
  FROM sticky_relation
 WHERE answered_at > now() - make_interval(days => %(days)s)
