-- pbxctl records and report: the time zone whose days they speak of (--tz, else the
-- database's TimeZone), set for this transaction, and today's date in it.
SELECT tz, (now() AT TIME ZONE tz)::date AS today
  FROM (SELECT set_config('TimeZone', COALESCE(%(tz)s::text, current_setting('TimeZone')), true)
               AS tz) AS zone
