-- Every carrier trunk with the source addresses trusted as that carrier.
SELECT id, name, carrier, ARRAY(SELECT host(a) || '/' || masklen(a) FROM unnest(sources) a) AS sources,
       number_format
  FROM trunk
 ORDER BY id
