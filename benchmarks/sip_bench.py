"""make bench-sip: what a call costs our proxy, beside a native Kamailio reference and a floor.

For each configuration (kamailio.cfg with Python decisions, sipp/perf/native.cfg, and the
stateless sipp/perf/floor.cfg), on the same generated data and the same SIPp far ends:
Kamailio CPU time per call (all its processes, from /proc), failed calls, retransmissions,
INVITE->200 response times at a fixed common rate per profile, then a rate ramp on the
mixed profile. Writes results.json, results.md and chart.png; the gate is our CPU per call
as a ratio to the native reference's, measured side by side, against sipp/perf/baseline.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import psycopg2

from kemi import db
from kemi.config import ROOT, Config
from kemi.masking import Keys, Masker
from kemi.stack import Kamailio, PostgresCluster, Rtpengine, with_children
from kemi.stack import free_port
from harness.sipp import SIPP, Check, render, udp_bound

from . import media_bench
from .media_bench import markdown as media_markdown

PERF = ROOT / "sipp" / "perf"
BASELINE = PERF / "baseline.json"
CONFIGS = {"python": ROOT / "kamailio.cfg", "python-kemi": ROOT / "kamailio.cfg",
           "native": PERF / "native.cfg", "floor": PERF / "floor.cfg",
           # the product as it runs: media anchored through rtpengine (the others carry SDP
           # untouched, so that the ratio measures the routing alone)
           "python-media": ROOT / "kamailio.cfg",
           # every client's number masked (README, Masked client numbers): its managers see
           # tokens, its SIMs dial tokens; beside python, what masking costs per call
           "python-masked": ROOT / "kamailio.cfg",
           # python without its Prometheus metrics (every other configuration counts them):
           # what the counters cost per call
           "python-no-metrics": ROOT / "kamailio.cfg",
           # python without call records (every other python configuration writes them):
           # what accounting costs per call, the shipper's process included
           "python-no-records": ROOT / "kamailio.cfg",
           # python with the sticky manager off (README, Sticky manager; on in every other
           # python configuration, where the 500 bench clients all had answered calls out)
           "python-no-sticky": ROOT / "kamailio.cfg"}
RAMPED = ("python", "python-kemi", "native", "floor")  # python-media: the fixed rates only
CONFIGS_RUN = list(CONFIGS)
PROFILES = {"inbound": 1.0, "outbound": 0.0, "mixed": 0.7}  # share of inbound calls
PROXY_PORT, SIM_PORT, CARRIER = 15070, 6000, ("127.0.0.2", 5060)
BENCH_KEYS = "1 EF4359D8D580AA4F7F036D6F04FC6A94 active\n"  # a test key: the bench's own data
MASKED = ("python-masked",)
OUTBOUND_SIMS = 4  # one SIPp per SIM (SIPp takes one digest identity per process)


@dataclass(frozen=True)
class Plan:
    rates: tuple[int, ...]  # the fixed common rates, calls/s: the gate's first
    seconds: float
    ramp: tuple[int, ...]  # rates of the ramp (mixed profile), climbed until a failure
    ramp_seconds: float
    districts: int
    rounds: int = 1  # interleaved repetitions; figures are their medians
    gate: bool = True
    media_steps: tuple[int, ...] = (50, 200)  # concurrent anchored calls (benchmarks/media_bench.py)
    media_seconds: float = 3.0

    @property
    def rate(self) -> int:
        return self.rates[0]


PLANS = {
    # 1,000 calls/s: near the native reference's knee on this machine (its ramp); the ramp
    # climbs until each configuration fails or the load generator or the kernel gives out.
    "full": Plan(rates=(400, 1000), seconds=10, ramp=tuple(range(600, 3001, 300)), ramp_seconds=6,
                 districts=200, rounds=3, media_steps=(50, 100, 200, 400, 600, 800, 1000, 1200, 1600),
                 media_seconds=5.0),
    "quick": Plan(rates=(300,), seconds=6, ramp=(600, 900), ramp_seconds=4, districts=50),
    "smoke": Plan(rates=(20,), seconds=2, ramp=(), ramp_seconds=0, districts=8, gate=False,
                  media_steps=(10,), media_seconds=1.0),
}
INBOUND_PER_SIPP = 600  # calls/s one SIPp UAC sends comfortably (FIELD-NOTES: ~1000 tops)


@dataclass
class Run:
    config: str
    profile: str
    rate: int
    calls: int
    failed: int
    retransmissions: int
    cpu_ms_per_call: float
    median_ms: float | None
    p99_ms: float | None
    loadgen_busy: bool
    udp_drops: int
    round: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.failed == 0 and self.retransmissions <= 0.001 * self.calls * 4


# -- processes and counters ----------------------------------------------------------------

def cpu_seconds(pids) -> float:
    """CPU time of the processes (all their threads) in ns resolution from schedstat:
    /proc/PID/stat counts 10 ms ticks, coarser than a smoke run's whole cost."""
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, IndexError, ValueError):
                pass  # the thread or process ended meanwhile
    return total / 1e9


