"""The KSR adapter against a fake KSR: what it reads, what it calls, how it fails."""

from __future__ import annotations

import re

from kemi.adapter import (AUTH_FAILED, AUTH_OK_TABLE, DONE, FAILURE_ROUTE_HUNT, HUNT_AVP, NULL,
                          RELAY, RELAY_TO_SIM, REQUEST_FIELDS, TRUNK_NETWORKS_VAR,
                          TRUNKS_LOADED_VAR, Router)
from kemi.config import Config

from .fakes import FakeKSR, demo_data

IVAN, BORIS = "+79181110003", "+79181110004"


def request(**pv):
    values = {"$rm": "INVITE", "$si": "127.0.0.2", "$rU": "+78622550101", "$fU": "89891234567",
              "$fd": "carrier.example", "$ci": "call-1"}
    values.update(pv)
    return values


def fields(ksr):
    """REQUEST_FIELDS as kamailio.cfg prints them for python_exec."""
    values = ksr.pv.values
    return " ".join(NULL if values.get(name) is None else str(values[name])
                    for name in REQUEST_FIELDS.split())


def router(ksr, data=None, clock=lambda: 0.0):
    return Router(ksr, Config(log_level=1), data or demo_data(), clock=clock)


def test_inbound_call_rewrites_from_and_rings_the_first_registered_sim():
    ksr = FakeKSR(request(**{"$ai": "sip:attacker@x"}), registered={IVAN, BORIS})
    assert router(ksr).route_initial(None, fields(ksr)) == RELAY_TO_SIM
    assert ksr.called("uac.uac_replace_from") == [('"Sochi"', "sip:+79891234567@carrier.example")]
    assert ksr.called("hdr.append") == [("P-Asserted-Identity: <sip:attacker@carrier.example>\r\n",)]
    assert ksr.called("registrar.lookup_uri") == [("location", f"sip:{IVAN}@pbx.local")]
    assert ksr.called("pv.sets") == [(HUNT_AVP, BORIS)]
    assert ksr.called("tm.t_on_failure") == [(FAILURE_ROUTE_HUNT,)]
    assert ksr.called("tm.t_set_fr") == [(Config().ring_ms, Config().no_answer_ms)]
    # The dialog, record-routing, identity headers and the relay are kamailio.cfg's
    # (route RELAY_INITIAL): no crossing for them.
    for mechanics in ("dialog.dlg_manage", "rr.record_route", "hdr.remove", "tm.t_relay"):
        assert ksr.called(mechanics) == []


def test_unregistered_first_sim_is_skipped_at_once():
    ksr = FakeKSR(request(), registered={BORIS})
    router(ksr).route_initial(None, fields(ksr))
    assert [c[1] for c in ksr.called("registrar.lookup_uri")] == [f"sip:{IVAN}@pbx.local",
                                                                  f"sip:{BORIS}@pbx.local"]
    assert ksr.called("pv.sets") == [(HUNT_AVP, "")]


def test_nobody_registered_is_480():
    ksr = FakeKSR(request())
    assert router(ksr).route_initial(None, fields(ksr)) == DONE
    assert ksr.called("sl.send_reply") == [(480, "Temporarily Unavailable")]


def test_failure_route_rings_the_next_then_gives_up_with_480():
    ksr = FakeKSR({HUNT_AVP: BORIS}, registered={BORIS})
    router(ksr).hunt_next(None)
    assert ksr.called("tm.t_relay") == [()]
    ksr = FakeKSR({HUNT_AVP: ""}, registered={BORIS})
    router(ksr).hunt_next(None)
    assert ksr.called("tm.t_reply") == [(480, "Temporarily Unavailable")]


