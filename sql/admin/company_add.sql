INSERT INTO company (name, allow_international, allow_premium_rate, allow_kazakhstan, mask_numbers,
                     sticky, sticky_days)
VALUES (%(name)s, COALESCE(%(allow_international)s, false),
        COALESCE(%(allow_premium_rate)s, false), COALESCE(%(allow_kazakhstan)s, false),
        COALESCE(%(mask_numbers)s, false), COALESCE(%(sticky)s, true),
        COALESCE(%(sticky_days)s, 30))
RETURNING name
