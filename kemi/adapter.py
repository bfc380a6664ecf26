"""The thin KSR adapter: gathers the facts a request needs, asks the decision core once,
and hands the result to kamailio.cfg as one plan field and a return code.

The only module that calls KSR (the object is passed in, so tests drive it with a fake).
Each KSR call is a crossing from Python into Kamailio and costs: the request's fields come
in python_exec's parameter, and the SIP mechanics of applying a decision (rewriting From,
adding the PAI, aiming, arming failure routes) are kamailio.cfg's, driven by PLAN_AVP.
"""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

from .config import Config, ConfigError
from .decision import (AUTH_FAILED, AUTHENTICATE_TO_TRUNK, CHALLENGE, DATABASE_DOWN,
                       EMERGENCY_NUMBERS, NO_CREDENTIALS, NOBODY_REACHABLE, REFUSED, REGISTER,
                       STALE, TRY_NEXT_TRUNK,
                       CallOut, Facts, Reply, Request, Ring, Verified, after_trunk_failure,
                       answers_indialog_challenge, auth_verdict, carries, decide,
                       first_reachable, numbers_to_look_up, sticky_to_look_up)
from .db import DatabaseError
from .directory import Directory
from .masking import Masker
from .phone import to_e164, uri_user
from .plans import ruri
from .records import Shipper, control_socket, rec_field

# What route_initial answers kamailio.cfg (never 0, which would end kamailio.cfg's route):
DONE = 1  # Python replied, or there is nothing more to do
RELAY = 2  # out to a carrier: PLAN_AVP holds From display, From URI, PAI URI, Request-URI, trunk
RELAY_TO_SIM = 3  # ring a SIM (aimed already): PLAN_AVP holds display, From URI, PAI URI, hunt
AUTH_FAILED_RC = 4  # refused credentials: kamailio.cfg counts them (bans) and answers 403
SAVE_REGISTRATION = 5  # an authenticated REGISTER: kamailio.cfg saves the contact
CHALLENGE_RC = 6  # no or stale credentials: kamailio.cfg challenges
NOBODY_LEFT = 7  # hunting found nobody left: kamailio.cfg records it and answers 480

# Names shared with kamailio.cfg (tests/test_wiring.py checks both sides).
FAILURE_ROUTE_HUNT = "HUNT"
FAILURE_ROUTE_EGRESS = "EGRESS"
FAILURE_ROUTE_INDIALOG_AUTH = "INDIALOG_AUTH"  # armed by kamailio.cfg (WITHINDLG)
PLAN_AVP = "$avp(plan)"  # the decision's fields for kamailio.cfg, '|'-separated
HUNT_AVP = "$avp(hunt)"  # SIMs still to ring, comma-separated
EGRESS_AVP = "$avp(egress)"  # the outbound call's state: SIM, called number, hop, kind
EGRESS_AUTH_AVP = "$avp(egress_auth)"  # the trunk already answered with credentials
UAC_USER_AVP, UAC_PASSWORD_AVP = "$avp(auser)", "$avp(apass)"  # uac_auth reads these
DIALOG_TRUNK_VAR = "$dlg_var(trunk)"  # a trunk with credentials: in-dialog challenges
DIALOG_SIM_VAR = "$dlg_var(sim)"  # the SIM ringing now, for the call's record
RECORD_AVP = "$avp(rec)"  # an attempt refused before anything rang (acc db_extra)
ATTEMPT_TABLE = "attempt"  # its spool file (kemi/records.py)
LOCATION_TABLE = "location"
REFUSALS_TABLE, PENDING_TABLE = "refusals", "pending"  # kamailio.cfg route LOG_REFUSAL
AUTH_OK_TABLE = "authok"  # set by kamailio.cfg once a SIM authenticated from a source
# The carriers' source networks, for kamailio.cfg's own trust decisions (ban exemption,
# challenge without Python, branches to SIMs): published by watch_changes.
TRUNK_NETWORKS_VAR, TRUNKS_LOADED_VAR = "$shv(trunk_nets)", "$shv(trunks_loaded)"
STATS_TABLE, DB_GATE_TABLE = "stats", "dbwait"  # kamailio.cfg htables
STATS_EVERY_S = 1.0
# Metrics declared in kamailio.cfg (xhttp_prom): what Python sets or counts itself.
REFUSALS, FAILOVERS = "pbx_refusals_total", "pbx_failovers_total"
WORKER_GAUGES = ("pbx_cache_hits", "pbx_cache_misses", "pbx_cache_stale_serves",
                 "pbx_changes_applied", "pbx_db_breaker_open")  # label: the worker's pid
