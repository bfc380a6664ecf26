"""What anchoring media costs rtpengine, and how many anchored calls this machine holds.

make bench-sip runs it after the SIP measurements (python3 -m benchmarks.media_bench alone):
an rtpengine as the stack runs it (userspace forwarding, both logical interfaces), N calls
set up over its control socket exactly as kamailio.cfg offers and answers them, then both
ends of every call send G.711 RTP at 50 packets/s (20 ms, 160-byte payload) for a few
seconds while the ends count what arrives. rtpengine's CPU time is read from /proc. The
ramp doubles N until a packet is lost (or the load generators, two processes on the same
two cores, cannot keep the pace: then the figure says so).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import selectors
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

from kemi import rtpengine
from kemi.stack import Rtpengine, free_port

PPS = 50  # packets per second per direction: 20 ms G.711
PAYLOAD = b"\xff" * 160  # u-law silence, one 20 ms frame
FLAGS = {"replace": ["origin", "session-connection"], "ICE": "remove"}
GENERATORS = 2


def _receive(selector: selectors.BaseSelector, timeout: float) -> int:
    """Datagrams waiting on the ready sockets within timeout, read and counted."""
    count = 0
    for key, _ in selector.select(timeout):
        while True:
            try:
                key.fileobj.recv(2048)
                count += 1
            except BlockingIOError:
                break
    return count


def _sdp(port: int) -> str:
    return (f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


def _port_of(sdp: str) -> int:
    return int(next(line for line in sdp.split("\r\n") if line.startswith("m=audio")).split()[1])


def set_up_call(relay: tuple[str, int], n: int, a: socket.socket, b: socket.socket) -> tuple[int, int]:
    """One call through rtpengine, as kamailio.cfg makes it (offer from the SIM side, answer
    from the carrier side); the ports a and b must send to."""
    call_id = f"bench-{os.getpid()}-{n}"
    offer = rtpengine.ng(relay, {"command": "offer", "call-id": call_id, "from-tag": f"a{n}",
                                 "sdp": _sdp(a.getsockname()[1]), "direction": ["sim", "carrier"],
                                 **FLAGS})
    answer = rtpengine.ng(relay, {"command": "answer", "call-id": call_id, "from-tag": f"a{n}",
                                  "to-tag": f"b{n}", "sdp": _sdp(b.getsockname()[1]), **FLAGS})
    return _port_of(answer["sdp"]), _port_of(offer["sdp"])


def _generator(relay, first: int, count: int, seconds: float, start_at: float, out) -> None:
    """count calls: set up, then both ends send PPS each way until the deadline; reports
    (sent, received, own CPU seconds, late ticks, ticks) through out."""
    ends = []
    for n in range(first, first + count):
        a, b = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
        for s in (a, b):
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
        to_b, to_a = set_up_call(relay, n, a, b)
        ends += [(a, ("127.0.0.1", to_b)), (b, ("127.0.0.1", to_a))]
    selector = selectors.DefaultSelector()
    for s, _ in ends:
        selector.register(s, selectors.EVENT_READ)
    while time.monotonic() < start_at:  # every generator starts the same tick
        time.sleep(0.001)
    cpu0 = time.process_time()
    sent = received = late = ticks = 0
    seq = 0
    tick, deadline = start_at, start_at + seconds
    while tick < deadline:
        header = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, 0)
        for i, (s, dest) in enumerate(ends):
            try:
                s.sendto(header[:8] + struct.pack("!I", i) + PAYLOAD, dest)
                sent += 1
            except BlockingIOError:
                pass
        seq += 1
        ticks += 1
        tick += 1.0 / PPS
        if time.monotonic() > tick:
            late += 1
        while True:  # receive until the next tick is due
            received += _receive(selector, max(tick - time.monotonic(), 0))
            if time.monotonic() >= tick:
                break
    drain_until = time.monotonic() + 0.3  # packets in flight at the deadline
    while time.monotonic() < drain_until:
        received += _receive(selector, 0.05)
    out.send((sent, received, time.process_time() - cpu0, late, ticks))
    for s, _ in ends:
        s.close()


def cpu_seconds(pid: int) -> float:
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1e9


def measure(relay: Rtpengine, calls: int, seconds: float) -> dict:
    per = [calls // GENERATORS + (1 if i < calls % GENERATORS else 0) for i in range(GENERATORS)]
    start_at = time.monotonic() + 1.0 + calls / 1500  # set-up time: ~0.5 ms a call
    pipes, workers = [], []
    first = 0
    for count in per:
        mine, theirs = multiprocessing.Pipe(duplex=False)
        worker = multiprocessing.Process(target=_generator, args=(
            relay.address, first, count, seconds, start_at, theirs))
        worker.start()
        pipes.append(mine)
        workers.append(worker)
        first += count
    while time.monotonic() < start_at:
        time.sleep(0.005)
    cpu0 = cpu_seconds(relay.pid)
    results = [p.recv() for p in pipes]
    relay_cpu = cpu_seconds(relay.pid) - cpu0
    for worker in workers:
        worker.join()
    sent = sum(r[0] for r in results)
    received = sum(r[1] for r in results)
    late = sum(r[3] for r in results) / max(1, sum(r[4] for r in results))
    left = rtpengine.calls(relay.address)
    for call_id in left:
        rtpengine.ng(relay.address, {"command": "delete", "call-id": call_id, "delete-delay": 0})
    return {"calls": calls, "seconds": seconds, "sent": sent, "received": received,
            "lost": max(0, sent - received), "relayed_pps": round(received / seconds),
            "rtpengine_cpu_share": round(relay_cpu / seconds, 3),
            "rtpengine_cpu_ms_per_call_second": round(1000 * relay_cpu / seconds / calls, 4),
            "generator_cpu_share": round(max(r[2] for r in results) / seconds, 3),
            "generator_late_ticks": round(late, 3)}


def ramp(steps=(50, 100, 200, 400, 800, 1200, 1600, 2400), seconds: float = 4.0,
         log=print) -> dict:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # two sockets a call
    work = Path(tempfile.mkdtemp(prefix="cloud-pbx-bench-media-"))
    relay = Rtpengine(("127.0.0.1", "127.0.0.1"), free_port(), "40000-59999", work, timeout_s=60)
    relay.start()
    results, held, stopped = [], None, None
    try:
        for calls in steps:
            if 4 * calls > hard:
                stopped = f"open files limit {hard}"
                break
            r = measure(relay, calls, seconds)
            results.append(r)
            log(f"   media {calls:>5} calls  {r['relayed_pps']:>7} pkt/s relayed  lost {r['lost']}  "
                f"rtpengine {100 * r['rtpengine_cpu_share']:.0f}% of a core "
                f"({r['rtpengine_cpu_ms_per_call_second']:.3f} ms CPU per call-second)  "
                f"generators {100 * r['generator_cpu_share']:.0f}%  late ticks "
                f"{100 * r['generator_late_ticks']:.0f}%")
            if r["lost"]:
                stopped = f"{r['lost']} of {r['sent']} packets lost at {calls} calls"
                break
            if r["generator_late_ticks"] > 0.2:  # not 50 packets/s any more: not counted
                stopped = f"the load generators fell behind the 20 ms pace at {calls} calls"
                break
            held = calls
    finally:
        relay.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    per_call = [r["rtpengine_cpu_ms_per_call_second"] for r in results if not r["lost"]]
    return {"steps": results, "held_without_loss": held, "stopped_by": stopped,
            "rtpengine_cpu_ms_per_call_second": round(sorted(per_call)[len(per_call) // 2], 4)
            if per_call else None, "pps_per_direction": PPS}


def markdown(media: dict) -> str:
    lines = [f"Media relay (rtpengine, userspace forwarding), G.711 at {media['pps_per_direction']} "
             f"packets/s each way per call: **{media['rtpengine_cpu_ms_per_call_second']} ms of "
             f"rtpengine CPU per second of each concurrent call** (median of the steps); held "
             f"**{media['held_without_loss']} concurrent calls without a lost packet**; stopped by: "
             f"{media['stopped_by'] or 'the last step'}.", "",
             "| calls | relayed packets/s | lost | rtpengine CPU (share of a core) | generators CPU |",
             "|---|---|---|---|---|"]
    for r in media["steps"]:
        lines.append(f"| {r['calls']} | {r['relayed_pps']} | {r['lost']} | "
                     f"{r['rtpengine_cpu_share']:.2f} | {r['generator_cpu_share']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks.media_bench", description=__doc__)
    parser.add_argument("--steps", default="50,100,200,400,800,1200,1600,2400")
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args(argv)
    media = ramp(tuple(int(n) for n in args.steps.split(",")), args.seconds,
                 log=lambda text: print(text, flush=True))
    print(json.dumps(media, indent=2))
    print(markdown(media))
    return 0


if __name__ == "__main__":
    sys.exit(main())
