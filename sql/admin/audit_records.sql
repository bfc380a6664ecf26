-- pbxctl records prune: who removed which records, and when (db_user and application come
-- by default); the cut-off and the partitions touched, never a record.
INSERT INTO audit (table_name, operation, new_row)
VALUES ('call_record', %(operation)s, %(new_row)s::jsonb)
