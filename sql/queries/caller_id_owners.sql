-- The trunk that owns each number shown as a caller ID (a district's number, or a
-- manager's override). Kept apart from the SIM snapshot (sims.sql), so that a change to
-- the did table reloads these few rows, not every SIM. One snapshot per worker.
SELECT d.number, d.trunk_id
  FROM did d
 WHERE d.number IN (SELECT caller_id FROM district
                    UNION
                    SELECT caller_id FROM manager WHERE caller_id IS NOT NULL)
