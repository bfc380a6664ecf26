"""make bench-abuse: what password guessing and floods get out of the proxy, and what they
cost it, on a proxy of its own (demo data). Prints figures; asserts nothing about speed.

- guessing: one source guessing a SIM's password as fast as it gets answers (reusing a
  nonce while the proxy lets it): guesses the proxy evaluated, per second, until the ban;
- guessing from many sources, one guess each in turn: guesses evaluated until the SIM is
  locked against sources it never authenticated from;
- floods of INVITEs without credentials at a fixed rate, from one source and from 1,000
  rotating ones: Kamailio CPU per request received, answers, bans;
- legitimate calls (SIPp, a SIM calling out) during each flood: failed calls.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

from kemi.config import ROOT, Config
from kemi.stack import Kamailio, PostgresCluster, prepare_database, with_children

from benchmarks.sip_bench import cpu_seconds, udp_receive_errors
from harness import rawsip

PROXY_PORT = 15090
# sql/demo.sql: Ivan's SIM is guessed at, Boris's calls out during the floods.
GUESSED, GUESSED_PASSWORD = "+79181110003", "demo-79181110003"
SIM, PASSWORD = "+79181110004", "demo-79181110004"
CARRIER = ("127.0.0.2", 5060)


def start(work: Path):
    overrides = {"state_dir": str(work), "sip_port": PROXY_PORT, "log_level": 1, "tls_port": 0}
    known = {f.name for f in fields(Config)}  # an older checkout may lack some (before/after)
    config = replace(Config(), **{k: v for k, v in overrides.items() if k in known})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        config = replace(config, pg_port=s.getsockname()[1])
    cluster = PostgresCluster(work, config.pg_port, durable=False)
    cluster.start()
    prepare_database(cluster.dsn, config.realm)
    proxy = Kamailio(replace(config, dsn=cluster.dsn), work / "kamailio", work / "kamailio.log")
    proxy.start()
    time.sleep(0.5)  # the change watcher publishes the trunks (at most 100 ms)
    return cluster, proxy


def kamailio_cpu(proxy) -> float:
    return cpu_seconds(with_children(proxy.pid))


def guessing_from_one_source(seconds: float = 3.0) -> dict:
    """The best a single guesser gets: one challenge answered with guess after guess (a fresh
    challenge only when the proxy refuses the nonce), until banned or out of time."""
    p = rawsip.Phone(("127.0.0.31", 0), ("127.0.0.1", PROXY_PORT), timeout=0.3)
    ruri = f"sip:127.0.0.1:{PROXY_PORT}"

    def register(auth=()):
        return p.send(rawsip.build("REGISTER", ruri, p.source, from_uri=f"sip:{GUESSED}@pbx.local",
                                   to_uri=f"sip:{GUESSED}@pbx.local",
                                   headers=("Expires: 600", *auth)))

    evaluated, banned_after, started = 0, None, time.monotonic()
    challenge = register()
    guess = 0
    while time.monotonic() - started < seconds:
        if challenge is None:
            banned_after = banned_after or time.monotonic() - started
            challenge = register()
            continue
        if not challenge.startswith("SIP/2.0 401"):
            challenge = register()
            continue
        guess += 1
        creds = rawsip.digest(rawsip.header(challenge, "WWW-Authenticate"), "REGISTER", ruri,
                              GUESSED, f"guess-{guess}", nc=guess)
        reply = register((f"Authorization: {creds}",))
        if reply is None:
            banned_after = banned_after or time.monotonic() - started
            challenge = None
        elif reply.startswith("SIP/2.0 403"):
            evaluated += 1  # the password was checked, and refused: keep the nonce
        else:
            challenge = reply  # a fresh challenge: the nonce was spent
    p.close()
    if banned_after:
        return {"guesses evaluated before the ban": evaluated, "banned after s": round(banned_after, 3)}
    return {"guesses evaluated": evaluated, "guesses per second": round(evaluated / seconds),
            "banned": "no"}


def guessing_from_many_sources(proxy, sources: int = 100) -> dict:
    """One guess per source in turn (each under the per-source limit), then the right
    password from a source never seen: refused once the SIM is locked. Guesses evaluated:
    the failures kamailio.cfg counted (a locked SIM's guesses are refused unchecked)."""
    refused = 0
    for i in range(sources):
        with rawsip.Phone((f"127.0.2.{i + 1}", 0), ("127.0.0.1", PROXY_PORT), timeout=0.3) as p:
            if p.request("REGISTER", GUESSED, password=f"guess-{i}")[0] == "SIP/2.0 403 Forbidden":
                refused += 1
    with rawsip.Phone(("127.0.3.1", 0), ("127.0.0.1", PROXY_PORT), timeout=0.3) as p:
        right = p.request("REGISTER", GUESSED, password=GUESSED_PASSWORD)[0]
    try:
        counted = proxy.rpc("htable.get", "authfail", "u:" + GUESSED)
        evaluated = int(next(l.split(":")[1] for l in counted.splitlines() if "value" in l))
    except Exception:  # an older proxy without the counter: every refusal was a check
        evaluated = refused
    return {"sources": sources, "guesses refused": refused, "guesses evaluated": evaluated,
            "right password from a new source then": right}


def _spoofed(source: str, sport: int, payload: bytes) -> bytes:
    """An IPv4/UDP datagram from any source address (a raw socket with IP_HDRINCL), as a
    flood with forged, ever-changing sources arrives; checksums left to the kernel/zero."""
    src, dst = socket.inet_aton(source), socket.inet_aton("127.0.0.1")
    udp = struct.pack("!HHHH", sport, PROXY_PORT, 8 + len(payload), 0)
    total = 20 + len(udp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, socket.IPPROTO_UDP, 0, src, dst)
    return ip + udp + payload


def flood(proxy, sources: list[str] | int, rate: int, seconds: float) -> dict:
    """INVITEs without credentials at `rate` per second, round robin over `sources`; an
    int: that many forged source addresses, a new one per request (a raw socket)."""
    socks, raw = [], None
    if isinstance(sources, int):
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    else:
        for ip in sources:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((ip, 0))
            s.setblocking(False)
            socks.append(s)
    target = ("127.0.0.1", PROXY_PORT)
    drops, cpu = udp_receive_errors(), kamailio_cpu(proxy)
    sent = answers = 0
    started = time.monotonic()
    while (now := time.monotonic()) - started < seconds:
        due = int((now - started) * rate)
        while sent < due:
            if raw is not None:
                n = sent % sources
                source = (f"127.{16 + (n >> 16)}.{(n >> 8) & 255}.{n & 255 or 1}", 5000)
            else:
                s = socks[sent % len(socks)]
                source = s.getsockname()
            message = rawsip.build("INVITE", f"sip:+79891234567@127.0.0.1:{PROXY_PORT}", source,
                                   from_uri=f"sip:{SIM}@pbx.local",
                                   to_uri="sip:+79891234567@pbx.local").encode()
            if raw is not None:
                raw.sendto(_spoofed(source[0], source[1], message), target)
            else:
                s.sendto(message, target)
            sent += 1
        for s in socks[:64] if len(socks) > 64 else socks:
            try:
                while s.recv(65535):
                    answers += 1
            except BlockingIOError:
                pass
        time.sleep(0.001)
    time.sleep(0.5)  # let the proxy finish the backlog
    for s in socks:
        try:
            while s.recv(65535):
                answers += 1
        except BlockingIOError:
            pass
        s.close()
    if raw is not None:
        raw.close()
        answers = "(to the forged addresses)"
    cpu, dropped = kamailio_cpu(proxy) - cpu, udp_receive_errors() - drops
    received = max(sent - dropped, 1)
    return {"sources": sources if raw is not None else len(sources), "requests sent": sent,
            "dropped by the kernel": dropped, "answered": answers,
            "kamailio cpu us per request": round(cpu / received * 1e6, 1)}


def calls_during(proxy, work: Path, flood_args: tuple, calls: int = 100, rate: int = 20) -> dict:
    """A SIM calling out through the demo carrier while a flood runs: failed calls."""
    carrier = subprocess.Popen(
        ["sipp", "-sf", str(ROOT / "sipp/outbound_call/trunk_uas.xml"), "-i", CARRIER[0],
         "-p", str(CARRIER[1]), "-m", str(calls), "-nostdin", "-timeout", "60s"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sim = subprocess.Popen(
        ["sipp", "-sf", str(ROOT / "sipp/outbound_call/sim_uac.xml"), "-i", "127.0.0.1",
         "-p", "5399", "-s", SIM, "-au", SIM, "-ap", PASSWORD, "-key", "realm", "pbx.local",
         "-key", "called", "89891234567", "-m", str(calls), "-r", str(rate), "-nostdin",
         "-timeout", "60s", "-trace_stat", "-stf", str(work / "calls.csv"), "-fd", "1",
         f"127.0.0.1:{PROXY_PORT}"], cwd=work, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    flooded = flood(proxy, *flood_args)
    sim.wait(60)
    stats = (work / "calls.csv").read_text().splitlines()
    header, last = stats[0].split(";"), stats[-1].split(";")
    got = {k: int(last[header.index(k)]) for k in ("SuccessfulCall(C)", "FailedCall(C)")}
    carrier.terminate()  # the PID we started, whatever it still waits for
    carrier.wait(10)
    return {**flooded, "calls": calls, "calls failed": got["FailedCall(C)"],
            "calls succeeded": got["SuccessfulCall(C)"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks.abuse_bench", description=__doc__)
    parser.add_argument("--rate", type=int, default=5000, help="flood requests per second")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="cloud-pbx-abuse-"))
    os.chmod(work, 0o755)
    cluster, proxy = start(work)
    try:
        results = {"guessing, one source": guessing_from_one_source()}
        results["guessing, many sources"] = guessing_from_many_sources(proxy)
        results["flood, one source"] = calls_during(
            proxy, work, (["127.0.0.41"], args.rate, 5.0))
        results["flood, 1000 rotating sources"] = calls_during(
            proxy, work, ([f"127.0.{10 + i // 250}.{i % 250 + 1}" for i in range(1000)],
                          args.rate, 5.0))
        results["flood, a new forged source per request"] = calls_during(
            proxy, work, (25000, args.rate, 5.0))
        for name, figures in results.items():
            print(f"{name}:")
            for key, value in figures.items():
                print(f"  {key}: {value}")
    finally:
        proxy.stop()
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
