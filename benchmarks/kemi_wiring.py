"""The full-KEMI wiring (kamailio.cfg with -A FULL_KEMI: cfgengine "python"): every request
enters Python, SIP mechanics included. Not the product: kept to measure it against the
proxy's wiring, where kamailio.cfg does the mechanics natively and calls Python once per
initial request (make bench-sip compares both; README, Wire speed). Each method mirrors the
kamailio.cfg route of the same name, abuse limits included, so that both do the same work;
the decisions are the same Router's."""

from __future__ import annotations

import re

from kemi.adapter import (AUTH_FAILED_RC, CHALLENGE_RC, DIALOG_TRUNK_VAR, EGRESS_AUTH_AVP,
                          EGRESS_AVP, FAILURE_ROUTE_EGRESS, FAILURE_ROUTE_HUNT,
                          FAILURE_ROUTE_INDIALOG_AUTH, HUNT_AVP, NOBODY_LEFT, NULL, PLAN_AVP, RELAY,
                          RELAY_TO_SIM, REQUEST_FIELDS, SAVE_REGISTRATION, SEPARATOR,
                          SIMS_LOADED_VAR, SIMS_TABLE, TRUNK_NETWORKS_VAR, TRUNKS_LOADED_VAR,
                          Router)

# kamailio.cfg's literals, read from it (tests/test_wiring.py holds them to it).
MAX_FORWARDS = 10
SANITY_CHECKS, SANITY_URIS = 18277, 7
FIELD_MAX = 256
CALLER_SIDE_VAR, CALLEE_SIDE_VAR = "$dlg_var(caller_side)", "$dlg_var(callee_side)"
MEDIA_BACK_AVP = "$avp(media_back)"
MEDIA_FLAGS = "replace-origin replace-session-connection ICE=remove"
FLT_OFFERED, FLB_NAT, FLB_PING = 1, 6, 7
NAT_TESTS = 19
IDENTITY_HEADERS = ("P-Asserted-Identity", "P-Preferred-Identity", "Remote-Party-ID")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
EXIT = -255  # KEMI: stop processing the message


def _escaped(value) -> str:
    return NULL if value is None else str(value).replace(SEPARATOR, "%7C")


