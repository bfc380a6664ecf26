"""make metrics-chart: the Grafana dashboard's panels (docker/grafana/cloud-pbx.json) drawn
from a real Prometheus (docker/prometheus/prometheus.yml, scraping every second) after a
load run through kamailio.cfg: bench-sip's data set and SIPp profiles, with a carrier
sending numbers that are not ours beside them (refusals). Writes docker/grafana/cloud-pbx.png.
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import threading
import time
from pathlib import Path

from kemi.config import ROOT
from harness import rawsip
from harness.prometheus import Prometheus, dashboard_queries

from .sip_bench import CARRIER, PLANS, Bench

OUT = ROOT / "docker" / "grafana" / "cloud-pbx.png"
PHASES = (("mixed", 300, 20), ("inbound", 500, 15), ("outbound", 250, 15), ("mixed", 600, 15))
RATE_WINDOW = "5s"


def refusals(proxy, stop: threading.Event, per_second: float = 5.0) -> None:
    """A carrier offering numbers that are not ours: each one 404, a refusal."""
    source = (CARRIER[0], 5990)
    target = (proxy.config.sip_addr, proxy.config.sip_port)
    while not stop.wait(1 / per_second):
        number = f"+7862{int(time.time() * 1000) % 10**7:07d}"
        try:
            rawsip.final_reply(rawsip.build("INVITE", f"sip:{number}@{target[0]}", source,
                                            from_uri=f"sip:+79890000000@{source[0]}",
                                            to_uri=f"sip:{number}@{target[0]}"),
                               source, target, timeout=2.0)
        except OSError:
            pass  # a lost reply is a missed dot on the chart, not a failure of the picture


def draw(prometheus: Prometheus, start: float, end: float, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    queries = dashboard_queries(RATE_WINDOW)
    titles = list(dict.fromkeys(title for title, _, _ in queries))
    rows = math.ceil(len(titles) / 2)
    fig, axes = plt.subplots(rows, 2, figsize=(14, 3.2 * rows))
    for ax, title in zip(axes.flat, titles):
        for _, expr, legend in (q for q in queries if q[0] == title):
            body = prometheus.api("query_range", query=expr, start=start, end=end, step=1)
            for series in body["data"]["result"]:
                label = legend
                for key, value in series["metric"].items():
                    label = label.replace("{{" + key + "}}", value)
                xs = [float(t) - start for t, _ in series["values"]]
                ax.plot(xs, [float(v) for _, v in series["values"]], label=label or expr)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if not ax.lines:
            ax.text(0.5, 0.5, "none in this run", ha="center", va="center", transform=ax.transAxes)
        elif len(ax.lines) <= 6:
            ax.legend(fontsize=7, loc="upper left")
        else:  # a series per district: a legend would hide the chart
            ax.text(0.01, 0.95, f"{len(ax.lines)} series", transform=ax.transAxes, fontsize=7, va="top")
    for ax in list(axes.flat)[len(titles):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("seconds since the load began", fontsize=8)
    fig.suptitle("cloud-pbx dashboard (docker/grafana/cloud-pbx.json) after a load run: "
                 + ", ".join(f"{p} {r} calls/s {s} s" for p, r, s in PHASES), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make metrics-chart", description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="cloud-pbx-metrics-chart-"))
    bench = Bench(PLANS["quick"], work, log=lambda text: print(text, flush=True))
    proxy = prometheus = None
    stop = threading.Event()
    try:
        bench.prepare()
        proxy = bench.start_proxy("python")
        prometheus = Prometheus(work / "prometheus",
                                f"{proxy.config.metrics_addr}:{proxy.config.metrics_port}")
        prometheus.start()
        start = time.time()
        prometheus.scraped_after(start)
        refuser = threading.Thread(target=refusals, args=(proxy, stop), daemon=True)
        refuser.start()
        for profile, rate, seconds in PHASES:
            run = bench.measure("python", proxy, profile, rate, seconds)
            print(f"{profile} {rate} calls/s {seconds} s: {run.calls} calls, {run.failed} failed",
                  flush=True)
        stop.set()
        refuser.join()
        time.sleep(3)  # let the charts come back down: a few more scrapes
        end = time.time()
        draw(prometheus, start, end, args.out)
        print(f"chart: {args.out}")
    finally:
        stop.set()
        if prometheus:
            prometheus.stop()
        if proxy:
            proxy.stop()
        bench.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