def udp_receive_errors() -> int:
    lines = [l.split() for l in Path("/proc/net/snmp").read_text().splitlines() if l.startswith("Udp:")]
    return int(lines[1][lines[0].index("RcvbufErrors")])


class SippProcess:
    """One SIPp far end for a measurement: stats and response times to files, no message log."""

    def __init__(self, scenario: Path, work: Path, ip: str, *, port: int = 0, rate: float = 0,
                 calls: int = 0, inf: Path | None = None, auth: str | None = None,
                 timeout_s: float = 60, proxy_port: int = PROXY_PORT):
        self.work = work
        self.stat = work / f"{scenario.stem}-{ip}-{port}-{time.monotonic_ns()}.stat.csv"
        args = [SIPP, "-sf", str(scenario), "-i", ip, "-nostdin", "-trace_stat", "-stf",
                str(self.stat), "-fd", "1", "-timeout", f"{int(timeout_s)}s", "-trace_err",
                "-recv_timeout", "8000", "-max_recv_loops", "10000", "-max_sched_loops", "10000"]
        if port:
            args += ["-p", str(port)]
        if rate:
            args += ["-r", f"{rate:.3f}", "-rp", "1000", "-m", str(calls), "-trace_rtt",
                     "-rtt_freq", "1", "-l", "5000"]
        if inf:
            args += ["-inf", str(inf)]
        if auth:
            args += ["-s", auth, "-au", auth, "-ap", "perf-" + auth.lstrip("+"),
                     "-key", "realm", Config().realm]
        args.append(f"127.0.0.1:{proxy_port}")
        self.args, self.ip, self.port = args, ip, port
        self.process = subprocess.Popen(args, cwd=work, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if port:
            deadline = time.monotonic() + 5
            while not udp_bound(ip, port):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"SIPp {scenario.name} did not bind {ip}:{port}: "
                                       + self.process.stderr.read().decode(errors="replace"))
                time.sleep(0.01)

    cpu: float | None = None  # CPU seconds, known once reaped

    def wait(self, timeout: float) -> int:
        """Reap with wait4, keeping the CPU time the process used (gone from /proc after)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
            except ChildProcessError:  # reaped already (Popen.poll at start): its CPU is lost
                self.cpu = 0.0 if self.cpu is None else self.cpu
                if self.process.returncode is None:
                    self.process.returncode = -1
                return self.process.returncode
            if pid:
                self.cpu = usage.ru_utime + usage.ru_stime
                self.process.returncode = os.waitstatus_to_exitcode(status)
                return self.process.returncode
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                self.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.wait(5)

    def cpu_now(self) -> float:
        return self.cpu if self.cpu is not None else cpu_seconds([self.process.pid])

    def counters(self) -> dict[str, int]:
        lines = self.stat.read_text().splitlines() if self.stat.exists() else []
        if len(lines) < 2:
            return {}
        header, last = lines[0].split(";"), lines[-1].split(";")
        wanted = ("SuccessfulCall(C)", "FailedCall(C)", "Retransmissions(C)", "OutgoingCall(C)")
        return {k: int(last[header.index(k)]) for k in wanted if k in header}

    def response_times(self) -> list[float]:
        times = []
        for rtt in self.work.glob(f"*_{self.process.pid}_rtt.csv"):
            for line in rtt.read_text().splitlines()[1:]:
                parts = line.split(";")
                if len(parts) >= 2:
                    times.append(float(parts[1]))
        return times


# -- the bench -------------------------------------------------------------------------------

class Bench:
    def __init__(self, plan: Plan, work: Path, log=print):
        self.round = 0
        self.plan, self.work, self.log = plan, work, log
        self.cluster: PostgresCluster | None = None
        self.sims: list[str] = []
        self.scenarios: dict[tuple[str, str], Path] = {}
        self.relays: list[Rtpengine] = []

    # data set and scenarios
    def prepare(self) -> None:
        os.chmod(self.work, 0o755)
        # every configuration at once, each process of each holding connections (Python's,
        # usrloc's write-back): more than PostgreSQL's default 100
        self.cluster = PostgresCluster(self.work / "pg", free_port(), durable=False,
                                       max_connections=400)
        self.cluster.start()
        db.migrate(self.cluster.dsn)
        db.run_script(self.cluster.dsn, ROOT / "sql" / "dataset.sql",
                      {"pbx.realm": Config().realm, "pbx.districts": str(self.plan.districts),
                       "pbx.dids_per_district": "4", "pbx.managers_per_district": "2"})
        # python-masked: the same data, the company masking, in a database of its own
        self.masked_dsn = self.database_copy("pbx_masked", "UPDATE company SET mask_numbers = true")
        with psycopg2.connect(self.masked_dsn) as masked, masked.cursor() as cur:
            cur.execute("SELECT id FROM company")
            company_id = cur.fetchone()[0]
        masked.close()
        # python-no-sticky: the same data, sticky off, in a database of its own
        self.unsticky_dsn = self.database_copy("pbx_unsticky", "UPDATE company SET sticky = false")
        (self.work / "bench.keys").write_text(BENCH_KEYS)
        self.sims = [r["username"] for r in db.Database(self.cluster.dsn).query("perf_sims")]
        dids = [r["number"] for r in db.Database(self.cluster.dsn).query("perf_dids")]
        rng = random.Random(4711)
        clients = [f"8989{rng.randrange(10**7):07d}" for _ in range(500)]
        (self.work / "inbound.csv").write_text("SEQUENTIAL\n" + "".join(
            f"8{d[2:]};{rng.choice(clients)}\n" for d in rng.sample(dids, len(dids))))
        (self.work / "outbound.csv").write_text("SEQUENTIAL\n" + "".join(f"{c}\n" for c in clients))
        # what a masked district's managers redial: the tokens of the same clients
        masker = Masker(Keys.parse(BENCH_KEYS))
        (self.work / "outbound-masked.csv").write_text("SEQUENTIAL\n" + "".join(
            f"{masker.mask('+7' + c[1:], company_id)}\n" for c in clients))
        # The same assertions for our proxy and the native reference; the floor rewrites
        # no caller ID, so its far ends check nothing.
        checks = {"checked": {"inbound": (Check("From", '^ *"District [0-9]+" <sip:\\+79[0-9]{9}@'),),
                              "outbound": (Check(None, "^INVITE sip:8989[0-9]{7}@127\\.0\\.0\\.2"),
                                           Check("From", "<sip:88612[0-9]{6}@"))},
                  # the managers see tokens; the carrier the real number, as above
                  "masked": {"inbound": (Check("From", '^ *"District [0-9]+" <sip:\\+28[0-9]{16}@'),
                                         # the client's number as a digit run of its own, in any format (a token's
                                         # 18 digits may contain 989... by chance)
                                         Check(None, "(^|[^0-9])(\\+?7|8)?989[0-9]{7}([^0-9]|$)",
                                               present=False)),
                             "outbound": (Check(None, "^INVITE sip:8989[0-9]{7}@127\\.0\\.0\\.2"),
                                          Check("From", "<sip:88612[0-9]{6}@"))},
                  "floor": {"inbound": (), "outbound": ()}}
        for key, check in checks.items():
            folder = self.work / key
            folder.mkdir()
            self.scenarios[("inbound_uac", key)] = render("perf/inbound", "trunk_uac.xml", folder)
            self.scenarios[("inbound_uas", key)] = render("perf/inbound", "sim_uas.xml", folder,
                                                          check["inbound"])
            self.scenarios[("outbound_uac", key)] = render("perf/outbound", "sim_uac.xml", folder)
            self.scenarios[("outbound_uas", key)] = render("perf/outbound", "trunk_uas.xml", folder,
                                                           check["outbound"])

    def start_proxy(self, name: str) -> Kamailio:
        # Each configuration on its own port: all run at once, measured in turns.
        index = list(CONFIGS).index(name)
        config = replace(Config(), sip_port=PROXY_PORT + index, children=4,
                         flood_reqs=0,  # every SIM sends from 127.0.0.1
                         tls_port=0,  # the configurations run at once: no port to share
                         log_level=1, dsn=self.masked_dsn if name in MASKED else
                         self.unsticky_dsn if name == "python-no-sticky" else self.cluster.dsn,
                         state_dir=str(self.work / f"state-{name}"),  # a spool each
                         wiring="kemi" if name == "python-kemi" else "native",
                         natping_s=0, keepalive_timeout_s=0,  # SIPp answers no OPTIONS
                         media="on" if name == "python-media" else "off",
                         mask_keys_file=str(self.work / "bench.keys") if name in MASKED else "",
                         metrics_port=0 if name == "python-no-metrics" else free_port(),
                         records="off" if name == "python-no-records" else "on",
                         rpc_port=free_port(), media_ng_port=free_port(),
                         media_ports=f"{32000 + 1000 * index}-{32999 + 1000 * index}")
        media = Rtpengine.for_config(config, self.work / f"rtpengine-{name}")
        if media:
            media.start()
            self.relays.append(media)
        defines = {"SQLCON": f'"pbx=>postgres://postgres@127.0.0.1:{self.cluster.port}/pbx"'} \
            if name == "native" else {}
        proxy = Kamailio(config, self.work / f"kamailio-{name}", self.work / f"kamailio-{name}.log",
                         cfg=CONFIGS[name], defines=defines)
        proxy.start()
        try:
            for sim in self.sims if name != "floor" else ():  # all to the SIPp playing SIMs
                proxy.rpc("ul.add", "location", "s:" + sim, f"s:sip:{sim}@127.0.0.1:{SIM_PORT}",
                          "3600", "1.0", ".", "0", "0", "0")  # q is a double for kamcmd
        except Exception:
            proxy.stop()  # never leave a proxy behind on the benchmark's port
            raise
        return proxy

    def measure(self, name: str, proxy: Kamailio, profile: str, rate: int, seconds: float) -> Run:
        share = PROFILES[profile]
        calls = max(1, int(rate * seconds))
        # python-kemi passes the same checks as python
        key = "floor" if name == "floor" else "masked" if name in MASKED else "checked"
        dialled = self.work / ("outbound-masked.csv" if name in MASKED else "outbound.csv")
        inbound_calls, outbound_calls = round(calls * share), calls - round(calls * share)
        far = [SippProcess(self.scenarios[("inbound_uas", key)], self.work, "127.0.0.1",
                           port=SIM_PORT, timeout_s=seconds + 90),
               SippProcess(self.scenarios[("outbound_uas", key)], self.work, CARRIER[0],
                           port=CARRIER[1], timeout_s=seconds + 90)]
        load: list[SippProcess] = []
        try:
            pids = with_children(proxy.pid)
            cpu0, drops0, t0 = cpu_seconds(pids), udp_receive_errors(), time.monotonic()
            senders = max(1, -(-int(rate * share) // INBOUND_PER_SIPP))  # SIPp's own ceiling
            for i in range(senders if inbound_calls else 0):
                n = inbound_calls // senders + (1 if i < inbound_calls % senders else 0)
                load.append(SippProcess(self.scenarios[("inbound_uac", key)], self.work, "127.0.0.2",
                                        proxy_port=proxy.config.sip_port,
                                        port=5062 + i, rate=rate * share / senders, calls=n,
                                        inf=self.work / "inbound.csv", timeout_s=seconds + 40))
            sims = self.sims[:: max(1, len(self.sims) // OUTBOUND_SIMS)][:OUTBOUND_SIMS]
            for i, sim in enumerate(sims if outbound_calls else ()):
                n = outbound_calls // len(sims) + (1 if i < outbound_calls % len(sims) else 0)
                if n:
                    load.append(SippProcess(self.scenarios[("outbound_uac", key)], self.work, "127.0.0.1",
                                            proxy_port=proxy.config.sip_port, port=5070 + i, rate=rate * (1 - share) / len(sims), calls=n,
                                            inf=dialled, auth=sim,
                                            timeout_s=seconds + 40))
            for process in load:
                process.wait(seconds + 60)
            wall = time.monotonic() - t0
            cpu, drops = cpu_seconds(pids) - cpu0, udp_receive_errors() - drops0
            loadgen = [p.cpu_now() for p in load + far]
            # Every configuration's far ends use the same ports: a proxy still retransmitting or
            # hunting (a run that failed) would send into the next configuration's run.
            drained = self.drain(proxy)
            for process in far:
                process.stop()
        except BaseException:
            # never leave a far end behind on the shared ports (the next run could not bind)
            for process in far + load:
                process.stop()
            raise
        loadgen_cpu = sum(loadgen)
        counts = [p.counters() for p in load]
        far_failed = sum(p.counters().get("FailedCall(C)", 0) for p in far)
        times = sorted(t for p in load for t in p.response_times())
        busiest = max(loadgen) / max(wall, 1e-6)
        succeeded = sum(c.get("SuccessfulCall(C)", 0) for c in counts)
        run = Run(config=name, profile=profile, rate=rate, calls=calls, round=self.round,
                  failed=calls - succeeded + far_failed,  # either side failed, or never ended
                  retransmissions=sum(c.get("Retransmissions(C)", 0) for c in counts),
                  cpu_ms_per_call=1000 * cpu / calls,
                  median_ms=statistics.median(times) if times else None,
                  p99_ms=times[min(len(times) - 1, int(0.99 * len(times)))] if times else None,
                  loadgen_busy=busiest > 0.9, udp_drops=drops)
        if run.loadgen_busy:
            run.notes.append(f"load generator saturated (a SIPp used {busiest:.0%} of a core)")
        if drops:
            run.notes.append(f"kernel dropped {drops} UDP datagrams (RcvbufErrors)")
        if not drained:
            run.notes.append("transactions still open 40 s after the run")
        run.notes.append(f"SIPp CPU {loadgen_cpu:.1f} s over {wall:.1f} s")
        return run

    @staticmethod
    def drain(proxy: Kamailio, timeout: float = 40.0) -> bool:
        """Wait until the proxy holds no transaction (tm.stats current: 0)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"current:\s*(\d+)", proxy.rpc("tm.stats"))
            if found and found.group(1) == "0":
                return True
            time.sleep(0.2)
        return False

    def run(self) -> list[Run]:
        """Every configuration runs at once on its own port, idle but for its turn. Each
        round measures the fixed-rate profiles in turns (rate by rate, profile by profile,
        configuration by configuration), then each configuration's ramp: compared figures
        are minutes apart at most, as these shared cores drift by tens of per cent over the
        length of a run; the report takes each figure's median over the rounds."""
        runs: list[Run] = []
        self.prepare()
        proxies: dict[str, Kamailio] = {}
        try:
            for name in CONFIGS_RUN:
                self.log(f"== {name}: {CONFIGS[name].relative_to(ROOT)}")
                proxies[name] = self.start_proxy(name)
                # Steady state is measured, for every configuration alike: one unmeasured
                # pass of the mixed profile fills the caches first (ours per worker, the
                # native reference's shared htable), as a running proxy has them.
                self.measure(name, proxies[name], "mixed", self.plan.rate, self.plan.seconds)
            for self.round in range(self.plan.rounds):
                for rate in self.plan.rates:
                    for profile in PROFILES:
                        for name, proxy in proxies.items():
                            if name in ("python-media", "python-no-metrics", "python-no-records",
                                        "python-no-sticky", *MASKED) \
                                    and rate != self.plan.rate:
                                continue  # with rtpengine and SIPp, 2 cores saturate at 1000
                            run = self.measure(name, proxy, profile, rate, self.plan.seconds)
                            self.log(f"   r{self.round} {name:<12} {profile:<8} {run.rate:>5} calls/s  cpu "
                                     f"{run.cpu_ms_per_call:.3f} ms/call  failed {run.failed}  retrans "
                                     f"{run.retransmissions}  median {run.median_ms} ms  p99 {run.p99_ms} ms")
                            runs.append(run)
                for name, proxy in proxies.items():
                    for rate in self.plan.ramp if name in RAMPED else ():
                        run = self.measure(name, proxy, "mixed", rate, self.plan.ramp_seconds)
                        run.profile = "ramp"
                        self.log(f"   r{self.round} {name:<12} ramp     {rate:>5} calls/s  cpu "
                                 f"{run.cpu_ms_per_call:.3f} ms/call  failed {run.failed}  retrans "
                                 f"{run.retransmissions}"
                                 + (f"  ({'; '.join(run.notes[:-1])})" if len(run.notes) > 1 else ""))
                        runs.append(run)
                        if not run.clean:
                            break
        finally:
            for proxy in proxies.values():
                proxy.stop()  # never leave a proxy behind
            for relay in self.relays:
                relay.stop()
        return runs

    def database_copy(self, name: str, change: str) -> str:
        """A copy of the bench's database (CREATE DATABASE ... TEMPLATE) with one change made:
        its DSN."""
        admin = psycopg2.connect(self.cluster.dsn.replace("dbname=pbx", "dbname=postgres"))
        admin.autocommit = True
        admin.cursor().execute(f"CREATE DATABASE {name} TEMPLATE pbx")
        admin.close()
        dsn = self.cluster.dsn.replace("dbname=pbx", f"dbname={name}")
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(change)
        conn.close()
        return dsn

    def sticky_share(self) -> str:
        """Of the inbound calls on record in the main database, those routed sticky."""
        if not self.cluster:
            return ""
        with psycopg2.connect(self.cluster.dsn) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FILTER (WHERE sticky), count(*) FROM call_record "
                        "WHERE direction = 'inbound'")
            sticky, inbound = cur.fetchone()
        conn.close()
        return f"{sticky} of {inbound} ({100 * sticky / inbound:.1f} %)" if inbound else ""

    def close(self) -> None:
        if self.cluster:
            self.cluster.stop()