def test_unknown_did_is_refused_and_logged_once_per_source_per_second():
    now = [0.0]
    ksr = FakeKSR(request(**{"$rU": "+78612999999"}))
    r = router(ksr, clock=lambda: now[0])
    for _ in range(5):
        r.route_initial(None, fields(ksr))
    assert ksr.called("sl.send_reply") == [(404, "Number Dialed Incorrectly")] * 5
    assert len(ksr.logs) == 1
    assert re.search(r'refused source=127\.0\.0\.2 method=INVITE .* code=404 '
                     r'reason="Number Dialed Incorrectly"', ksr.logs[0][1])
    other_worker = router(ksr, clock=lambda: now[0])  # the count is shared, not per process
    other_worker.route_initial(None, fields(ksr))
    assert len(ksr.logs) == 1
    now[0] = 1.0
    r.route_initial(None, fields(ksr))
    assert len(ksr.logs) == 2


def test_stranger_without_credentials_is_challenged():
    ksr = FakeKSR(request(**{"$si": "127.0.0.3"}))
    router(ksr).route_initial(None, fields(ksr))
    assert ksr.called("auth.auth_challenge") == [("pbx.local", 1)]
    assert ksr.called("tm.t_relay") == []


def test_the_watcher_publishes_the_trunk_networks_to_kamailio_cfg():
    ksr = FakeKSR()
    data = demo_data()
    r = router(ksr, data)
    r.watch_changes(None)
    assert ksr.pv.values[TRUNK_NETWORKS_VAR] == "10.20.0.0/16,10.30.0.0/16,127.0.0.2/32"
    assert ksr.pv.values[TRUNKS_LOADED_VAR] == 1
    calls = len(ksr.calls)
    r.watch_changes(None)  # nothing changed: nothing published
    assert len(ksr.calls) == calls
    data.networks_changed = True
    r.watch_changes(None)
    assert len(ksr.calls) > calls


def test_credentials_of_an_unknown_sim_are_refused_without_checking_them():
    """kamailio.cfg answers AUTH_FAILED itself (403 Forbidden, after counting it)."""
    ksr = FakeKSR(request(**{"$si": "127.0.0.3", "$au": "+79990000000"}))
    assert router(ksr).route_initial(None, fields(ksr)) == AUTH_FAILED
    assert ksr.called("auth.pv_auth_check") == []
    assert ksr.called("sl.send_reply") == []


def test_wrong_password_is_an_auth_failure_answered_by_kamailio_cfg():
    ksr = FakeKSR(request(**{"$si": "127.0.0.3", "$au": IVAN}), auth_rc=-2)
    assert router(ksr).route_initial(None, fields(ksr)) == AUTH_FAILED
    assert ksr.called("auth.pv_auth_check") == [("pbx.local", "0" * 32, 1, 1)]
    assert ksr.called("sl.send_reply") == []


def test_an_inactive_sim_is_named_only_after_its_digest_verified():
    inactive = "+79181110008"
    ksr = FakeKSR(request(**{"$si": "127.0.0.3", "$au": inactive, "$fU": inactive}), auth_rc=-2)
    assert router(ksr).route_initial(None, fields(ksr)) == AUTH_FAILED
    ksr = FakeKSR(request(**{"$si": "127.0.0.3", "$au": inactive, "$fU": inactive}))
    assert router(ksr).route_initial(None, fields(ksr)) == DONE
    assert ksr.called("sl.send_reply") == [(403, "SIM Inactive")]


def test_a_verified_digest_is_remembered_for_its_source():
    ksr = FakeKSR(sim_request())
    router(ksr).route_initial(None, fields(ksr))
    assert ksr.shared[f"{AUTH_OK_TABLE}/127.0.0.1::{IVAN}"] == 1


def test_register_with_good_credentials_is_saved():
    ksr = FakeKSR(request(**{"$rm": "REGISTER", "$si": "127.0.0.1", "$au": IVAN}))
    router(ksr).route_initial(None, fields(ksr))
    assert ksr.called("auth.consume_credentials") == [()]
    assert ksr.called("registrar.save") == [("location", 0)]


