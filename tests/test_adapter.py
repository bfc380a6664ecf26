"""The KSR adapter against a fake KSR: what it reads, what it hands kamailio.cfg, how it fails."""

from __future__ import annotations

import re

from kemi.adapter import (AUTH_FAILED_RC, AUTH_OK_TABLE, CHALLENGE_RC, DONE, EGRESS_AUTH_AVP,
                          EGRESS_AVP, HUNT_AVP, NOBODY_LEFT, NULL, PLAN_AVP, RELAY, RELAY_TO_SIM,
                          REQUEST_FIELDS, SAVE_REGISTRATION, SEPARATOR, TRUNK_NETWORKS_VAR,
                          TRUNKS_LOADED_VAR, Router, parse_request)
from kemi.config import Config
from kemi.model import DidRoute

from harness.fakes import FakeKSR, demo_directory, demo_records

IVAN, BORIS = "+79181110003", "+79181110004"


def request(**pv):
    values = {"$rm": "INVITE", "$si": "127.0.0.2", "$rU": "+78622550101", "$fU": "89891234567",
              "$fd": "carrier.example", "$ci": "call-1"}
    values.update(pv)
    return values


def fields(ksr):
    """REQUEST_FIELDS as kamailio.cfg prints them for python_exec."""
    values = ksr.pv.values
    return SEPARATOR.join(NULL if values.get(name) is None else str(values[name])
                          for name in REQUEST_FIELDS)


def router(ksr, directory=None, clock=lambda: 0.0, log_level=1):
    return Router(ksr, Config(log_level=log_level), directory or demo_directory(), clock=clock)


def plan(ksr) -> list[str]:
    return ksr.pv.values[PLAN_AVP].split(SEPARATOR)


# -- inbound -----------------------------------------------------------------------------

def test_inbound_call_rings_the_first_registered_sim_with_the_plan_for_kamailio_cfg():
    ksr = FakeKSR(request(**{"$ai": "sip:89891234567@x"}), registered={IVAN, BORIS})
    assert router(ksr).route_initial(None, fields(ksr)) == RELAY_TO_SIM
    # the SIM learns no carrier's host: the client is a number in our realm
    assert plan(ksr) == ['"Sochi"', "sip:+79891234567@pbx.local",
                         "sip:+79891234567@pbx.local", BORIS, "",  # "": not masked
                         "inbound", "Kuban Realty/Sochi",  # for the metrics
                         # for the record: DID, client, trunk, the SIM rung, "" not sticky
                         # (kemi/records.py)
                         f"+78622550101\t+79891234567\tkuban-telecom\t{IVAN}\t", IVAN]
    assert ksr.called("registrar.lookup_uri") == [("location", f"sip:{IVAN}@pbx.local")]
    assert ksr.called("xhttp_prom.counter_inc_l2") == []  # calls are counted by kamailio.cfg
    # From, PAI, failure route, timers, dialog, record-routing and the relay are
    # kamailio.cfg's (route RING_SIM): no crossing for them.
    for mechanics in ("uac.uac_replace_from", "hdr.append", "tm.t_on_failure", "tm.t_set_fr",
                      "dialog.dlg_manage", "rr.record_route", "tm.t_relay"):
        assert ksr.called(mechanics) == []


def test_unregistered_first_sim_is_skipped_at_once():
    ksr = FakeKSR(request(), registered={BORIS})
    assert router(ksr).route_initial(None, fields(ksr)) == RELAY_TO_SIM
    assert [c[1] for c in ksr.called("registrar.lookup_uri")] == [f"sip:{IVAN}@pbx.local",
                                                                  f"sip:{BORIS}@pbx.local"]
    assert plan(ksr)[3] == ""  # nobody left after Boris


def test_nobody_registered_is_480():
    ksr = FakeKSR(request())
    assert router(ksr).route_initial(None, fields(ksr)) == DONE
    assert ksr.called("sl.send_reply") == [(480, "Temporarily Unavailable")]


def test_failure_route_aims_at_the_next_then_gives_up_with_480():
    ksr = FakeKSR(registered={BORIS})
    assert router(ksr).hunt_next(None, f"{IVAN},{BORIS}") == RELAY_TO_SIM
    assert ksr.called("registrar.lookup_uri") == [("location", f"sip:{IVAN}@pbx.local"),
                                                  ("location", f"sip:{BORIS}@pbx.local")]
    assert ksr.pv.values[HUNT_AVP] == ""
    ksr = FakeKSR(registered={BORIS})
    # nobody left: kamailio.cfg records the outcome, then answers 480 (route HUNT_NEXT)
    assert router(ksr).hunt_next(None, NULL) == NOBODY_LEFT
    assert ksr.called("tm.t_reply") == []


