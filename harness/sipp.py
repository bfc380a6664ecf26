"""SIPp runner for the call-flow tests: renders a scenario's header checks, runs it with known PID."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from kemi.config import ROOT
from kemi.stack import terminate

SIPP = "/usr/bin/sipp"
SIPP_DIR = ROOT / "sipp"
CHECKS_MARK = "<!--CHECKS-->"

# SIPp's exit codes (sipp(1)).
EXIT_CODES = {0: "all calls succeeded", 1: "at least one call failed",
              97: "exit on internal command", 99: "normal exit without calls processed",
              253: "fatal error binding a socket", 254: "fatal error binding a socket",
              255: "fatal error"}


@dataclass(frozen=True)
class Check:
    """A header assertion made by SIPp on a received request: the call fails if it does not hold."""

    header: str | None  # e.g. "From"; None searches the whole message (the request line)
    regexp: str  # POSIX extended regex; use literal() for data
    present: bool = True  # False: the call fails when the header matches

    def ereg(self, var: str) -> str:
        mode = 'check_it="true"' if self.present else 'check_it_inverse="true"'
        where = f'search_in="hdr" header="{self.header}:"' if self.header else 'search_in="msg"'
        return f'<ereg regexp="{_xml_attr(self.regexp)}" {where} {mode} assign_to="{var}"/>'


def request_line(method: str, user: str, host: str) -> Check:
    """The request arrived for sip:user@host (the number written as that carrier wants)."""
    return Check(None, f"^{method} sip:{literal(user)}@{literal(host)}[:;> ]")


def literal(text: str) -> str:
    """text as a regex that matches itself (E.164 '+' and friends escaped)."""
    return re.sub(r"([][.^$*+?(){}|\\])", r"\\\1", text)


def _xml_attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def render(flow: str, name: str, out_dir: Path, checks: tuple[Check, ...] = (),
           values: dict[str, str] | None = None) -> Path:
    """The scenario sipp/<flow>/<name> with its CHECKS mark replaced by the given checks
    and each {{NAME}} by values[NAME] (SIPp takes no keywords inside XML attributes)."""
    text = (SIPP_DIR / flow / name).read_text()
    for key, value in (values or {}).items():
        text = text.replace("{{" + key + "}}", _xml_attr(value))
    if "{{" in text:
        raise ValueError(f"sipp/{flow}/{name}: unfilled {re.findall(r'{{[A-Z_]+}}', text)}")
    if checks:
        if CHECKS_MARK not in text:
            raise ValueError(f"sipp/{flow}/{name} has no {CHECKS_MARK} for header checks")
        names = [f"check{i}" for i in range(len(checks))]
        block = "\n      ".join(c.ereg(v) for c, v in zip(checks, names))
        text = text.replace(CHECKS_MARK, block)
        text = text.replace("</scenario>", f'  <Reference variables="{",".join(names)}"/>\n</scenario>')
    out = out_dir / f"{flow.replace('/', '-')}-{name}"
    out.write_text(text)
    return out


def udp_bound(ip: str, port: int) -> bool:
    """Whether a UDP socket is bound to ip:port (from /proc/net/udp)."""
    octets = ip.split(".")
    want = "".join(f"{int(o):02X}" for o in reversed(octets)) + f":{port:04X}"
    with open("/proc/net/udp") as f:
        return any(line.split()[1] == want for line in f.readlines()[1:])


class Sipp:
    """One SIPp process playing one side of one call flow."""

    def __init__(self, flow: str, name: str, work_dir: Path, *, remote: str, local_ip: str,
                 local_port: int = 0, keys: dict[str, str] | None = None,
                 checks: tuple[Check, ...] = (), values: dict[str, str] | None = None,
                 service: str | None = None,
                 auth: tuple[str, str] | None = None, calls: int = 1, rate: float | None = None,
                 timeout_s: int = 20, transport: str | None = None,
                 extra: tuple[str, ...] = ()):
        self.label = f"{flow}/{name}@{local_ip}:{local_port or 'any'}"
        self.work_dir = work_dir
        self.local_ip, self.local_port = local_ip, local_port
        scenario = render(flow, name, work_dir, checks, values)
        stem = f"{flow}-{Path(name).stem}-{local_ip}-{local_port}-{time.monotonic_ns()}"
        self.error_file = work_dir / f"{stem}.errors.log"
        self.screen_file = work_dir / f"{stem}.screen.log"
        self.message_file = work_dir / f"{stem}.messages.log"
        self.args = [SIPP, "-sf", str(scenario), "-i", local_ip, "-m", str(calls), "-nostdin",
                     "-timeout", f"{timeout_s}s", "-timeout_error", "-recv_timeout", "15000",
                     "-trace_err", "-error_file", str(self.error_file),
                     "-trace_screen", "-screen_file", str(self.screen_file),
                     "-trace_msg", "-message_file", str(self.message_file)]
        if local_port:
            self.args += ["-p", str(local_port)]
        self.udp = transport in (None, "u1")
        if transport:  # sipp -t: u1 (default), t1 (one TCP connection), ...
            self.args += ["-t", transport]
        if rate:
            self.args += ["-r", str(rate), "-rp", "1000"]
        if service:
            self.args += ["-s", service]
        if auth:
            self.args += ["-au", auth[0], "-ap", auth[1]]
        for key, value in (keys or {}).items():
            self.args += ["-key", key, value]
        self.args += [*extra, remote]  # e.g. -aa: keepalive OPTIONS answered by a UAC
        self.process: subprocess.Popen | None = None

    def start(self, ready_timeout: float = 5.0) -> "Sipp":
        self.process = subprocess.Popen(self.args, cwd=self.work_dir, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if self.local_port and self.udp:  # a far end is ready once its port is bound
            deadline = time.monotonic() + ready_timeout
            while not udp_bound(self.local_ip, self.local_port):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"SIPp {self.label} did not bind: {self.report()}")
                time.sleep(0.01)
        return self

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"SIPp {self.label} still running after {timeout} s")

    def stop(self) -> None:
        terminate(self.process, 5)

    def report(self) -> str:
        rc = self.process.poll() if self.process else None
        parts = [f"exit {rc} ({EXIT_CODES.get(rc, '?')})"]
        if self.process and self.process.stderr and rc is not None:
            parts.append(self.process.stderr.read().decode(errors="replace")[-2000:])
        for path in (self.error_file, self.message_file):
            if path.exists():
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)

    def run(self, timeout: float = 30.0) -> "Sipp":
        """Start, wait, and assert that every call of the scenario succeeded."""
        self.start()
        return self.succeeded(timeout)

    def succeeded(self, timeout: float = 30.0) -> "Sipp":
        rc = self.wait(timeout)
        assert rc == 0, f"SIPp {self.label}: {self.report()}"
        return self


class SilentPeer:
    """A bound UDP port that answers nothing and records what reached it."""

    def __init__(self, ip: str, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, port))
        self.sock.setblocking(False)

    def received(self) -> list[bytes]:
        got = []
        while True:
            try:
                got.append(self.sock.recv(65535))
            except BlockingIOError:
                return got

    def close(self) -> None:
        self.sock.close()
