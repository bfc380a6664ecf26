"""The full-KEMI wiring (kamailio.cfg with -A FULL_KEMI: cfgengine "python"): every request
enters Python, SIP mechanics included. Kept to measure it against the default wiring, where
kamailio.cfg does the mechanics natively and calls Python once per initial request
(make bench-sip compares both; README, Wire speed)."""

from __future__ import annotations

from .adapter import (DIALOG_TRUNK_VAR, FAILURE_ROUTE_INDIALOG_AUTH, IDENTITY_HEADERS, NULL,
                      RELAY, REQUEST_FIELDS, Router)

MAX_FORWARDS = 10


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
        if ksr.maxfwd.process_maxfwd(MAX_FORWARDS) < 0:
            ksr.sl.send_reply(483, "Too Many Hops")
            return 1
        if ksr.sanity.sanity_check(17895, 7) < 0:
            return self.refused_here(msg, "400 malformed request")
        method = ksr.pv.get("$rm")
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
        if method == "OPTIONS" and ksr.pv.get("$rU") is None:
            ksr.sl.send_reply(200, "OK")
            return 1
        get = ksr.pv.get
        fields = " ".join(NULL if value is None else str(value)
                          for value in (get(name) for name in REQUEST_FIELDS.split()))
        if self.route_initial(msg, fields) == RELAY:
            self._relay_initial()
        return 1

    def _relay_initial(self) -> None:
        """kamailio.cfg's route RELAY_INITIAL."""
        ksr = self.ksr
        ksr.dialog.dlg_manage()
        ksr.rr.record_route()
        for name in IDENTITY_HEADERS:
            ksr.hdr.remove(name)
        if ksr.tm.t_relay() < 0:
            ksr.sl.sl_reply_error()

    def _within_dialog(self, method: str) -> int:
        ksr = self.ksr
        if ksr.rr.loose_route() > 0:
            if ksr.dialog.is_known_dlg() < 0:
                if method != "ACK":
                    ksr.sl.send_reply(481, "Call/Transaction Does Not Exist")
                return self.refused_here(None, "481 not a known dialog")
            ksr.textops.subst_hf("From", "/^[^<]*</</", "f")
            ksr.textops.subst_hf("To", "/^[^<]*</</", "f")
            if ksr.pv.get(DIALOG_TRUNK_VAR) is not None and ksr.rr.is_direction("downstream") > 0:
                ksr.tm.t_on_failure(FAILURE_ROUTE_INDIALOG_AUTH)
            ksr.tm.t_relay()
            return 1
        if method == "ACK":
            if ksr.tm.t_check_trans() > 0:
                ksr.tm.t_relay()
            return 1
        ksr.sl.send_reply(404, "Not Here")
        return 1

    # Failure routes armed by Router (t_on_failure) are Python methods in this wiring.
    def HUNT(self, msg) -> int:  # noqa: N802 (the name kamailio.cfg uses)
        return 1 if self.ksr.tm.t_is_canceled() > 0 else self.hunt_next(msg)

    def EGRESS(self, msg) -> int:  # noqa: N802
        return 1 if self.ksr.tm.t_is_canceled() > 0 else self.egress_next(msg)

    def INDIALOG_AUTH(self, msg) -> int:  # noqa: N802
        return 1 if self.ksr.tm.t_is_canceled() > 0 else self.indialog_auth(msg)
