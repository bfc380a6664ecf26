-- pbxctl records prune --before DAY: records started before that day began (records_clock's
-- time zone); whole monthly partitions dropped, the rest deleted (migration 006).
SELECT partition, action, records FROM call_record_prune(%(before)s::date::timestamptz)
