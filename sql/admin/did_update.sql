UPDATE did SET
       district_id = COALESCE(%(district_id)s, district_id),
       trunk_id = COALESCE(%(trunk_id)s, trunk_id),
       label = COALESCE(%(label)s, label)
 WHERE number = %(key)s
RETURNING number