def test_unknown_did_is_refused_and_logged_once_per_source_per_second():
    now = [0.0]
    ksr = FakeKSR(request(**{"$rU": "+78612999999"}))
    r = router(ksr, clock=lambda: now[0])
    for _ in range(5):
        r.route_initial(None, fields(ksr))
    assert ksr.called("sl.send_reply") == [(404, "Number Dialed Incorrectly")] * 5
    notices = [text for level, text in ksr.logs if level == "notice"]
    assert len(notices) == 1
    assert re.search(r'refused source=127\.0\.0\.2 method=INVITE .* code=404 '
                     r'reason="Number Dialed Incorrectly" suppressed=0', notices[0])
    other_worker = router(ksr, clock=lambda: now[0])  # the count is shared, not per process
    other_worker.route_initial(None, fields(ksr))
    now[0] = 1.0
    r.route_initial(None, fields(ksr))
    notices = [text for level, text in ksr.logs if level == "notice"]
    assert len(notices) == 2 and "suppressed=5" in notices[1]


def test_a_pipe_inside_a_field_does_not_shift_the_others():
    req, _, verified = parse_request("INVITE|127.0.0.2|+78622550101|a%7Cb|<null>|0|<null>|"
                                     "<sip:+78612100101@x>;reason=x%7Cy|<null>|<null>")
    assert not verified
    assert req.from_user == "a|b" and req.diversion == "<sip:+78612100101@x>;reason=x|y"


def test_display_name_is_quoted_safely():
    trunks, sims, dids = demo_records()
    dids = dict(dids)
    route = dids["+78622550101"]
    dids["+78622550101"] = DidRoute(route.number, route.company_id, route.district_id,
                                    'So"chi\\|x', route.district_active, route.hunt)
    ksr = FakeKSR(request(), registered={IVAN})
    router(ksr, demo_directory(dids=dids)).route_initial(None, fields(ksr))
    assert plan(ksr)[0] == r'"So\"chi\\/x"'  # quoted, and no '|' to split kamailio.cfg's fields


def test_an_exception_becomes_500_with_the_call_id_logged():
    ksr = FakeKSR(request(), registered={IVAN})
    ksr.pv.sets = lambda *a: (_ for _ in ()).throw(RuntimeError("boom"))
    assert router(ksr).route_initial(None, fields(ksr)) == DONE
    assert ksr.called("sl.send_reply") == [(500, "Server Internal Error")]
    assert ksr.logs[-1][0] == "err" and "call_id=call-1" in ksr.logs[-1][1]
    assert "RuntimeError: boom" in ksr.logs[-1][1]


def test_routing_is_logged_at_info_level_only():
    ksr = FakeKSR(request(), registered={IVAN})
    router(ksr, log_level=2).route_initial(None, fields(ksr))
    assert [level for level, _ in ksr.logs] == ["info", "info"]
    assert 'district="Sochi" caller=+79891234567' in ksr.logs[0][1]
    ksr = FakeKSR(request(), registered={IVAN})
    router(ksr, log_level=1).route_initial(None, fields(ksr))
    assert ksr.logs == []


def test_the_database_down_with_nothing_cached_is_503_logged():
    directory = demo_directory()
    directory._dids.clear()
    directory.db.down = True
    ksr = FakeKSR(request())
    assert router(ksr, directory).route_initial(None, fields(ksr)) == DONE
    assert ksr.called("sl.send_reply") == [(503, "Service Unavailable")]


# -- authentication ---------------------------------------------------------------------

def sim_request(**pv):
    return request(**{"$si": "127.0.0.1", "$au": IVAN, "$fU": IVAN, "$rU": "89891234567",
                      "$fd": "pbx.local", **pv})


def test_no_credentials_are_challenged_by_kamailio_cfg():
    ksr = FakeKSR(sim_request(**{"$au": None}))
    assert router(ksr).route_initial(None, fields(ksr)) == CHALLENGE_RC
    assert ksr.called("auth.pv_auth_check") == []


def test_credentials_of_an_unknown_sim_are_refused_without_checking_them():
    """kamailio.cfg answers AUTH_FAILED itself (403 Forbidden, after counting it)."""
    ksr = FakeKSR(sim_request(**{"$au": "+79990000000", "$fU": "+79990000000"}))
    assert router(ksr).route_initial(None, fields(ksr)) == AUTH_FAILED_RC
    assert ksr.called("auth.pv_auth_check") == []
    assert ksr.called("sl.send_reply") == []


