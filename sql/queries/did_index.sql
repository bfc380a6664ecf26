-- Every DID and the company renting it: each worker keeps them as two sorted arrays
-- (8 + 4 bytes a DID), so that "is this number ours?" never asks the database.
SELECT number, company_id FROM did
