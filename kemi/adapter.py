"""The thin KSR adapter: reads the request, asks the decision core, applies the result.

Only this module, and its full-KEMI subclass in kemi_wiring.py, calls KSR (the object is
passed in, so tests drive it with a fake).
"""

from __future__ import annotations

import json
import os
import time

from .config import Config
from .db import DatabaseError
from .decision import (AUTHENTICATE_TO_TRUNK, NOBODY_REACHABLE, TRY_NEXT_TRUNK,
                       UNKNOWN_CREDENTIALS, Attempt,
                       Authenticate, Call, CallOut, Register, Reply, Ring, after_trunk_failure,
                       auth_verdict, check_sim, decide)
from .directory import Directory
from .model import Sim
from .phone import uri_user

# Shared with kamailio.cfg (tests/test_wiring.py checks both sides).
FAILURE_ROUTE_HUNT = "HUNT"
FAILURE_ROUTE_EGRESS = "EGRESS"
FAILURE_ROUTE_INDIALOG_AUTH = "INDIALOG_AUTH"  # armed by kamailio.cfg (WITHINDLG)
# The trunk of an outbound call whose carrier may challenge in-dialog requests too (set
# only for trunks with credentials; kamailio.cfg arms INDIALOG_AUTH when it is set).
DIALOG_TRUNK_VAR = "$dlg_var(trunk)"
HUNT_AVP = "$avp(hunt)"  # SIMs still to ring, comma-separated
EGRESS_AVP = "$avp(egress)"  # trunk attempts still to make, JSON
EGRESS_AUTH_AVP = "$avp(egress_auth)"  # the trunk already answered with credentials
# uac_auth reads the carrier's credentials from these (kamailio.cfg modparams).
UAC_USER_AVP, UAC_PASSWORD_AVP = "$avp(auser)", "$avp(apass)"
LOCATION_TABLE = "location"
REFUSALS_TABLE, PENDING_TABLE = "refusals", "pending"  # kamailio.cfg route LOG_REFUSAL
# Who authenticated as which SIM from where (kamailio.cfg route UNTRUSTED answers a locked
# username only from these sources).
AUTH_OK_TABLE = "authok"
# The carriers' source networks, for kamailio.cfg's own trust decisions (ban exemption,
# challenge without Python, branches to SIMs): published by watch_changes.
TRUNK_NETWORKS_VAR, TRUNKS_LOADED_VAR = "$shv(trunk_nets)", "$shv(trunks_loaded)"
DATABASE_DOWN = Reply(503, "Service Unavailable")
STATS_TABLE, DB_GATE_TABLE = "stats", "dbwait"  # kamailio.cfg htables
STATS_EVERY_S = 1.0


# kamailio.cfg hands route_initial the request's fields in python_exec's parameter: one
# crossing instead of five KSR reads. Kamailio prints a missing value as "<null>". Only the
# From user could hold a space (the request line is space-delimited), so it comes last.
REQUEST_FIELDS = "$rm $si $rU $fd $fU"
NULL = "<null>"
# What route_initial answers kamailio.cfg: DONE (replied, or nothing more to do); RELAY /
# RELAY_TO_SIM: the request is ready, kamailio.cfg starts the dialog (dlg_manage,
# record_route, identity headers removed) and relays it natively (route RELAY_INITIAL;
# toward SIMs every branch is checked not to aim at a carrier): each KSR call made from
# Python instead costs a crossing; AUTH_FAILED: refused credentials (an unknown SIM, a wrong
# password, an auth user that is not the From user), counted toward a ban and answered
# 403 Forbidden by kamailio.cfg (route AUTH_FAILED). Never 0, which would end
# kamailio.cfg's route.
DONE, RELAY, RELAY_TO_SIM, AUTH_FAILED = 1, 2, 3, 4
# Identity headers a caller may not choose for itself (RFC 3325 trust domain), removed
# by kamailio.cfg; Python appends the PAI it vouches for.
IDENTITY_HEADERS = ("P-Asserted-Identity", "P-Preferred-Identity", "Remote-Party-ID")


