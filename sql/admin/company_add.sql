INSERT INTO company (name, allow_international, allow_premium_rate, allow_kazakhstan, mask_numbers)
VALUES (%(name)s, COALESCE(%(allow_international)s, false),
        COALESCE(%(allow_premium_rate)s, false), COALESCE(%(allow_kazakhstan)s, false),
        COALESCE(%(mask_numbers)s, false))
RETURNING name
