-- What keeps a district from being removed, by name: its managers, the DIDs ringing it
-- other than its own caller-ID DID, and whoever else shows that DID as caller ID.
SELECT 'manager' AS kind, m.id::text || ' (' || m.name || ')' AS name
  FROM manager m WHERE m.district_id = %(district_id)s
UNION ALL
SELECT 'DID', did.number
  FROM did WHERE did.district_id = %(district_id)s AND did.number <> %(caller_id)s
UNION ALL
SELECT 'caller ID of manager', m.id::text || ' (' || m.name || ')'
  FROM manager m WHERE m.caller_id = %(caller_id)s AND m.district_id <> %(district_id)s
UNION ALL
SELECT 'caller ID of district', d.name
  FROM district d WHERE d.caller_id = %(caller_id)s AND d.id <> %(district_id)s
ORDER BY 1, 2