# -- report and gate --------------------------------------------------------------------------

def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def beside(runs: list[Run], plan: Plan, on: str, off: str) -> dict:
    """Per rate: the mean CPU per call over the profiles of two configurations measured side
    by side (the median over the rounds), and their ratio; rates where either is missing
    are left out."""
    found = {}
    for rate in plan.rates:
        with_it, without = [], []
        for n in range(plan.rounds):
            def mean(name):
                return sum(r.cpu_ms_per_call for r in runs if r.config == name and r.rate == rate
                           and r.round == n and r.profile in PROFILES) / len(PROFILES)
            if mean(on) and mean(off):
                with_it.append(mean(on))
                without.append(mean(off))
        if with_it:
            found[str(rate)] = {"cpu_ms_per_call_on": round(_median(with_it), 3),
                                "cpu_ms_per_call_off": round(_median(without), 3),
                                "ratio": round(_median(with_it) / _median(without), 3)}
    return found


def summarize(runs: list[Run], plan: Plan) -> dict:
    """Medians over the rounds: CPU per call per configuration, profile and rate; each
    configuration's highest clean ramp rate; the ratio ours / native per rate (CPU summed
    over the three profiles: one profile alone moves by 10-20 % between runs)."""
    summary = {"plan": asdict(plan), "runs": [asdict(r) for r in runs], "configs": {}}
    for name in CONFIGS_RUN:
        cpu = {}
        for rate in plan.rates:
            for profile in PROFILES:
                value = _median([r.cpu_ms_per_call for r in runs if r.config == name
                                 and r.profile == profile and r.rate == rate])
                if value is not None:
                    cpu.setdefault(str(rate), {})[profile] = round(value, 3)
        highest, stopped = [], []
        for n in range(plan.rounds):
            ramp = [r for r in runs if r.config == name and r.profile == "ramp" and r.round == n]
            clean = [r.rate for r in ramp if r.clean]
            highest.append(max(clean) if clean else None)
            stopped += [r.notes[:-1] or ["failed calls or retransmissions"] for r in ramp if not r.clean]
        summary["configs"][name] = {
            "cpu_ms_per_call": cpu,
            "highest_clean_rate": _median(highest),
            "highest_clean_rate_per_round": highest,
            "ramp_stopped_by": stopped[0] if stopped else None,
        }
    # Ours / native, CPU summed over the three profiles, per round (figures minutes apart),
    # then the median over the rounds: the shared cores drift by tens of per cent between
    # rounds, for every configuration alike.
    summary["ratio_per_rate"], summary["ratio_per_round"] = {}, {}
    for rate in plan.rates:
        ratios = []
        for n in range(plan.rounds):
            def total(name):
                return sum(r.cpu_ms_per_call for r in runs if r.config == name and r.rate == rate
                           and r.round == n and r.profile in PROFILES)
            native, ours = total("native"), total("python")
            ratios.append(round(ours / native, 3) if native and ours else None)
        summary["ratio_per_round"][str(rate)] = ratios
        median = _median(ratios)
        summary["ratio_per_rate"][str(rate)] = round(median, 3) if median is not None else None
    # The gate's ratio: at the first fixed rate.
    summary["ratio_python_to_native"] = summary["ratio_per_rate"].get(str(plan.rate))
    # What anchoring media costs Kamailio (offer, answer, delete over rtpengine's control
    # socket): python-media beside python, per rate, CPU summed over the profiles.
    summary["media"] = beside(runs, plan, "python-media", "python")
    # What masking costs (a token made per inbound call, one decoded per outbound one, the
    # headers filtered toward the SIM): python-masked beside python, at the first rate.
    summary["masking"] = {}
    for rate in plan.rates:
        masked_cpu, plain_cpu = [], []
        for n in range(plan.rounds):
            def per_profile(name):
                found = {r.profile: r.cpu_ms_per_call for r in runs if r.config == name
                         and r.rate == rate and r.round == n and r.profile in PROFILES}
                return found if len(found) == len(PROFILES) else None
            on, off = per_profile("python-masked"), per_profile("python")
            if on and off:
                masked_cpu.append(on)
                plain_cpu.append(off)
        if masked_cpu:
            summary["masking"][str(rate)] = {
                profile: {"cpu_ms_per_call_masked": round(_median([m[profile] for m in masked_cpu]), 3),
                          "cpu_ms_per_call_plain": round(_median([p[profile] for p in plain_cpu]), 3)}
                for profile in PROFILES}
            total_on = _median([sum(m.values()) for m in masked_cpu])
            total_off = _median([sum(p.values()) for p in plain_cpu])
            summary["masking"][str(rate)]["ratio"] = round(total_on / total_off, 3)
    # What the metrics cost: python (counting) beside python-no-metrics.
    summary["metrics"] = beside(runs, plan, "python", "python-no-metrics")
    # What call records cost: python (recording) beside python-no-records.
    summary["records"] = beside(runs, plan, "python", "python-no-records")
    # What the sticky manager costs: python beside python-no-sticky.
    summary["sticky"] = beside(runs, plan, "python", "python-no-sticky")
    summary["failed_calls"] = sum(r.failed for r in runs if r.profile in PROFILES)
    return summary