DB_WAITING = "pbx_db_waiting"
MEMO_SIZE = 4096  # decisions remembered per worker

# kamailio.cfg hands route_initial the request's fields in python_exec's parameter, '|'
# between them ('|' inside one arrives as %7C: s.replace): one crossing instead of ten KSR
# reads. Kamailio prints a missing value as "<null>".
REQUEST_FIELDS = ("$rm", "$si", "$rU", "$fU", "$au", "$var(authenticated)", "$ai",
                  "$(hdr(Diversion)[*])", "$(hdr(History-Info)[*])", "$hdr(Privacy)")
# The SIMs' digest HA1 and state, published by the change watcher for kamailio.cfg, which
# verifies credentials itself once they are loaded (route UNTRUSTED): "<ha1>:<state>".
SIMS_TABLE, SIMS_LOADED_VAR = "sims", "$shv(sims_loaded)"
SIM_ACTIVE, SIM_INACTIVE, MANAGER_INACTIVE = "0", "1", "2"
NULL, SEPARATOR, ESCAPED = "<null>", "|", "%7C"
EGRESS_OUT, EGRESS_EMERGENCY = "o", "e"
MASKED = "1"  # a plan field: the SIM's side of the call is masked
STICKY = "1"  # a record field: the first SIM rang because the client was sticky to it
# The call's direction for the metrics (kamailio.cfg pbx_calls_total): a plan field too.
INBOUND, OUTBOUND, INTERNAL, EMERGENCY = "inbound", "outbound", "internal", "emergency"
ANONYMOUS_DISPLAY, ANONYMOUS_URI = '"Anonymous"', "sip:anonymous@anonymous.invalid"


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
        # Decisions already made, by request fields (decide is pure: the same fields over
        # the same plans decide the same), emptied whenever the plans change. A worker runs
        # its Python cold between calls (caches flushed by everything else the machine
        # does): a first decide costs ~40 us there, a repeated one almost nothing.
        self._decided: dict[str, object] = {}
        self._decided_at = -1  # the directory's plans_changed they were made under
        self._frozen_at = 0
        self._region = config.region
        self._realm = config.realm
        # Routing lines are formatted only when the log level shows them (2 = info).
        self._verbose = config.log_level >= 2
        # Prometheus metrics (kamailio.cfg counts what it knows; Python its own refusals,
        # failovers and caches): KSR.xhttp_prom exists only when they are on.
        self._metrics = bool(config.metrics_port) and config.wiring == "native"
        # Call records (kemi/records.py): kamailio.cfg's acc writes the calls; Python the
        # attempts refused before anything rang, and ships them all (route SHIP).
        self._records = config.records == "on" and config.wiring == "native"
        self._shipper: Shipper | None = None
        # Masking keys: read at start (kemi.stack refuses to start on a bad list), and again
        # when their file changes (a rotation needs no restart), checked once a second.
        self.masker: Masker | None = None
        self._keys_stamp = None
        self._load_keys()

    # -- entry points (names used by kamailio.cfg python_exec) ---------------------------------

    def child_init(self, rank: int) -> int:
        return 0

    def route_initial(self, msg, fields: str = "", *_args) -> int:
        """An initial out-of-dialog request: the facts, one decision, the plan for kamailio.cfg."""
        try:
            d = self.directory
            d.refresh()
            if self._clock() >= self._stats_due:
                self._publish_stats()
                self._load_keys()
            if d.plans_changed != self._decided_at or len(self._decided) >= MEMO_SIZE:
                self._decided.clear()
                self._decided_at = d.plans_changed
                if d.full_loads != self._frozen_at:
                    # Every plan just loaded lives until the next full load: out of the
                    # garbage collector's sight, full collections stop walking 100,000 SIMs.
                    self._frozen_at = d.full_loads
                    gc.freeze()
            known = self._decided.get(fields)
            if known is not None and not _has_relation(d, known[3]):
                d.hits += 1  # routed from cache: the metric counts remembered decisions too
                return self._apply(*known[:3], fields)
            req, auth_user, verified = parse_request(fields)
            trunk = d.trunk_for_source(req.source_ip)
            auth = None if trunk is not None else self._authenticate(auth_user, verified)
            sim = auth.plan if isinstance(auth, Verified) else None
            numbers = {n: d.number(n) for n in numbers_to_look_up(req, trunk, self._region, sim,
                                                                   self.masker)}
            emergency = (d.emergency(sim) if sim is not None
                         and req.ruri_user in EMERGENCY_NUMBERS else None)
            sticky, probe = {}, ()
            if trunk is not None:
                companies = sticky_to_look_up(req, numbers, self._region)
                if companies:
                    client = to_e164(req.from_user, self._region)
                    sticky = {c: d.sticky(c, client) for c in companies}
                    probe = tuple((c, client) for c in companies)
            decision = decide(req, Facts(trunk, auth, numbers, emergency, self.masker, sticky,
                                         self._clock()), self._region)
            if isinstance(decision, (Ring, CallOut)) and (trunk is not None or verified) \
                    and not any(sticky.values()):
                # Relayed decisions only: refusals are logged, and a digest Python checked
                # itself is checked on every request. A caller with a sticky relation is
                # decided afresh (its window ends); one without is, once a relation appears.
                self._decided[fields] = (req, decision, auth, probe)
            return self._apply(req, decision, auth, fields)
        except DatabaseError as exc:
            # Data needed here was never cached and the database cannot answer. No
            # Retry-After: a carrier would take it as "the whole proxy is down" and stop
            # sending the calls we can still route from cache.
            self._refuse_fields(fields, DATABASE_DOWN, f"database unavailable: {exc}")
        except Exception as exc:  # never leave the client retransmitting into silence
            self._crash("route_initial", exc)
        return DONE

    def hunt_next(self, msg, remaining: str = "", *_args) -> int:
        """Failure route HUNT: the SIM did not answer; aim at the next registered one
        (RELAY_TO_SIM, kamailio.cfg relays) or answer 480."""
        try:
            targets = tuple(u for u in remaining.split(",") if u and u != NULL)
            aimed = self._aim(targets)
            if aimed is not None:
                sim, rest = aimed
                self.ksr.pv.sets(HUNT_AVP, rest)
                if self._records:
                    self.ksr.pv.sets(DIALOG_SIM_VAR, sim)
                return RELAY_TO_SIM
            return NOBODY_LEFT
        except Exception as exc:
            self._crash("hunt_next", exc, stateful=True)
        return DONE

    def egress_next(self, msg, fields: str = "", *_args) -> int:
        """Failure route EGRESS of an outbound call: answer a carrier's challenge, or fail
        over to the next eligible trunk (RELAY: kamailio.cfg relays); else tm relays the
        best reply to the SIM."""
        try:
            state, status, authenticated = (fields.split(SEPARATOR) + ["", "", ""])[:3]
            username, called, index, kind = state.split(",")
            # The carrier's reply may reach a worker that has routed nothing yet: its plans
            # are loaded here, not only by route_initial.
            self.directory.refresh()
            plan = self.directory.sim(username)
            egress = None if plan is None else (
                self.directory.emergency(plan) if kind == EGRESS_EMERGENCY else plan.egress)
            if egress is None:
                return DONE
            hops = tuple(h for h in egress.hops if carries(h, called))[int(index):]
            action = after_trunk_failure(int(status or 0), hops, authenticated == hops[0].trunk
                                         if hops else False)
            ksr = self.ksr
            if action == AUTHENTICATE_TO_TRUNK:
                ksr.pv.sets(UAC_USER_AVP, hops[0].auth_username)
                ksr.pv.sets(UAC_PASSWORD_AVP, hops[0].auth_password)
                ksr.pv.sets(EGRESS_AUTH_AVP, hops[0].trunk)
                if ksr.uac.uac_auth() > 0:
                    return RELAY
            elif action == TRY_NEXT_TRUNK:
                if self._verbose:
                    ksr.info(f"trunk {hops[0].trunk} failed with {status}, trying {hops[1].trunk}\n")
                if self._metrics:
                    ksr.xhttp_prom.counter_inc_l2(FAILOVERS, 1, hops[0].trunk, hops[1].trunk)
                ksr.pv.sets(EGRESS_AVP, f"{username},{called},{int(index) + 1},{kind}")
                ksr.seturi(ruri(hops[1], called))
                # After a failover the trunk is always replaced: another carrier must never
                # get this trunk's credentials for the BYE.
                ksr.pv.sets(DIALOG_TRUNK_VAR, hops[1].trunk)
                return RELAY
        except Exception as exc:
            self._crash("egress_next", exc, stateful=True)
        return DONE

    def indialog_auth(self, msg, fields: str = "", *_args) -> int:
        """Failure route INDIALOG_AUTH of a BYE or re-INVITE toward a carrier: answer its
        challenge once with the trunk's credentials (RELAY: kamailio.cfg relays)."""
        try:
            name, status = (fields.split(SEPARATOR) + [""])[:2]
            self.directory.refresh()  # as in egress_next
            trunk = self.directory.trunk_named(name)
            if answers_indialog_challenge(int(status or 0), trunk):
                ksr = self.ksr
                ksr.pv.sets(UAC_USER_AVP, trunk.auth_username)
                ksr.pv.sets(UAC_PASSWORD_AVP, trunk.auth_password or "")
                if ksr.uac.uac_auth() > 0:
                    return RELAY
        except Exception as exc:
            self._crash("indialog_auth", exc, stateful=True)
        return DONE

    def watch_changes(self, msg=None, *_args) -> int:
        """rtimer, every 100 ms in a process of its own: publish what kamailio.cfg decides
        with by itself (the trunks' networks, the SIMs' HA1 and state) as soon as a change
        is committed, with no request needed."""
        try:
            d, ksr = self.directory, self.ksr
            d.watching = True
            d.refresh()
            networks, sims = d.take_changes()
            if networks is not None:
                ksr.pv.sets(TRUNK_NETWORKS_VAR, ",".join(networks))
                ksr.pv.seti(TRUNKS_LOADED_VAR, 1)
                ksr.info(f"trunk networks: {','.join(networks) or '(none)'}\n")
            if sims is None:  # all of them
                ksr.htable.sht_reset(SIMS_TABLE)
                for plan in d.sims.values():
                    ksr.htable.sht_sets(SIMS_TABLE, plan.username, _sim_entry(plan))
                ksr.pv.seti(SIMS_LOADED_VAR, 1)
                ksr.info(f"SIM credentials published: {len(d.sims)}\n")
            elif sims:
                for username in sims:
                    plan = d.sims.get(username)
                    if plan is None:
                        ksr.htable.sht_rm(SIMS_TABLE, username)
                    else:
                        ksr.htable.sht_sets(SIMS_TABLE, username, _sim_entry(plan))
        except Exception as exc:
            self._crash("watch_changes", exc, reply=False)
        return 1

    def refused_here(self, msg, what: str = "", *_args) -> int:
        """A refusal decided outside Python ("<code> <reason>"), logged like Python's own."""
        try:
            code, _, reason = what.partition(" ")
            get = self.ksr.pv.get
            self._log_refusal(get("$si"), get("$rm"), get("$fU"), get("$rU"), int(code), reason)
        except Exception as exc:
            self._crash("refused_here", exc, reply=False)
        return 1

    # -- gathering facts ----------------------------------------------------------------------

    def _authenticate(self, user: str | None, verified: bool):
        """The authentication fact of a request from a source that is not a trunk. Once the
        watcher has published the SIMs, kamailio.cfg verifies the digest itself (verified);
        before that, here: the digest is checked before anything is said about the SIM (an
        inactive SIM with a wrong password is refused like any wrong password)."""
        if not user:
            return NO_CREDENTIALS
        plan = self.directory.sim(user)
        if verified:
            # This worker may not have applied the change that made the SIM yet (within
            # 100 ms): the SIM tries again with a fresh challenge.
            return Verified(plan) if plan is not None else STALE
        if plan is None:
            return REFUSED
        # HA1 from the routing data (flags 1); checks 1: auth user must be the From/To user.
        verdict = auth_verdict(self.ksr.auth.pv_auth_check(self._realm, plan.sim.ha1, 1, 1))
        return Verified(plan) if verdict is None else verdict

    # -- applying -----------------------------------------------------------------------------

    def _apply(self, req: Request, decision, auth, fields: str) -> int:
        ksr = self.ksr
        if isinstance(decision, Ring):
            if self._verbose:
                ksr.info(f"ring via={decision.via} to={req.ruri_user} district={decision.display} "
                         f"caller={decision.caller} hunt={','.join(decision.targets)}\n")
            aimed = self._aim(decision.targets)
            if aimed is None:
                self._refuse(req, NOBODY_REACHABLE)
                self._record_attempt(NOBODY_REACHABLE, "nobody_reachable",
                                     INTERNAL if decision.via == "sim" else INBOUND,
                                     decision.did, decision.client, decision.via,
                                     decision.targets[0] if decision.targets else "")
                return DONE
            sim, rest = aimed
            # The SIM learns no carrier's host: the caller is a number in our realm.
            realm = self._realm
            ksr.pv.sets(PLAN_AVP, SEPARATOR.join((
                decision.display or "", f"sip:{_clean(decision.caller)}@{realm}",
                f"sip:{_clean(decision.pai)}@{realm}" if decision.pai else "", rest,
                MASKED if decision.masked else "",
                INTERNAL if decision.via == "sim" else INBOUND, decision.where,
                rec_field(decision.did, decision.client, decision.via, sim,
                          STICKY if sim in decision.sticky else ""), sim)))
            return RELAY_TO_SIM
        if isinstance(decision, CallOut):
            return self._call_out(auth.plan.username, decision, auth.plan.sim.caller_id)
        if decision is CHALLENGE:
            return CHALLENGE_RC
        if decision is AUTH_FAILED:
            return AUTH_FAILED_RC
        if decision is REGISTER:
            return SAVE_REGISTRATION
        if isinstance(decision, Reply):
            if decision.code >= 300:
                self._refuse(req, decision)
                if isinstance(auth, Verified) and req.method == "INVITE":
                    # a corporate SIM's call refused by policy is a call attempt, on record
                    sim = auth.plan.sim
                    self._record_attempt(decision, "refused", OUTBOUND, sim.caller_id,
                                         to_e164(req.ruri_user, self._region) or "", "",
                                         sim.username)
            else:
                ksr.sl.send_reply(decision.code, decision.reason)
            return DONE
        raise TypeError(f"unknown decision {decision!r}")

    def _call_out(self, username: str, out: CallOut, caller_id: str = "") -> int:
        first = out.hops[0]
        if self._verbose:
            self.ksr.info(f"call out to={out.called} caller={out.caller} anonymous={out.anonymous} "
                          f"trunks={','.join(h.trunk for h in out.hops)}\n")
        host = self.config.carrier_sip_addr  # the proxy as the carrier knows it
        caller_uri = f"sip:{out.caller}@{host}"
        # RFC 3323: the client sees nobody; the carrier still gets the identity in PAI,
        # with the SIM's Privacy header telling it to withhold it (RFC 3325).
        display, from_uri = (ANONYMOUS_DISPLAY, ANONYMOUS_URI) if out.anonymous else ("", caller_uri)
        kind = EGRESS_EMERGENCY if out.emergency else EGRESS_OUT
        self.ksr.pv.sets(PLAN_AVP, SEPARATOR.join((
            display, from_uri, caller_uri, ruri(first, out.called),
            first.trunk if first.auth_username else "",
            f"{username},{out.called},0,{kind}", MASKED if out.masked else "",
            EMERGENCY if out.emergency else OUTBOUND, out.where,
            rec_field(caller_id, out.called if out.called.startswith("+") else "",
                      first.trunk, username))))
        return RELAY

    def _aim(self, targets: tuple[str, ...]) -> tuple[str, str] | None:
        """Aim the request at the first target with a registered contact (the core's
        first_reachable): that SIM, and the rest, comma-separated, for failure_route HUNT
        (None: nobody registered)."""
        ksr, realm = self.ksr, self._realm
        lookup = ksr.registrar.lookup_uri
        found = first_reachable(targets, lambda u: lookup(LOCATION_TABLE, f"sip:{u}@{realm}") > 0)
        if found is None:
            return None
        rest = ",".join(targets[found + 1:])
        if self._verbose:
            ksr.info(f"ringing sim={targets[found]} then={rest or '-'}\n")
        return targets[found], rest

    def _record_attempt(self, reply: Reply, outcome: str, direction: str, did: str,
                        client: str, trunk: str, sim: str) -> None:
        """An attempt refused before anything rang, on record (acc_db_request into the
        spool, as kamailio.cfg's CDRs): a SIM's call refused by policy, a client's call
        with nobody registered. Floods and scanners never get here (not a SIM, not ours)."""
        if not self._records:
            return
        ksr = self.ksr
        try:  # after the reply: a failure here must not answer the call twice
            ksr.pv.sets(RECORD_AVP, rec_field(f"{time.time():.6f}", outcome, direction, did,
                                              client, trunk, sim))
            ksr.acc.acc_db_request(f"{reply.code} {reply.reason}", ATTEMPT_TABLE)
        except Exception as exc:
            self._crash("record_attempt", exc, reply=False)

    def ship_records(self, msg=None, *_args) -> int:
        """rtimer "records", once a second in a process of its own: the spool to PostgreSQL
        (kemi/records.py)."""
        try:
            if self._shipper is None:
                c = self.config
                self._shipper = Shipper(Path(c.records_dir), c.database_dsn, ctl=control_socket(),
                                        log=lambda text: self.ksr.notice(text + "\n"))
            self._shipper.ship()
        except Exception as exc:  # the next second tries again; records stay in the spool
            self._crash("ship_records", exc, reply=False)
        return DONE

    def _load_keys(self) -> None:
        """The masking keys, when their source changed (a file's modification time; the
        environment is read once). A list that became unusable keeps the keys in use."""
        path = self.config.mask_keys_file
        try:
            stamp = os.stat(path).st_mtime_ns if path else "env"
        except OSError:
            stamp = None
        if stamp == self._keys_stamp:
            return
        previous, self._keys_stamp = self._keys_stamp, stamp
        try:
            keys = self.config.mask_keys()
        except ConfigError as exc:
            self.ksr.err(f"masking keys not reloaded, the previous ones stay: {exc}\n")
            return
        self.masker = Masker(keys) if keys is not None else None
        self._decided.clear()  # decisions made with the old keys
        if keys is not None or previous is not None:  # ids only: a key is never logged
            shown = f"ids {','.join(sorted(keys.by_id))}, active {keys.active}" if keys else "none"
            self.ksr.info(f"masking keys: {shown}\n")

    def _publish_stats(self) -> None:
        """Cache counters to shared memory, once a second per worker, for kamcmd
        (htable.dump stats): Python's own counters are private to each process."""
        self._stats_due = self._clock() + STATS_EVERY_S
        d, pid = self.directory, os.getpid()
        breaker = getattr(getattr(d, "db", None), "breaker_open", False)
        figures = (("hits", d.hits), ("misses", d.misses), ("stale", d.stale_serves),
                   ("generation", d.changes_applied), ("breaker_open", int(breaker)))
        for name, value in figures:
            self.ksr.htable.sht_seti(STATS_TABLE, f"{pid}.{name}", value)
        if self._metrics:
            gauge, worker = self.ksr.xhttp_prom.gauge_set_l1, str(pid)
            for (_, value), metric in zip(figures, WORKER_GAUGES):
                gauge(metric, str(value), worker)
            self.ksr.xhttp_prom.gauge_set_l0(DB_WAITING, str(
                self.ksr.htable.sht_get(DB_GATE_TABLE, "waiting") or 0))

    # -- refusals and errors ----------------------------------------------------------------

    def _refuse(self, req: Request, reply: Reply) -> None:
        self.ksr.sl.send_reply(reply.code, reply.reason)
        self._count_refusal(reply)
        self._log_refusal(req.source_ip, req.method, req.from_user, req.ruri_user,
                          reply.code, reply.reason)

    def _refuse_fields(self, fields: str, reply: Reply, why: str) -> None:
        req = parse_request(fields)[0]
        self.ksr.sl.send_reply(reply.code, reply.reason)
        self._count_refusal(reply)
        self._log_refusal(req.source_ip, req.method, req.from_user, req.ruri_user, reply.code, why)

    def _count_refusal(self, reply: Reply) -> None:
        if self._metrics:  # by the reason phrase the caller got: a bounded set of labels
            self.ksr.xhttp_prom.counter_inc_l2(REFUSALS, 1, str(reply.code), reply.reason)

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
                        f"to={_short(called)} code={code} reason=\"{_reason(reason)}\" "
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


