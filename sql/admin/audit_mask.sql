-- pbxctl mask, unmask (and explain to a token), key rotate and retire: each use by hand, with
-- the company, the token, the key ids and the operating-system user (db_user and application
-- come by default). Never the client's number: the audit would become a client list that
-- whoever may read the audit reads; and never a key.
INSERT INTO audit (table_name, operation, new_row)
VALUES ('masking', %(operation)s, %(new_row)s::jsonb)