def markdown(summary: dict) -> str:
    plan = summary["plan"]
    rounds = plan.get("rounds", 1)
    lines = [f"Fixed rates {', '.join(map(str, plan['rates']))} calls/s, {plan['seconds']} s per "
             f"profile; median of {rounds} interleaved round(s). Kamailio CPU per call summed "
             f"over all its processes.", "",
             "| configuration | calls/s | inbound | outbound | mixed |", "|---|---|---|---|---|"]
    for name, c in summary["configs"].items():
        for rate, cpu in c["cpu_ms_per_call"].items():
            lines.append(f"| {name} | {rate} | " + " | ".join(
                f"{cpu[p]:.3f}" if p in cpu else "-" for p in PROFILES) + " |")
    lines += ["", "| configuration | highest clean rate (mixed ramp, median) | per round | ramp stopped by |",
              "|---|---|---|---|"]
    for name, c in summary["configs"].items():
        lines.append(f"| {name} | {c['highest_clean_rate'] or '-'} | "
                     f"{', '.join(str(h or '-') for h in c['highest_clean_rate_per_round'])} | "
                     f"{'; '.join(c['ramp_stopped_by'] or ['-'])} |")
    lines += [""] + [f"Python / native CPU per call at {rate} calls/s (inbound + outbound + mixed, "
                     f"median of the rounds' ratios {summary['ratio_per_round'][rate]}): **{ratio}**"
                     for rate, ratio in summary["ratio_per_rate"].items()]
    lines += [""] + [f"Media anchoring at {rate} calls/s: Kamailio CPU per call {m['cpu_ms_per_call_on']:.3f} "
                     f"ms on, {m['cpu_ms_per_call_off']:.3f} ms off (mean of the profiles): "
                     f"**x{m['ratio']}**" for rate, m in summary.get("media", {}).items()]
    lines += [""] + [f"Masked numbers at {rate} calls/s: Kamailio CPU per call masked / plain, "
                     + ", ".join(f"{p} {m[p]['cpu_ms_per_call_masked']:.3f} / "
                                 f"{m[p]['cpu_ms_per_call_plain']:.3f} ms" for p in PROFILES)
                     + f" (summed): **x{m['ratio']}**" for rate, m in summary.get("masking", {}).items()]
    lines += [""] + [f"Metrics at {rate} calls/s: Kamailio CPU per call {m['cpu_ms_per_call_on']:.3f} ms "
                     f"counting, {m['cpu_ms_per_call_off']:.3f} ms without (mean of the profiles): "
                     f"**x{m['ratio']}**" for rate, m in summary.get("metrics", {}).items()]
    lines += [""] + [f"Call records at {rate} calls/s: Kamailio CPU per call {m['cpu_ms_per_call_on']:.3f} ms "
                     f"recording, {m['cpu_ms_per_call_off']:.3f} ms without (mean of the profiles): "
                     f"**x{m['ratio']}**" for rate, m in summary.get("records", {}).items()]
    lines += [""] + [f"Sticky manager at {rate} calls/s: Kamailio CPU per call {m['cpu_ms_per_call_on']:.3f} ms "
                     f"on, {m['cpu_ms_per_call_off']:.3f} ms off (mean of the profiles): "
                     f"**x{m['ratio']}**" for rate, m in summary.get("sticky", {}).items()]
    if summary.get("sticky_share"):
        lines += ["", "Inbound calls that rang a sticky manager first (the python configurations' "
                      f"records): {summary['sticky_share']}"]
    if summary.get("media_relay"):
        lines += ["", media_markdown(summary["media_relay"])]
    lines += ["", "Every run:", "",
              "| round | configuration | profile | calls/s | CPU ms/call | failed | retrans | INVITE->200 median / p99 ms | notes |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in summary["runs"]:
        lines.append(f"| {r['round']} | {r['config']} | {r['profile']} | {r['rate']} | "
                     f"{r['cpu_ms_per_call']:.3f} | {r['failed']} | {r['retransmissions']} | "
                     f"{r['median_ms']} / {r['p99_ms']} | {'; '.join(r['notes'])} |")
    return "\n".join(lines) + "\n"


def chart(summary: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    colours = {"python": "tab:blue", "python-kemi": "tab:purple", "native": "tab:orange",
               "floor": "tab:green"}
    for name in RAMPED:
        # The ramp's figures per rate: medians over the rounds that reached that rate.
        by_rate: dict[int, list[dict]] = {}
        for r in summary["runs"]:
            if r["config"] == name and r["profile"] == "ramp":
                by_rate.setdefault(r["rate"], []).append(r)
        rates = sorted(by_rate)
        c = colours[name]
        med = lambda key, rate: _median([r[key] or 0 for r in by_rate[rate]])  # noqa: E731
        axes[0].plot(rates, [med("cpu_ms_per_call", x) for x in rates], marker="o", color=c, label=name)
        axes[1].plot(rates, [med("p99_ms", x) for x in rates], marker="o", color=c, label=f"{name} p99")
        axes[1].plot(rates, [med("median_ms", x) for x in rates], marker=".", linestyle=":", color=c,
                     label=f"{name} median")
        axes[2].plot(rates, [sum(r["failed"] for r in by_rate[x]) for x in rates], marker="o",
                     color=c, label=name)
    for ax, title in zip(axes, ("Kamailio CPU per call (ms, median of rounds)", "INVITE->200 (ms)",
                                "failed calls (all rounds)")):
        ax.set_title(title)
        ax.set_xlabel("calls/s (mixed profile)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def gate(summary: dict, baseline_path: Path) -> tuple[bool, str]:
    baseline = json.loads(baseline_path.read_text())
    ratio, limit = summary["ratio_python_to_native"], baseline["ratio"] * (1 + baseline["tolerance"])
    if ratio is None:
        return False, "no ratio measured"
    verdict = ratio <= limit
    return verdict, (f"python/native CPU per call {ratio:.3f}, baseline {baseline['ratio']:.3f} "
                     f"+{baseline['tolerance']:.0%} = {limit:.3f}: {'ok' if verdict else 'REGRESSED'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-sip", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_const", const="quick", dest="plan")
    mode.add_argument("--smoke", action="store_const", const="smoke", dest="plan")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--only", help="comma-separated configurations (default: all; no gate)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work folder (SIPp error logs, Kamailio logs)")
    parser.add_argument("--update-baseline", action="store_true",
                        help="write this run's ratio as the new baseline")
    args = parser.parse_args(argv)
    plan = PLANS[args.plan or "full"]
    if args.only:
        CONFIGS_RUN[:] = [c for c in args.only.split(",") if c in CONFIGS]
        plan = replace(plan, gate=False)
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="cloud-pbx-bench-sip-"))
    # SIGTERM (timeout, CI) must run the finally blocks that stop what was started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench = Bench(plan, work, log=lambda text: print(text, flush=True))
    started = time.monotonic()
    try:
        runs = bench.run()
        time.sleep(2)  # the last records shipped
        share = bench.sticky_share()
    finally:
        bench.close()
    summary = summarize(runs, plan)
    summary["sticky_share"] = share
    if not args.only or "python-media" in CONFIGS_RUN:
        print("== media relay: concurrent anchored calls", flush=True)
        summary["media_relay"] = media_bench.ramp(plan.media_steps, plan.media_seconds,
                                                  log=lambda text: print(text, flush=True))
    summary["duration_s"] = round(time.monotonic() - started, 1)
    (args.out / "results.json").write_text(json.dumps(summary, indent=2))
    (args.out / "results.md").write_text(markdown(summary))
    chart(summary, args.out / "chart.png")
    if args.keep:
        print(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(markdown(summary))
    print(f"report: {args.out}/results.json, results.md, chart.png ({summary['duration_s']} s)")
    if summary["failed_calls"]:
        print(f"FAILED: {summary['failed_calls']} calls failed at the fixed rate")
        return 1
    if args.update_baseline:
        BASELINE.write_text(json.dumps({"ratio": summary["ratio_python_to_native"], "tolerance": 0.15,
                                        "profiles": "inbound+outbound+mixed", "rate": plan.rate,
                                        "rounds": plan.rounds,
                                        "measured": time.strftime("%Y-%m-%d")}, indent=2) + "\n")
        print(f"baseline written: {BASELINE}")
        return 0
    if plan.gate:
        ok, message = gate(summary, BASELINE)
        print(message)
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