def _has_relation(directory: Directory, probe) -> bool:
    """Whether a remembered decision's caller has a sticky relation now (it had none)."""
    return any(directory.relations.get(company, client) is not None for company, client in probe)


def _sim_entry(plan) -> str:
    """The SIMS_TABLE value kamailio.cfg reads: the HA1, and whether the SIM may call."""
    sim = plan.sim
    state = SIM_INACTIVE if not sim.sim_active else MANAGER_INACTIVE if not sim.manager_active \
        else SIM_ACTIVE
    return f"{sim.ha1}:{state}"


_FIELD_COUNT = len(REQUEST_FIELDS)


def parse_request(fields: str) -> tuple[Request, str | None, bool]:
    """REQUEST_FIELDS as kamailio.cfg printed them: the Request, the digest user, and
    whether kamailio.cfg verified the digest."""
    if ESCAPED in fields:
        values = [v.replace(ESCAPED, SEPARATOR) for v in fields.split(SEPARATOR)]
    else:
        values = fields.split(SEPARATOR)
    if len(values) < _FIELD_COUNT:
        values += [NULL] * (_FIELD_COUNT - len(values))
    method, source, ruri_user, from_user, auth_user, verified, pai, diversion, history, \
        privacy = [None if v == NULL or not v else v for v in values[:_FIELD_COUNT]]
    return Request(method or "", source or "", ruri_user, from_user,
                   None if pai is None else uri_user(pai), diversion, history, privacy), \
        auth_user, verified == "1"


def _clean(value: str) -> str:
    return value.replace(SEPARATOR, "")


def _reason(text: str) -> str:
    """A reason on one line and inside its quotes (a database error spans lines)."""
    return " ".join(str(text).split()).replace('"', "'")[:160]


def _short(value) -> str:
    """A field for the refusal log: what the caller wrote, without whitespace (as
    kamailio.cfg's {s.rmws}), so that it cannot start a line of its own for fail2ban."""
    return "".join(str(value)[:64].split())