def test_wrong_password_is_an_auth_failure_answered_by_kamailio_cfg():
    ksr = FakeKSR(sim_request(), auth_rc=-2)
    assert router(ksr).route_initial(None, fields(ksr)) == AUTH_FAILED_RC
    assert ksr.called("auth.pv_auth_check") == [("pbx.local", "0" * 32, 1, 1)]


def test_a_stale_nonce_is_challenged_again():
    ksr = FakeKSR(sim_request(), auth_rc=-6)
    assert router(ksr).route_initial(None, fields(ksr)) == CHALLENGE_RC


def test_an_inactive_sim_is_named_only_after_its_digest_verified():
    inactive = "+79181110008"
    ksr = FakeKSR(sim_request(**{"$au": inactive, "$fU": inactive}), auth_rc=-2)
    assert router(ksr).route_initial(None, fields(ksr)) == AUTH_FAILED_RC
    ksr = FakeKSR(sim_request(**{"$au": inactive, "$fU": inactive}))
    assert router(ksr).route_initial(None, fields(ksr)) == DONE
    assert ksr.called("sl.send_reply") == [(403, "SIM Inactive")]


def test_register_with_good_credentials_is_saved_by_kamailio_cfg():
    ksr = FakeKSR(sim_request(**{"$rm": "REGISTER", "$rU": None}))
    assert router(ksr).route_initial(None, fields(ksr)) == SAVE_REGISTRATION
    assert ksr.called("registrar.save") == []  # kamailio.cfg's, with consume_credentials


def test_the_authok_table_is_kamailio_cfgs():
    assert AUTH_OK_TABLE == "authok"


# -- outbound ---------------------------------------------------------------------------

def test_outbound_call_hands_kamailio_cfg_the_caller_id_and_the_owner_trunk():
    ksr = FakeKSR(sim_request(**{"$ai": "sip:+79181110003@pbx.local"}))
    assert router(ksr).route_initial(None, fields(ksr)) == RELAY
    assert plan(ksr) == ["", "sip:+78622550101@127.0.0.1", "sip:+78622550101@127.0.0.1",
                         "sip:+79891234567@127.0.0.2:5060", "", f"{IVAN},+79891234567,0,o", "",
                         "outbound", "Kuban Realty/Sochi",
                         f"+78622550101\t+79891234567\tkuban-telecom\t{IVAN}"]
    for mechanics in ("uac.uac_replace_from", "hdr.append", "seturi", "tm.t_on_failure",
                      "auth.consume_credentials"):
        assert ksr.called(mechanics) == []


def test_outbound_privacy_anonymises_from_but_tells_the_carrier():
    ksr = FakeKSR(sim_request(**{"$hdr(Privacy)": "id"}))
    router(ksr).route_initial(None, fields(ksr))
    assert plan(ksr)[:3] == ['"Anonymous"', "sip:anonymous@anonymous.invalid",
                             "sip:+78622550101@127.0.0.1"]


def egress_failure(status, authenticated=None):
    ksr = FakeKSR(sim_request())
    r = router(ksr)
    r.route_initial(None, fields(ksr))
    state = plan(ksr)[5]
    ksr = FakeKSR()
    rc = router(ksr, r.directory).egress_next(None, f"{state}|{status}|{authenticated or NULL}")
    return ksr, rc


def test_trunk_503_fails_over_to_the_eligible_trunk_in_its_format():
    ksr, rc = egress_failure(503)
    assert rc == RELAY
    assert ksr.called("seturi") == [("sip:89891234567@10.20.0.1:5080",)]
    assert ksr.pv.values[EGRESS_AVP] == f"{IVAN},+79891234567,1,o"
    assert ksr.pv.values["$dlg_var(trunk)"] == "south-link"


def test_busy_client_is_not_failed_over():
    ksr, rc = egress_failure(486)
    assert rc == DONE and ksr.called("seturi") == []


def test_carrier_challenge_is_answered_once_with_that_trunks_credentials():
    ksr = FakeKSR(sim_request(**{"$au": "+79181110002", "$fU": "+79181110002"}))
    trunks, sims, dids = demo_records()
    from harness.fakes import sim
    sims = sims + [sim("+79181110002", caller_id="+78612100103", caller_id_trunk_id=2, manager_id=7)]
    r = router(ksr, demo_directory(sims=sims))
    r.route_initial(None, fields(ksr))
    state = plan(ksr)[5]
    assert plan(ksr)[4] == "south-link"  # credentials: kamailio.cfg keeps it for the BYE
    ksr = FakeKSR()
    assert router(ksr, r.directory).egress_next(None, f"{state}|407|{NULL}") == RELAY
    assert ("$avp(auser)", "kuban-realty") in ksr.called("pv.sets")
    assert (EGRESS_AUTH_AVP, "south-link") in ksr.called("pv.sets")
    assert ksr.called("uac.uac_auth") == [()]
    ksr = FakeKSR()
    assert router(ksr, r.directory).egress_next(None, f"{state}|407|south-link") == DONE
    assert ksr.called("uac.uac_auth") == []