def test_fields_missing_in_the_request_arrive_as_none():
    ksr = FakeKSR(request(**{"$fU": None, "$si": "127.0.0.3"}))
    router(ksr).route_initial(None, fields(ksr))  # a stranger: challenged, no From user needed
    assert "<null>" in fields(ksr) and ksr.called("auth.auth_challenge") == [("pbx.local", 1)]
    data = demo_data()
    ksr = FakeKSR(request(**{"$fU": None}), registered={IVAN})
    router(ksr, data).route_initial(None, fields(ksr))
    assert ksr.called("uac.uac_replace_from") == [('"Sochi"', "sip:anonymous@carrier.example")]


def test_an_exception_becomes_500_with_the_call_id_logged():
    ksr = FakeKSR(request(**{"$ai": RuntimeError("boom")}))
    assert router(ksr).route_initial(None, fields(ksr)) == DONE
    assert ksr.called("sl.send_reply") == [(500, "Server Internal Error")]
    assert ksr.logs[-1][0] == "err" and "call_id=call-1" in ksr.logs[-1][1]
    assert "RuntimeError: boom" in ksr.logs[-1][1]


def test_display_name_is_quoted_safely():
    data = demo_data()
    route = data.dids["+78622550101"]
    data.dids["+78622550101"] = route.__class__(**{**route.__dict__, "district_name": 'So"chi\\'})
    ksr = FakeKSR(request(), registered={IVAN})
    router(ksr, data).route_initial(None, fields(ksr))
    assert ksr.called("uac.uac_replace_from")[0][0] == r'"So\"chi\\"'


def test_routing_is_logged_at_info_level_only():
    ksr = FakeKSR(request(), registered={IVAN})
    Router(ksr, Config(log_level=2), demo_data()).route_initial(None, fields(ksr))
    assert [level for level, _ in ksr.logs] == ["info", "info"]
    assert 'district="Sochi" caller=+79891234567' in ksr.logs[0][1]
    ksr = FakeKSR(request(), registered={IVAN})
    Router(ksr, Config(log_level=1), demo_data()).route_initial(None, fields(ksr))
    assert ksr.logs == []


# -- outbound ------------------------------------------------------------------------

from kemi.adapter import EGRESS_AUTH_AVP, EGRESS_AVP, FAILURE_ROUTE_EGRESS  # noqa: E402


def sim_request(**pv):
    return request(**{"$si": "127.0.0.1", "$au": IVAN, "$fU": IVAN, "$rU": "89891234567",
                      "$fd": "pbx.local", **pv})


def test_outbound_call_shows_the_district_number_and_leaves_through_the_owner():
    ksr = FakeKSR(sim_request(**{"$ai": "sip:+79181110003@pbx.local"}))
    assert router(ksr).route_initial(None, fields(ksr)) == RELAY
    assert ksr.called("auth.consume_credentials") == [()]
    assert ksr.called("uac.uac_replace_from") == [("", "sip:+78622550101@127.0.0.1")]
    assert ksr.called("hdr.append") == [("P-Asserted-Identity: <sip:+78622550101@127.0.0.1>\r\n",)]
    assert ksr.called("seturi") == [("sip:+79891234567@127.0.0.2:5060",)]
    assert ksr.called("tm.t_on_failure") == [(FAILURE_ROUTE_EGRESS,)]
    assert '"south-link"' in ksr.pv.values[EGRESS_AVP]


def test_outbound_privacy_anonymises_from_but_tells_the_carrier():
    ksr = FakeKSR(sim_request(**{"$hdr(Privacy)": "id"}))
    router(ksr).route_initial(None, fields(ksr))
    assert ksr.called("uac.uac_replace_from") == [('"Anonymous"', "sip:anonymous@anonymous.invalid")]
    assert ksr.called("hdr.append") == [("P-Asserted-Identity: <sip:+78622550101@127.0.0.1>\r\n",)]


def egress_failure(status, authenticated=None):
    ksr = FakeKSR(sim_request())
    router(ksr).route_initial(None, fields(ksr))
    egress = ksr.pv.values[EGRESS_AVP]
    ksr = FakeKSR({EGRESS_AVP: egress, "$T_reply_code": status, EGRESS_AUTH_AVP: authenticated})
    router(ksr).egress_next(None)
    return ksr


