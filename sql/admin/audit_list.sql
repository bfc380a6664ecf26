SELECT id, at, db_user, application, table_name, operation, old_row, new_row
  FROM audit
 WHERE at >= %(since)s AND (%(table)s::text IS NULL OR table_name = %(table)s)
 ORDER BY id DESC
 LIMIT %(limit)s
