SELECT t.name, t.carrier,
       array_to_string(ARRAY(SELECT host(a) || '/' || masklen(a) FROM unnest(t.sources) a), ',') AS sources,
       host(t.egress_host) AS egress_host, t.egress_port, t.transport, t.number_format,
       t.auth_username, t.accepts_foreign_caller_id, t.is_default
  FROM trunk t
 WHERE %(key)s::text IS NULL OR t.name = %(key)s
 ORDER BY t.id