class SharedGate:
    """While the database is slow, at most `limit` worker processes wait on it at once,
    counted in a shared htable: misses beyond that get 503 at once instead of queueing
    behind it, so cached calls keep their workers. While it answers fast nobody is turned
    away (a cold cache at full load makes every worker query at once, harmlessly)."""

    def __init__(self, ksr, limit: int):
        self.ksr, self.limit = ksr, limit

    def enter(self) -> bool:
        htable = self.ksr.htable
        if htable.sht_inc(DB_GATE_TABLE, "waiting") <= self.limit or not htable.sht_get(
                DB_GATE_TABLE, "slow"):
            return True
        htable.sht_dec(DB_GATE_TABLE, "waiting")
        return False

    def leave(self) -> None:
        self.ksr.htable.sht_dec(DB_GATE_TABLE, "waiting")

    def slow(self) -> None:
        """A query overran: the limit holds for the next seconds (htable autoexpire)."""
        self.ksr.htable.sht_seti(DB_GATE_TABLE, "slow", 1)


class Router:
    """The object app_python3 calls: one instance per Kamailio process."""

    def __init__(self, ksr, config: Config, directory: Directory, clock=time.time):
        self.ksr = ksr
        self.config = config
        self.directory = directory
        self._clock = clock
        self._stats_due = 0.0
        # Routing lines are formatted only when the log level shows them (2 = info).
        self._verbose = config.log_level >= 2

    # -- entry points (names used by kamailio.cfg python_exec) ---------------------

    def child_init(self, rank: int) -> int:
        return 0

    def route_initial(self, msg, fields: str = "", *_args) -> int:
        """Initial out-of-dialog request: authenticate, decide, apply. `fields` are
        REQUEST_FIELDS as kamailio.cfg printed them."""
        try:
            self.directory.refresh_if_changed()
            if self._clock() >= self._stats_due:
                self._publish_stats()
            call, host = self._read_call(fields)
            decision = decide(call, self.directory, self.config.region)
            if isinstance(decision, Authenticate):
                sim = self._authenticate(call)
                if not isinstance(sim, Sim):
                    return sim
                call = Call(**{**call.__dict__, "sim": sim,
                                 "privacy": self.ksr.pv.get("$hdr(Privacy)")})
                decision = decide(call, self.directory, self.config.region)
            return self._apply(call, decision, host)
        except DatabaseError as exc:
            # Data needed here was never cached and the database cannot answer. No
            # Retry-After: a carrier would take it as "the whole proxy is down" and stop
            # sending the calls we can still route from cache.
            self.ksr.sl.send_reply(DATABASE_DOWN.code, DATABASE_DOWN.reason)
            method, source, ruri_user, _, from_user = _split_fields(fields)
            self._log_refusal(source, method, from_user, ruri_user, DATABASE_DOWN.code,
                              f"database unavailable: {exc}")
        except Exception as exc:  # never leave the client retransmitting into silence
            self._crash("route_initial", exc)
        return DONE

    def egress_next(self, msg, *_args) -> int:
        """Failure route of an outbound call: answer a carrier challenge, or fail over."""
        try:
            ksr = self.ksr
            attempts = tuple(Attempt(**a) for a in json.loads(ksr.pv.get(EGRESS_AVP) or "[]"))
            status = ksr.pv.get("$T_reply_code") or 0
            authenticated = ksr.pv.get(EGRESS_AUTH_AVP) == attempts[0].trunk if attempts else False
            action = after_trunk_failure(status, attempts, authenticated) if attempts else None
            if action == AUTHENTICATE_TO_TRUNK:
                first = attempts[0]
                ksr.pv.sets(UAC_USER_AVP, first.auth_username)
                ksr.pv.sets(UAC_PASSWORD_AVP, first.auth_password)
                ksr.pv.sets(EGRESS_AUTH_AVP, first.trunk)
                if ksr.uac.uac_auth() > 0:
                    ksr.tm.t_on_failure(FAILURE_ROUTE_EGRESS)
                    ksr.tm.t_relay()
            elif action == TRY_NEXT_TRUNK:
                if self._verbose:
                    ksr.info(f"trunk {attempts[0].trunk} failed with {status}, trying "
                             f"{attempts[1].trunk}\n")
                self._egress(attempts[1:], failover=True)
                if ksr.tm.t_relay() < 0:
                    ksr.tm.t_reply(500, "Server Internal Error")
            # otherwise tm relays the best reply to the SIM
        except Exception as exc:
            self._crash("egress_next", exc, stateful=True)
        return 1

    def indialog_auth(self, msg, *_args) -> int:
        """Failure route of an in-dialog request toward a carrier: answer its challenge
        once with the trunk's credentials (a second challenge goes back to the SIM)."""
        try:
            ksr = self.ksr
            status = ksr.pv.get("$T_reply_code") or 0
            name = ksr.pv.get(DIALOG_TRUNK_VAR)
            trunk = next((t for t in self.directory.trunks() if t.name == name), None)
            if status in (401, 407) and trunk is not None and trunk.auth_username:
                ksr.pv.sets(UAC_USER_AVP, trunk.auth_username)
                ksr.pv.sets(UAC_PASSWORD_AVP, trunk.auth_password or "")
                if ksr.uac.uac_auth() > 0:
                    ksr.tm.t_relay()
        except Exception as exc:
            self._crash("indialog_auth", exc, stateful=True)
        return 1

    def refused_here(self, msg, what: str = "", *_args) -> int:
        """kamailio.cfg refused the request itself ("<code> <reason>"): log it like ours."""
        try:
            code, _, reason = what.partition(" ")
            get = self.ksr.pv.get
            self._log_refusal(get("$si"), get("$rm"), get("$fU"), get("$rU"), int(code), reason)
        except Exception as exc:
            self._crash("refused_here", exc, reply=False)
        return 1

    def watch_changes(self, msg=None, *_args) -> int:
        """rtimer, every 100 ms in a process of its own: publish the trunk networks to
        kamailio.cfg as soon as a trunk change is committed, with no request needed."""
        try:
            networks = self.directory.trunk_networks_if_changed()
            if networks is not None:
                self.ksr.pv.sets(TRUNK_NETWORKS_VAR, ",".join(networks))
                self.ksr.pv.seti(TRUNKS_LOADED_VAR, 1)
                self.ksr.info(f"trunk networks: {','.join(networks) or '(none)'}\n")
        except Exception as exc:
            self._crash("watch_changes", exc, reply=False)
        return 1

    def hunt_next(self, msg, *_args) -> int:
        """Failure route: the SIM did not answer; ring the next one or give up."""
        try:
            remaining = tuple(u for u in (self.ksr.pv.get(HUNT_AVP) or "").split(",") if u)
            while remaining:
                ringing = self._aim_at_first_registered(remaining)
                if ringing is None:
                    break
                if self.ksr.tm.t_relay() > 0:
                    return 1
                remaining = remaining[ringing + 1:]
            self.ksr.tm.t_reply(NOBODY_REACHABLE.code, NOBODY_REACHABLE.reason)
        except Exception as exc:
            self._crash("hunt_next", exc, stateful=True)
        return 1

    def _publish_stats(self) -> None:
        """Cache counters to shared memory, once a second per worker, for kamcmd
        (htable.dump stats): Python's own counters are private to each process."""
        self._stats_due = self._clock() + STATS_EVERY_S
        d, pid = self.directory, os.getpid()
        breaker = getattr(getattr(d, "db", None), "breaker_open", False)
        for name, value in (("hits", d.hits), ("misses", d.misses), ("stale", d.stale_serves),
                            ("generation", d.generation), ("breaker_open", int(breaker))):
            self.ksr.htable.sht_seti(STATS_TABLE, f"{pid}.{name}", value)

    # -- reading -------------------------------------------------------------------

    def _read_call(self, fields: str) -> tuple[Call, str | None]:
        """What the decision reads, and the From host; each KSR crossing costs, so headers
        that only matter from a trunk (forwarding, asserted identity) are read only from a
        trunk, and the SIM's Privacy only once it has authenticated."""
        method, source, ruri_user, from_host, from_user = _split_fields(fields)
        if self.directory.trunk_for_source(source) is None:
            return Call(method, source, ruri_user, from_user), from_host
        get = self.ksr.pv.get
        pai = get("$ai")
        return Call(method, source, ruri_user, from_user, pai_user=uri_user(pai) if pai else None,
                    diversion=get("$(hdr(Diversion)[*])"),
                    history_info=get("$(hdr(History-Info)[*])")), from_host

    # -- authentication --------------------------------------------------------------

    def _authenticate(self, call: Call):
        """The authenticated Sim, or what route_initial answers when there is none. The
        digest is checked before anything about the SIM is said, so that an inactive SIM
        and a wrong password look alike to a guesser. Refused credentials are answered by
        kamailio.cfg (route AUTH_FAILED: 403 Forbidden, once it counted the failure toward
        a ban, so that no next guess can overtake the ban)."""
        ksr = self.ksr
        user = ksr.pv.get("$au")
        if not user:
            ksr.auth.auth_challenge(self.config.realm, 1)
            return DONE
        sim = self.directory.sim(user)
        if sim is None:
            return AUTH_FAILED
        # HA1 from the routing data (flags 1); checks 1: auth user must be the From/To user.
        verdict = auth_verdict(ksr.auth.pv_auth_check(self.config.realm, sim.ha1, 1, 1))
        if isinstance(verdict, Authenticate):
            ksr.auth.auth_challenge(self.config.realm, 1)
            return DONE
        if verdict is not None:
            return AUTH_FAILED
        ksr.auth.consume_credentials()
        ksr.htable.sht_seti(AUTH_OK_TABLE, f"{call.source_ip}::{user}", 1)
        refusal = check_sim(sim)
        if refusal is not None:
            self._refuse(call, refusal, claimed=user)
            return DONE
        return sim

    # -- applying ----------------------------------------------------------------------

    def _apply(self, call: Call, decision, host: str | None) -> int:
        if isinstance(decision, Ring):
            if self._verbose:
                self.ksr.info(f"ring via={decision.via} to={call.ruri_user} "
                              f"district=\"{decision.display}\" caller={decision.caller} "
                              f"hunt={','.join(decision.targets)}\n")
            return self._ring(decision, host)
        if isinstance(decision, CallOut):
            if self._verbose:
                self.ksr.info(f"call out sim={call.sim.username} to={decision.called} "
                              f"caller={decision.caller} anonymous={decision.anonymous} "
                              f"trunks={','.join(a.trunk for a in decision.attempts)}\n")
            return self._call_out(decision)
        if isinstance(decision, Register):
            if self.ksr.registrar.save(LOCATION_TABLE, 0) < 0:
                self.ksr.sl.sl_reply_error()
        elif isinstance(decision, Reply):
            if decision.code >= 300:
                self._refuse(call, decision)
            else:
                self.ksr.sl.send_reply(decision.code, decision.reason)
        else:
            raise TypeError(f"unknown decision {decision!r}")
        return DONE

    def _ring(self, ring: Ring, host: str | None) -> int:
        ksr = self.ksr
        if self._aim_at_first_registered(ring.targets) is None:
            ksr.sl.send_reply(NOBODY_REACHABLE.code, NOBODY_REACHABLE.reason)
            return DONE
        if ring.display is not None:
            # uac restores the original From on every in-dialog request (Record-Route param).
            ksr.uac.uac_replace_from(_quoted(ring.display), f"sip:{ring.caller}@{host}")
        if ring.pai:
            ksr.hdr.append(f"P-Asserted-Identity: <sip:{ring.pai}@{host}>\r\n")
        return RELAY_TO_SIM

    def _call_out(self, out: CallOut) -> int:
        ksr = self.ksr
        host = self.config.sip_addr
        if out.anonymous:
            # RFC 3323: the client sees nobody; the carrier still gets the identity in
            # PAI, with the SIM's Privacy header telling it to withhold it (RFC 3325).
            ksr.uac.uac_replace_from('"Anonymous"', "sip:anonymous@anonymous.invalid")
        else:
            ksr.uac.uac_replace_from("", f"sip:{out.caller}@{host}")
        ksr.hdr.append(f"P-Asserted-Identity: <sip:{out.caller}@{host}>\r\n")
        self._egress(out.attempts)
        return RELAY

    def _egress(self, attempts: tuple[Attempt, ...], failover: bool = False) -> None:
        """Aim the request at the first trunk; the rest are tried from failure_route EGRESS."""
        ksr = self.ksr
        ksr.pv.sets(EGRESS_AVP, json.dumps([a.__dict__ for a in attempts]))
        ksr.seturi(attempts[0].ruri)
        ksr.tm.t_on_failure(FAILURE_ROUTE_EGRESS)
        # Its carrier may challenge the BYE as well. After a failover the name is always
        # replaced: another carrier must never get this trunk's credentials.
        if attempts[0].auth_username or failover:
            ksr.pv.sets(DIALOG_TRUNK_VAR, attempts[0].trunk)

    def _aim_at_first_registered(self, targets: tuple[str, ...]) -> int | None:
        """Aim the request at the first target with a registered contact and remember the
        rest for failure_route HUNT; its index, or None when nobody is registered."""
        ksr = self.ksr
        for i, user in enumerate(targets):
            if ksr.registrar.lookup_uri(LOCATION_TABLE, f"sip:{user}@{self.config.realm}") < 0:
                continue
            if i + 1 < len(targets) or i > 0:  # somebody left to ring, or a list to shorten
                ksr.pv.sets(HUNT_AVP, ",".join(targets[i + 1:]))
            ksr.tm.t_on_failure(FAILURE_ROUTE_HUNT)
            ksr.tm.t_set_fr(self.config.ring_ms, self.config.no_answer_ms)
            if self._verbose:
                ksr.info(f"ringing sim={user} then={','.join(targets[i + 1:]) or '-'}\n")
            return i
        return None

    # -- refusals and errors ------------------------------------------------------------

    def _refuse(self, call: Call, reply: Reply, claimed: str | None = None) -> None:
        self.ksr.sl.send_reply(reply.code, reply.reason)
        self._log_refusal(call.source_ip, call.method, claimed or call.from_user, call.ruri_user,
                          reply.code, reply.reason)

    def _log_refusal(self, source, method, claimed, called, code: int, reason: str) -> None:
        # One line per source per second across all workers (shared htable, kamailio.cfg):
        # a scanner cannot flood the log; the format is fail2ban-friendly.
        htable = self.ksr.htable
        if htable.sht_inc(REFUSALS_TABLE, f"{source}::{int(self._clock())}") != 1:
            htable.sht_inc(PENDING_TABLE, source)
            return
        suppressed = htable.sht_get(PENDING_TABLE, source) or 0
        htable.sht_seti(PENDING_TABLE, source, 0)
        self.ksr.notice(f"refused source={source} method={method} from={_short(claimed)} "
                        f"to={_short(called)} code={code} reason=\"{reason}\" "
                        f"suppressed={suppressed}\n")

    def _crash(self, where: str, exc: Exception, stateful: bool = False, reply: bool = True) -> None:
        ksr = self.ksr
        try:
            call_id = ksr.pv.get("$ci")
        except Exception:
            call_id = "?"
        ksr.err(f"{where} failed call_id={call_id}: {type(exc).__name__}: {exc}\n")
        if not reply:
            return
        try:
            if stateful:
                ksr.tm.t_reply(500, "Server Internal Error")
            else:
                ksr.sl.send_reply(500, "Server Internal Error")
        except Exception:
            pass


def _split_fields(fields: str) -> list[str | None]:
    """REQUEST_FIELDS as printed by kamailio.cfg, None for "<null>" (or absent)."""
    values = fields.split(" ", 4)
    values += [NULL] * (5 - len(values))
    return [None if v == NULL or not v else v for v in values]


def _short(value) -> str:
    return str(value)[:64]


def _quoted(display: str) -> str:
    return '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'
