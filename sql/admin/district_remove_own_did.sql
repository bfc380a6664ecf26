-- A district's own caller-ID DID, removed with the district in one transaction (the two
-- rows point at each other: neither can go first on its own). Only a DID ringing that
-- district; the district's removal follows, and the deferred caller-ID key is checked at
-- commit.
DELETE FROM did
 USING district d
 WHERE d.company_id = %(company_id)s AND d.name = %(key)s
   AND did.number = d.caller_id AND did.district_id = d.id
RETURNING did.number
