-- After a prune: this month's and next month's partitions exist (call_record_partition is
-- idempotent), so the monthly retention job also keeps new records out of DEFAULT.
SELECT call_record_partition(current_date) AS this_month,
       call_record_partition((current_date + interval '1 month')::date) AS next_month