def test_an_in_dialog_challenge_is_answered_once_with_the_trunk_credentials():
    ksr = FakeKSR()
    assert router(ksr).indialog_auth(None, "south-link|407") == RELAY
    assert ("$avp(auser)", "kuban-realty") in ksr.called("pv.sets")
    assert ksr.called("uac.uac_auth") == [()]
    for fields_ in ("south-link|486", "kuban-telecom|407", f"{NULL}|407"):
        ksr = FakeKSR()
        assert router(ksr).indialog_auth(None, fields_) == DONE
        assert ksr.called("uac.uac_auth") == []


# -- crossings ---------------------------------------------------------------------------

def ksr_calls(pv, registered=()):
    ksr = FakeKSR(pv, registered=registered)
    r = router(ksr, clock=lambda: 0.5)
    r._stats_due = 10  # not a second in which the counters are published
    r.route_initial(None, fields(ksr))
    return len(ksr.calls)


def test_ksr_crossings_per_initial_request_stay_few():
    """Each KSR call crosses from Python into Kamailio (README, Wire speed)."""
    assert ksr_calls(request(), registered={IVAN, BORIS}) == 2  # inbound: lookup, plan
    assert ksr_calls(sim_request()) == 2  # outbound before the SIMs are published: digest, plan
    assert ksr_calls({**sim_request(), "$var(authenticated)": "1"}) == 1  # verified: the plan
    assert ksr_calls({**sim_request(), "$au": None}) == 0  # challenged: no crossing at all


# -- the change watcher ------------------------------------------------------------------

def test_the_watcher_publishes_the_trunk_networks_to_kamailio_cfg():
    ksr = FakeKSR()
    directory = demo_directory()
    r = router(ksr, directory)
    r.watch_changes(None)
    assert ksr.pv.values[TRUNK_NETWORKS_VAR] == "10.20.0.0/16,10.30.0.0/16,127.0.0.2/32"
    assert ksr.pv.values[TRUNKS_LOADED_VAR] == 1
    calls = len(ksr.calls)
    r.watch_changes(None)  # nothing changed: nothing published
    assert len(ksr.calls) == calls
    directory.db.pending.append("trunk trunk=1")
    directory._next_check = 0  # the watcher looks again 100 ms later
    r.watch_changes(None)
    assert ksr.called("pv.sets")[-1][0] == TRUNK_NETWORKS_VAR and len(ksr.calls) > calls


def test_a_digest_kamailio_cfg_verified_is_not_checked_again():
    ksr = FakeKSR({**sim_request(), "$var(authenticated)": "1"}, auth_rc=-2)
    assert router(ksr).route_initial(None, fields(ksr)) == RELAY
    assert ksr.called("auth.pv_auth_check") == []


def test_a_verified_sim_this_worker_does_not_know_yet_is_challenged_again():
    ksr = FakeKSR({**sim_request(**{"$au": "+79990000000", "$fU": "+79990000000"}),
                   "$var(authenticated)": "1"})
    assert router(ksr).route_initial(None, fields(ksr)) == CHALLENGE_RC


def test_the_watcher_publishes_every_sims_ha1_and_state_then_each_change():
    directory = demo_directory()
    ksr = FakeKSR()
    r = router(ksr, directory)
    r.watch_changes(None)
    sets = {c[1]: c[2] for c in ksr.called("htable.sht_sets")}
    assert sets[IVAN] == "0" * 32 + ":0"
    assert sets["+79181110008"].endswith(":1") and sets["+79181110007"].endswith(":2")
    assert ksr.called("htable.sht_reset") == [("sims",)] and ksr.pv.values["$shv(sims_loaded)"] == 1
    ksr.calls.clear()
    directory.db.all_sims = [s for s in directory.db.all_sims if s.username != IVAN]
    directory.db.pending.append(f"sim sim={IVAN}")
    directory._next_check = 0
    r.watch_changes(None)
    assert ksr.called("htable.sht_rm") == [("sims", IVAN)] and ksr.called("htable.sht_sets") == []
