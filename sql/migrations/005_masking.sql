-- Masked client numbers (README, Masked client numbers): a company shows its managers a
-- token instead of a client's number; a district may differ from its company (NULL: as the
-- company). The keys are never in the database: the proxy reads them from its own config.
-- Both columns reach the running proxies through the tables' change notifications (004).

ALTER TABLE company ADD COLUMN mask_numbers boolean NOT NULL DEFAULT false;
ALTER TABLE district ADD COLUMN mask_numbers boolean;

COMMENT ON COLUMN company.mask_numbers IS
    'managers see a token instead of a client''s number (district.mask_numbers may override)';
COMMENT ON COLUMN district.mask_numbers IS 'NULL: as the company; true/false: this district';