class KemiRouter(Router):
    """The same decisions as Router, reached through KEMI's request route."""

    def ksr_request_route(self, msg) -> int:
        try:
            return self._request(msg)
        except Exception as exc:
            self._crash("ksr_request_route", exc)
            return 1

    def _request(self, msg) -> int:
        ksr = self.ksr
        get = ksr.pv.get
        if get("$sht(ipban=>$si)") is not None:
            return EXIT
        ksr.force_rport()
        nets = get(TRUNK_NETWORKS_VAR)
        self._trunk = bool(nets) and ksr.ipops.is_in_subnet(get("$si"), nets) > 0
        if not self._trunk and self.config.flood_reqs and ksr.pike.pike_check_req() < 0:
            self._ban("flood")
            return EXIT
        if self._reqinit() == EXIT:
            return EXIT
        method = get("$rm")
        if method == "CANCEL":
            if ksr.tm.t_check_trans() > 0:
                ksr.tm.t_relay()
            return 1
        if ksr.siputils.has_totag() > 0:
            return self._within_dialog(method)
        if method == "ACK":
            if ksr.tm.t_check_trans() > 0:
                ksr.tm.t_relay()
            return 1
        if ksr.tm.t_check_trans() == 0:  # a retransmission, absorbed
            return 1
        ksr.hdr.remove("Route")
        if method == "OPTIONS" and get("$rU") is None:
            ksr.sl.send_reply(200, "OK")
            return 1
        self._authenticated_here = False
        if not self._trunk and get(TRUNKS_LOADED_VAR) == 1 and self._untrusted() == EXIT:
            return EXIT
        if not self._trunk and method != "REGISTER":
            self._nat_request()
        fields = SEPARATOR.join("1" if name == "$var(authenticated)" and self._authenticated_here
                                else "0" if name == "$var(authenticated)" else _escaped(get(name))
                                for name in REQUEST_FIELDS)
        answer = self.route_initial(msg, fields)
        if answer == RELAY:
            self._call_out_plan()
        elif answer == RELAY_TO_SIM:
            self._ring_sim_plan()
        elif answer == AUTH_FAILED_RC:
            if not self._trunk:
                self._auth_failed()
            self._refuse_here(403, "Forbidden")
        elif answer == SAVE_REGISTRATION:
            self._authenticated()
            self._nat_register()
            if ksr.registrar.save("location", 0) < 0:
                ksr.sl.sl_reply_error()
        elif answer == CHALLENGE_RC:
            ksr.auth.auth_challenge(self.config.realm, 1)
        return 1

    # -- kamailio.cfg's routes CALL_OUT, RING_SIM, ARM_HUNT, AUTHENTICATED, RELAY_INITIAL ----

    def _plan(self) -> list[str]:
        return (self.ksr.pv.get(PLAN_AVP) or "").split(SEPARATOR)

    def _call_out_plan(self) -> None:
        ksr, plan = self.ksr, self._plan()
        ksr.uac.uac_replace_from(plan[0], plan[1])
        ksr.hdr.append(f"P-Asserted-Identity: <{plan[2]}>\r\n")
        ksr.pv.sets("$ru", plan[3])
        ksr.uac.uac_replace_to_uri(f"sip:{ksr.pv.get('$rU')}@{ksr.pv.get('$rd')}")
        if plan[4]:
            ksr.pv.sets(DIALOG_TRUNK_VAR, plan[4])
        ksr.pv.sets(EGRESS_AVP, plan[5])
        ksr.tm.t_on_failure(FAILURE_ROUTE_EGRESS)
        self._authenticated()
        if self.config.carrier_sip_addr != self.config.sip_addr:
            ksr.pv.sets("$fs", f"udp:{self.config.carrier_sip_addr}:{self.config.sip_port}")
        self._relay_initial(to_sim=False, sides=("sim", "carrier"))

    def _ring_sim_plan(self) -> None:
        ksr, plan = self.ksr, self._plan()
        if plan[0]:
            ksr.uac.uac_replace_from(plan[0], plan[1])
        if len(plan) > 2 and plan[2]:
            ksr.hdr.append(f"P-Asserted-Identity: <{plan[2]}>\r\n")
        if ksr.pv.get("$td") != self.config.realm:
            ksr.uac.uac_replace_to_uri(f"sip:{ksr.pv.get('$tU')}@{self.config.realm}")
        ksr.pv.sets(HUNT_AVP, plan[3] if len(plan) > 3 else "")
        ksr.tm.t_set_disable_internal_reply(1)
        self._arm_hunt()
        if not self._trunk:
            self._authenticated()
        self._relay_initial(to_sim=True, sides=("carrier" if self._trunk else "sim", "sim"))

    def _arm_hunt(self) -> None:
        ksr, c = self.ksr, self.config
        ksr.tm.t_on_failure(FAILURE_ROUTE_HUNT)
        ksr.tm.t_on_branch("ksr_branch_to_sim")
        ksr.tm.t_set_fr(c.ring_ms, c.no_answer_ms)

    def _authenticated(self) -> None:
        ksr = self.ksr
        ksr.auth.consume_credentials()
        ksr.htable.sht_seti("authok", f"{ksr.pv.get('$si')}::{ksr.pv.get('$au')}", 1)

    def _relay_initial(self, to_sim: bool, sides: tuple[str, str]) -> None:
        ksr = self.ksr
        ksr.dialog.dlg_manage()
        ksr.rr.record_route()
        for name in IDENTITY_HEADERS:
            ksr.hdr.remove(name)
        ksr.pv.sets(CALLER_SIDE_VAR, sides[0])
        ksr.pv.sets(CALLEE_SIDE_VAR, sides[1])
        if sides[0] == "sim" and ksr.nathelper.nat_uac_test(NAT_TESTS) > 0:
            ksr.rr.add_rr_param(";nat=yes")
        if not self._media_request(*sides):
            return
        ksr.tm.t_on_reply("ksr_reply")
        if ksr.tm.t_relay() < 0:
            if to_sim:  # no branch left (ksr_branch_to_sim dropped it): the next SIM
                self._hunt_on()
            else:
                self._media_delete()
                ksr.sl.sl_reply_error()

    # -- kamailio.cfg's NAT_REGISTER, NAT_REQUEST, REPLY, MEDIA_* ------------------------------

    def _nat_register(self) -> None:
        ksr = self.ksr
        ksr.nathelper.fix_nated_register()
        ksr.setbflag(FLB_PING)
        if ksr.nathelper.nat_uac_test(NAT_TESTS) > 0:
            ksr.setbflag(FLB_NAT)

    def _nat_request(self) -> None:
        if self.ksr.hdr.is_present("Contact") > 0:
            self.ksr.nathelper.set_contact_alias_trim()

    def ksr_reply(self, msg) -> int:
        ksr = self.ksr
        status = int(ksr.pv.get("$rs") or 0)
        if 101 <= status <= 299:
            nets = ksr.pv.get(TRUNK_NETWORKS_VAR)
            if ksr.hdr.is_present("Contact") > 0 and (
                    not nets or ksr.ipops.is_in_subnet(ksr.pv.get("$si"), nets) < 0):
                ksr.nathelper.set_contact_alias_trim()
            self._media_reply()
        return 1

    def _media_on(self) -> bool:
        return self.config.media == "on"

    def _media_request(self, from_side: str, to_side: str) -> bool:
        """False: the call was refused (PBX_MEDIA_DOWN=refuse)."""
        ksr = self.ksr
        if not self._media_on():
            return True
        method = ksr.pv.get("$rm")
        if ksr.textops.has_body_type("application/sdp") < 0:
            if method == "INVITE":
                ksr.pv.sets(MEDIA_BACK_AVP, f"direction={to_side} direction={from_side}")
            return True
        if method == "ACK":
            if ksr.rtpengine.rtpengine_answer(MEDIA_FLAGS) < 0:
                self._media_failed()
            return True
        if method not in ("INVITE", "UPDATE"):
            return True
        if ksr.rtpengine.rtpengine_offer(f"{MEDIA_FLAGS} direction={from_side} direction={to_side}") > 0:
            ksr.setflag(FLT_OFFERED)
            return True
        return self._media_failed()

    def _media_reply(self) -> None:
        ksr = self.ksr
        if not self._media_on() or ksr.textops.has_body_type("application/sdp") < 0:
            return
        if ksr.isflagset(FLT_OFFERED):
            if ksr.rtpengine.rtpengine_answer(MEDIA_FLAGS) < 0:
                self._media_failed()
        elif ksr.pv.get(MEDIA_BACK_AVP) is not None:
            if ksr.rtpengine.rtpengine_offer(f"{MEDIA_FLAGS} {ksr.pv.get(MEDIA_BACK_AVP)}") < 0:
                self._media_failed()

    def _media_failed(self) -> bool:
        ksr = self.ksr
        if (self.config.media_down == "refuse" and ksr.is_INVITE() > 0
                and ksr.siputils.has_totag() < 0 and ksr.pv.get("$rs") is None):
            self._media_delete()
            ksr.warn(f"media relay unavailable: call refused call_id={ksr.pv.get('$ci')}\n")
            self._refuse_here(503, "Media Relay Unavailable")
            return False
        ksr.statistics.update_stat("media_unanchored", 1)
        ksr.warn(f"media relay unavailable: {ksr.pv.get('$rm')} relayed unanchored "
                 f"call_id={ksr.pv.get('$ci')}\n")
        return True

    def _media_delete(self) -> None:
        if self._media_on():
            self.ksr.rtpengine.rtpengine_delete("delete-delay=0")

    def ksr_dialog_event(self, msg, evname: str) -> int:
        """dialog event_callback: kamailio.cfg's event_route[dialog:end] and [dialog:failed]."""
        if self._media_on() and evname in ("dialog:end", "dialog:failed"):
            get = self.ksr.pv.get
            self.ksr.rtpengine.rtpengine_delete(
                f"call-id={get('$dlg(callid)')} from-tag={get('$dlg(from_tag)')} delete-delay=0")
        return 1

    def XMLRPC(self, msg, evname: str = "") -> int:  # noqa: N802 (kamailio.cfg's route XMLRPC)
        ksr, get = self.ksr, self.ksr.pv.get
        if (get("$Rp") != self.config.rpc_port or get("$si") != "127.0.0.1"
                or "<methodName>dlg.terminate_dlg</methodName>" not in (get("$rb") or "")):
            ksr.xmlrpc.xmlrpc_reply(403, "Forbidden")
            return 1
        ksr.notice("media timeout: ending the call\n")
        ksr.xmlrpc.dispatch_rpc()
        return 1

    def _hunt_on(self) -> None:
        """kamailio.cfg's route HUNT_NEXT."""
        ksr = self.ksr
        for _ in range(32):
            rc = self.hunt_next(None, ksr.pv.get(HUNT_AVP) or NULL)
            if rc == NOBODY_LEFT:
                break
            if rc != RELAY_TO_SIM:
                return
            self._arm_hunt()
            if ksr.tm.t_relay() > 0:
                return
        ksr.tm.t_reply(480, "Temporarily Unavailable")

    # -- kamailio.cfg's REQINIT, UNTRUSTED, AUTH_FAILED, BAN -----------------------------------

    def _reqinit(self) -> int | None:
        ksr = self.ksr
        if ksr.maxfwd.process_maxfwd(MAX_FORWARDS) < 0:
            ksr.sl.send_reply(483, "Too Many Hops")
            return EXIT
        get = self.ksr.pv.get
        if get("$ru") is None and _SCHEME.match(get("$(mb{s.select,1, })") or ""):
            return self._refuse_here(416, "Unsupported URI Scheme")
        if ksr.sanity.sanity_check(SANITY_CHECKS, SANITY_URIS) < 0:
            self.refused_here(None, "400 malformed request")
            return EXIT
        if (get("$cl") or 0) > (get("$(rb{s.len})") or 0):  # the body may hold NUL octets
            return self._refuse_here(400, "Content-Length Larger Than Message")
        if len(get("$rU") or "") > FIELD_MAX:
            return self._refuse_here(414, "Request-URI Too Long")
        if len(get("$fU") or "") > FIELD_MAX or len(get("$fd") or "") > 255:
            return self._refuse_here(400, "From Too Long")
        return None

    def _untrusted(self) -> int | None:
        ksr = self.ksr
        if (ksr.hdr.is_present("Authorization") < 0
                and ksr.hdr.is_present("Proxy-Authorization") < 0):
            ksr.auth.auth_challenge(self.config.realm, 1)
            return EXIT
        user, source = ksr.pv.get("$au"), ksr.pv.get("$si")
        if (user and ksr.htable.sht_get("userlock", user) is not None
                and ksr.htable.sht_get("authok", f"{source}::{user}") is None):
            return self._refuse_here(403, "Forbidden")
        if ksr.pv.get(SIMS_LOADED_VAR) == 1:
            return self._verify_sim(user)
        return None

    def _verify_sim(self, user: str | None) -> int | None:
        """kamailio.cfg's route VERIFY_SIM."""
        ksr = self.ksr
        if not user:  # credentials in a scheme we do not know: challenge with ours
            ksr.auth.auth_challenge(self.config.realm, 1)
            return EXIT
        entry = ksr.htable.sht_get(SIMS_TABLE, user)
        if entry is None:
            self._auth_failed()
            return self._refuse_here(403, "Forbidden")
        ha1, _, state = entry.partition(":")
        rc = ksr.auth.pv_auth_check(self.config.realm, ha1, 1, 1)
        if rc < 0:
            if rc in (-2, -3, -8):
                self._auth_failed()
                return self._refuse_here(403, "Forbidden")
            ksr.auth.auth_challenge(self.config.realm, 1)
            return EXIT
        if state != "0":
            return self._refuse_here(403, "SIM Inactive" if state == "1" else "Manager Inactive")
        self._authenticated_here = True
        if ksr.pv.get("$rm") == "REGISTER":
            self._nat_register()
            self._authenticated()
            if ksr.registrar.save("location", 0) < 0:
                ksr.sl.sl_reply_error()
            return EXIT
        return None

    def _refuse_here(self, code: int, reason: str) -> int:
        self.ksr.sl.send_reply(code, reason)
        self.refused_here(None, f"{code} {reason}")
        return EXIT

    def _auth_failed(self) -> None:
        ksr, c = self.ksr, self.config
        source, user = ksr.pv.get("$si"), ksr.pv.get("$au")
        failures = ksr.htable.sht_inc("authfail", source)
        ksr.htable.sht_setex("authfail", source, c.ban_s)
        if failures >= c.auth_failures:
            self._ban(f"password-guessing failures={failures}")
        if not user:
            return
        failures = ksr.htable.sht_inc("authfail", "u:" + user)
        ksr.htable.sht_setex("authfail", "u:" + user, c.ban_s)
        if failures >= c.user_failures and ksr.htable.sht_get("userlock", user) is None:
            ksr.htable.sht_seti("userlock", user, 1)
            ksr.htable.sht_setex("userlock", user, c.ban_s)
            ksr.warn(f"locked user={user[:64]} source={source} failures={failures} "
                     f"for={c.ban_s} s: it answers only sources it authenticated from\n")

    def _ban(self, why: str) -> None:
        ksr, source = self.ksr, self.ksr.pv.get("$si")
        if ksr.htable.sht_get("ipban", source) is None:
            ksr.htable.sht_seti("ipban", source, 1)
            ksr.htable.sht_setex("ipban", source, self.config.ban_s)
            ksr.warn(f"banned source={source} reason={why} for={self.config.ban_s} s\n")

    # -- kamailio.cfg's WITHINDLG ---------------------------------------------------------------

    def _within_dialog(self, method: str) -> int:
        ksr = self.ksr
        if ksr.rr.loose_route() > 0:
            if ksr.dialog.is_known_dlg() < 0:
                if method != "ACK":
                    ksr.sl.send_reply(481, "Call/Transaction Does Not Exist")
                return self.refused_here(None, "481 Call/Transaction Does Not Exist")
            ksr.textops.subst_hf("From", "/^[^<]*</</", "f")
            ksr.textops.subst_hf("To", "/^[^<]*</</", "f")
            if ksr.pv.get(DIALOG_TRUNK_VAR) is not None and ksr.rr.is_direction("downstream") > 0:
                ksr.tm.t_on_failure(FAILURE_ROUTE_INDIALOG_AUTH)
            if ksr.pv.get("$du") is None:
                ksr.nathelper.handle_ruri_alias()
            if ksr.rr.check_route_param("nat=yes") > 0:
                ksr.set_forward_no_connect()
            if not self._trunk:
                self._nat_request()
            sides = (ksr.pv.get(CALLER_SIDE_VAR) or "sim", ksr.pv.get(CALLEE_SIDE_VAR) or "sim")
            if ksr.rr.is_direction("upstream") > 0:
                sides = sides[::-1]
            self._media_request(*sides)  # in a dialog, never refused
            if method in ("INVITE", "UPDATE"):
                ksr.tm.t_on_reply("ksr_reply")
            ksr.tm.t_relay()
            return 1
        if method == "ACK":
            if ksr.tm.t_check_trans() > 0:
                ksr.tm.t_relay()
            return 1
        ksr.sl.send_reply(404, "Not Here")
        return 1

    def ksr_branch_to_sim(self, msg) -> int:
        """kamailio.cfg's branch_route TO_SIM: never a branch to a carrier's address."""
        ksr = self.ksr
        nets = ksr.pv.get(TRUNK_NETWORKS_VAR)
        if nets and ksr.ipops.is_in_subnet(ksr.pv.get("$nh(d)"), nets) > 0:
            ksr.warn(f"refused branch to a trunk address dst={ksr.pv.get('$nh(d)')}\n")
            ksr.set_drop()
            return EXIT
        if ksr.isbflagset(FLB_NAT):
            ksr.rr.add_rr_param(";nat=yes")
        return 1

    def STRAY_REPLY(self, msg, *_args) -> int:  # noqa: N802 (tm on_sl_reply, as in kamailio.cfg)
        self.ksr.set_drop()
        return 0

    # -- failure routes (kamailio.cfg's names) -------------------------------------------------

    def HUNT(self, msg) -> int:  # noqa: N802
        if self.ksr.tm.t_is_canceled() > 0:
            return 1
        self._hunt_on()
        return 1

    def EGRESS(self, msg) -> int:  # noqa: N802
        ksr = self.ksr
        if ksr.tm.t_is_canceled() > 0:
            return 1
        get = ksr.pv.get
        fields = SEPARATOR.join(_escaped(get(n)) for n in (EGRESS_AVP, "$T_reply_code", EGRESS_AUTH_AVP))
        if self.egress_next(msg, fields) == RELAY:
            ksr.tm.t_on_failure(FAILURE_ROUTE_EGRESS)
            if ksr.tm.t_relay() < 0:
                ksr.tm.t_reply(500, "Server Internal Error")
        return 1

    def INDIALOG_AUTH(self, msg) -> int:  # noqa: N802
        ksr = self.ksr
        if ksr.tm.t_is_canceled() > 0:
            return 1
        fields = f"{_escaped(ksr.pv.get(DIALOG_TRUNK_VAR))}|{ksr.pv.get('$T_reply_code')}"
        if self.indialog_auth(msg, fields) == RELAY:
            ksr.tm.t_relay()
        return 1
