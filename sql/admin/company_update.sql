UPDATE company SET
       name = COALESCE(%(rename)s, name),
       allow_international = COALESCE(%(allow_international)s, allow_international),
       allow_premium_rate = COALESCE(%(allow_premium_rate)s, allow_premium_rate),
       allow_kazakhstan = COALESCE(%(allow_kazakhstan)s, allow_kazakhstan),
       mask_numbers = COALESCE(%(mask_numbers)s, mask_numbers),
       sticky = COALESCE(%(sticky)s, sticky),
       sticky_days = COALESCE(%(sticky_days)s, sticky_days)
 WHERE name = %(key)s
RETURNING name
