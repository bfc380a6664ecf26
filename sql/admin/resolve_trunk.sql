SELECT id FROM trunk WHERE name = %(trunk)s
