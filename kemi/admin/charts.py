"""pbxctl report calls|numbers --chart FILE.png: answered and missed inbound calls, stacked,
per day (calls) or per DID label (numbers). matplotlib's Agg backend: no display needed."""

from __future__ import annotations

from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after the backend is chosen)
from matplotlib.ticker import MaxNLocator  # noqa: E402

ANSWERED, MISSED = "#2e7d32", "#c62828"


def draw(report: str, rows: list[dict], path: str, subtitle: str) -> None:
    if report == "calls":
        totals = dict(sorted(_totals(rows, lambda r: r["day"]).items()))
        labels = [d.strftime("%d %b") for d in totals]
        title = "Inbound calls per day"
    else:
        totals = _totals(rows, lambda r: r["label"] or r["did"])
        totals = dict(sorted(totals.items(), key=lambda kv: -sum(kv[1])))
        labels = list(totals)
        title = "Inbound calls per number"
    answered = [a for a, _ in totals.values()]
    missed = [m for _, m in totals.values()]
    fig, ax = plt.subplots(figsize=(min(12.0, max(6.0, 0.35 * len(labels) + 2)), 4.5), dpi=100)
    positions = range(len(labels))
    ax.bar(positions, answered, color=ANSWERED, label="answered")
    ax.bar(positions, missed, bottom=answered, color=MISSED, label="missed")
    for x, (a, m) in zip(positions, zip(answered, missed)):
        ax.annotate(f"{a + m}", (x, a + m), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(positions), labels, rotation=45 if len(labels) > 8 else 0,
                  ha="right" if len(labels) > 8 else "center")
    ax.set_ylabel("inbound calls that rang (refused ones left out)", fontsize=9)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{title}\n{subtitle}", fontsize=10)
    ax.legend(loc="upper right", ncol=2, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    ax.margins(y=0.25)
    if not labels:
        ax.text(0.5, 0.5, "no calls", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _totals(rows: list[dict], key) -> dict:
    """(answered, missed) per key, summed over the rows (districts, or DIDs of one label)."""
    totals: dict = defaultdict(lambda: [0, 0])
    for row in rows:
        totals[key(row)][0] += row["answered"]
        totals[key(row)][1] += row["missed"]
    return {k: tuple(v) for k, v in totals.items()}
