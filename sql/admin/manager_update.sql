UPDATE manager SET
       name = COALESCE(%(rename)s, name),
       district_id = COALESCE(%(district_id)s, district_id),
       position = COALESCE(%(position)s, position),
       caller_id = CASE WHEN %(clear_caller_id)s THEN NULL ELSE COALESCE(%(caller_id)s, caller_id) END,
       active = COALESCE(%(active)s, active)
 WHERE id = %(key)s
RETURNING id, name
