"""make bench-sip, in miniature: every configuration and profile runs and the report is whole.

A few seconds of low-rate traffic per configuration: zero failed calls and a complete
report are asserted, never a speed (the figures come from make bench-sip)."""

from __future__ import annotations

import json

import pytest

from benchmarks import sip_bench


@pytest.mark.timeout(360)  # seven configurations, each a few seconds of traffic per profile
def test_the_performance_harness_runs_end_to_end(tmp_path):
    assert sip_bench.main(["--smoke", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "results.json").read_text())
    fixed = [r for r in report["runs"] if r["profile"] in sip_bench.PROFILES]
    assert {(r["config"], r["profile"]) for r in fixed} == {
        (c, p) for c in sip_bench.CONFIGS for p in sip_bench.PROFILES}
    assert all(r["failed"] == 0 and r["calls"] > 0 and r["cpu_ms_per_call"] > 0 for r in fixed)
    assert report["ratio_python_to_native"] > 0
    # media anchoring's cost beside the same proxy without it, and the relay's own figures
    assert report["media"]["20"]["cpu_ms_per_call_on"] > 0 and report["media"]["20"]["ratio"] > 0
    # masking's cost beside the same proxy without it (its far ends check tokens, no number)
    assert report["masking"]["20"]["ratio"] > 0
    assert report["masking"]["20"]["inbound"]["cpu_ms_per_call_masked"] > 0
    # the metrics' cost: python (counting) beside python-no-metrics
    assert report["metrics"]["20"]["ratio"] > 0
    relay = report["media_relay"]["steps"][0]
    assert relay["calls"] == 10 and relay["received"] > 0 and relay["rtpengine_cpu_share"] > 0
    text = (tmp_path / "results.md").read_text()
    assert "| python | 20 |" in text and "| 0 | python | mixed | 20 |" in text
    assert "Media anchoring at 20 calls/s" in text and "Media relay (rtpengine" in text
    assert "Masked numbers at 20 calls/s" in text and "Metrics at 20 calls/s" in text
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"
