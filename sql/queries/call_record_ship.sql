-- One batch of call records from the spool (kemi/records.py), named from the routing tables
-- as they are now: the DID's company, district and label, the SIMs' managers. An inbound
-- call belongs to the district of the DID dialled, an outbound one to the calling manager's.
-- (A column NULL in every row of a batch is text to VALUES: hence the cast.)
-- Shipped twice (a crash between the commit and the spool's offsets): the key skips it.
INSERT INTO call_record (call_key, started_at, answered_at, ended_at, duration_s, direction,
                         outcome, sip_status, sip_reason, company_id, company, district_id,
                         district, did, did_label, manager_id, manager, first_manager_id,
                         first_manager, sim, rang_before, client, trunk, sticky)
SELECT v.call_key, v.started_at, v.answered_at::timestamptz, v.ended_at, v.duration_s, v.direction,
       v.outcome, v.sip_status, v.sip_reason, co.id, co.name, di.id, di.name, v.did, d.label,
       am.id, am.name, fm.id, fm.name, v.sim, v.rang_before, v.client, v.trunk, v.sticky
  FROM (VALUES %s) AS v (call_key, started_at, answered_at, ended_at, duration_s, direction,
                         outcome, sip_status, sip_reason, did, sim, first_sim, client, trunk,
                         rang_before, sticky)
  LEFT JOIN did d ON d.number = v.did
  LEFT JOIN sim sa ON sa.username = v.sim
  LEFT JOIN manager am ON am.id = sa.manager_id
  LEFT JOIN sim sf ON sf.username = v.first_sim
  LEFT JOIN manager fm ON fm.id = sf.manager_id
  LEFT JOIN district di ON di.id = CASE WHEN v.direction IN ('outbound', 'emergency')
                                        THEN am.district_id ELSE d.district_id END
  LEFT JOIN company co ON co.id = di.company_id
ON CONFLICT (call_key, started_at) DO NOTHING
