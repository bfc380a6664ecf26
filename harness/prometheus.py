"""A private Prometheus (Debian's package) scraping one proxy with docker/prometheus's
config: for the metrics tests and the dashboard picture (benchmarks/metrics_chart.py)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from kemi.config import ROOT
from kemi.stack import StackError, free_port, terminate

PROMETHEUS = "/usr/bin/prometheus"
CONFIG = ROOT / "docker" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "docker" / "grafana" / "cloud-pbx.json"


def scrape_config(target: str, interval_s: float) -> str:
    """The shipped config with its target and interval replaced (nothing else changes)."""
    text = CONFIG.read_text()
    for old, new in (('"127.0.0.1:9464"', f'"{target}"'),
                     ("scrape_interval: 5s", f"scrape_interval: {round(interval_s * 1000)}ms"),
                     ("evaluation_interval: 5s", f"evaluation_interval: {round(interval_s * 1000)}ms")):
        if old not in text:
            raise StackError(f"{CONFIG}: {old} not found")
        text = text.replace(old, new)
    return text


def dashboard_queries(rate_window: str) -> list[tuple[str, str, str]]:
    """(panel title, PromQL, legend) of every target of the Grafana dashboard, Grafana's
    $__rate_interval replaced by rate_window."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(p["title"], t["expr"].replace("$__rate_interval", rate_window), t.get("legendFormat", ""))
            for p in panels for t in p.get("targets", ())]


class Prometheus:
    def __init__(self, work: Path, target: str, interval_s: float = 1.0):
        self.work, self.target, self.interval_s = work, target, interval_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        config = self.work / "prometheus.yml"
        config.write_text(scrape_config(self.target, self.interval_s))
        self.log = open(self.work / "prometheus.log", "w")
        self.process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={self.work / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StackError(f"prometheus exited {self.process.returncode}: {self.work}/prometheus.log")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise StackError(f"prometheus not ready in {timeout} s")

    def stop(self) -> None:
        terminate(self.process)
        self.process = None

    def api(self, path: str, **params) -> dict:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                body = json.load(answer)
        except urllib.error.HTTPError as error:  # a bad query: 400 with the reason in JSON
            body = json.load(error)
        return body

    def query(self, expr: str) -> dict:
        return self.api("query", query=expr)

    def values(self, expr: str) -> dict[tuple, float]:
        """Instant vector: (sorted labels without __name__, job, instance) -> value."""
        body = self.query(expr)
        if body.get("status") != "success":
            raise StackError(f"{expr}: {body.get('error')}")
        drop = {"__name__", "job", "instance"}
        return {tuple(sorted((k, v) for k, v in r["metric"].items() if k not in drop)): float(r["value"][1])
                for r in body["data"]["result"]}

    def scraped_after(self, moment: float, timeout: float = 15.0) -> None:
        """Wait until a scrape of the target began after moment (time.time())."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.values('timestamp(up{job="cloud-pbx"})')
            up = self.values('up{job="cloud-pbx"}')
            if found and up and min(up.values()) == 1 and min(found.values()) > moment:
                return
            time.sleep(self.interval_s / 4)
        raise StackError(f"prometheus did not scrape {self.target} within {timeout} s")