def test_trunk_503_fails_over_to_the_eligible_trunk_in_its_format():
    ksr = egress_failure(503)
    assert ksr.called("seturi") == [("sip:89891234567@10.20.0.1:5080",)]
    assert ksr.called("tm.t_relay") == [()]


def test_busy_client_is_not_failed_over():
    ksr = egress_failure(486)
    assert ksr.called("seturi") == [] and ksr.called("tm.t_relay") == []


def test_carrier_challenge_is_answered_once_with_that_trunks_credentials():
    ksr = egress_failure(503)  # now on south-link, which has credentials
    egress = ksr.pv.values[EGRESS_AVP]
    ksr = FakeKSR({EGRESS_AVP: egress, "$T_reply_code": 407})
    router(ksr).egress_next(None)
    assert ("$avp(auser)", "kuban-realty") in ksr.called("pv.sets")
    assert ksr.called("uac.uac_auth") == [()]
    assert ksr.called("tm.t_relay") == [()]
    ksr = FakeKSR({EGRESS_AVP: egress, "$T_reply_code": 407, EGRESS_AUTH_AVP: "south-link"})
    router(ksr).egress_next(None)
    assert ksr.called("uac.uac_auth") == [] and ksr.called("tm.t_relay") == []


def ksr_calls(pv, registered=()):
    ksr = FakeKSR(pv, registered=registered)
    r = router(ksr, clock=lambda: 0.5)
    r._stats_due = 10  # not a second in which the counters are published
    r.route_initial(None, fields(ksr))
    return len(ksr.calls)


def test_ksr_crossings_per_initial_request_stay_few():
    """Each KSR call crosses from Python into Kamailio (README, Wire speed)."""
    assert ksr_calls(request(), registered={IVAN, BORIS}) == 8  # inbound DID, hunting
    # A SIM's first INVITE, should it reach Python (kamailio.cfg challenges it itself once
    # the trunks are known): challenged.
    assert ksr_calls({**sim_request(), "$au": None}) == 2
    assert ksr_calls(sim_request()) == 10  # outbound, authenticated


from kemi.adapter import DIALOG_TRUNK_VAR  # noqa: E402


def test_a_trunk_with_credentials_is_remembered_for_in_dialog_challenges():
    from .fakes import sim
    pavel = "+79181110002"  # his caller ID is south-link's, a trunk with credentials
    data = demo_data()
    data.sims[pavel] = sim(pavel, caller_id="+78612100103", caller_id_trunk_id=2)
    ksr = FakeKSR(sim_request(**{"$au": pavel, "$fU": pavel}))
    router(ksr, data).route_initial(None, fields(ksr))
    assert ksr.pv.values[DIALOG_TRUNK_VAR] == "south-link"
    ksr = FakeKSR(sim_request())  # Ivan: kuban-telecom, no credentials: nothing to remember
    router(ksr).route_initial(None, fields(ksr))
    assert DIALOG_TRUNK_VAR not in ksr.pv.values


def test_failover_replaces_the_remembered_trunk():
    ksr = egress_failure(503)  # kuban-telecom failed, now south-link
    assert ksr.pv.values[DIALOG_TRUNK_VAR] == "south-link"


def test_an_in_dialog_challenge_is_answered_once_with_the_trunk_credentials():
    ksr = FakeKSR({DIALOG_TRUNK_VAR: "south-link", "$T_reply_code": 407})
    router(ksr).indialog_auth(None)
    assert ("$avp(auser)", "kuban-realty") in ksr.called("pv.sets")
    assert ksr.called("uac.uac_auth") == [()] and ksr.called("tm.t_relay") == [()]
    for values in ({DIALOG_TRUNK_VAR: "south-link", "$T_reply_code": 486},  # the client's answer
                   {DIALOG_TRUNK_VAR: "kuban-telecom", "$T_reply_code": 407}):  # no credentials
        ksr = FakeKSR(values)
        router(ksr).indialog_auth(None)
        assert ksr.called("uac.uac_auth") == [] and ksr.called("tm.t_relay") == []
