-- Every carrier trunk: the source addresses trusted as that carrier, where calls to it
-- go, how it writes numbers, and how failover and emergency calls may use it.
SELECT id, name, carrier,
       ARRAY(SELECT host(a) || '/' || masklen(a) FROM unnest(sources) a) AS sources,
       number_format,
       host(egress_host) AS egress_host,
       egress_port,
       transport,
       auth_username,
       auth_password,
       accepts_foreign_caller_id,
       is_default
  FROM trunk
 ORDER BY id
