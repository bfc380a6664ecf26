-- The DIDs among the numbers a notification named (a number not returned is gone).
SELECT number, company_id FROM did WHERE number = ANY(%(numbers)s::text[])
