"""The benchmark's picture, all judged from the audio: each recording's time from
its end of speech to the agent's first audio (and its failures), and the
latency distributions of the agent and the naive baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

OK, LATE, BAD = "#4c72b0", "#dd8452", "#c44e52"


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["per_recording"]
    fig, (ax, hist) = plt.subplots(1, 2, figsize=(14, max(4, 0.28 * len(rows) + 1.5)), gridspec_kw={"width_ratios": [3, 2]})
    for i, r in enumerate(rows):
        latency = r["latency_ms"]
        failed = r["premature"] or r["answers"] > 1 or r["repeated"]
        if latency is not None:
            ax.barh(i, latency, color=BAD if failed else OK, height=0.6)
        marks = [m for m, on in (("premature", r["premature"]), (f"{r['answers']} answers", r["answers"] > 1),
                                 ("words twice", bool(r["repeated"])), ("UNANSWERED", not r["answered"])) if on]  # fmt: skip
        if marks:
            ax.text((latency or 0) + 20, i, ", ".join(marks), va="center", fontsize=7, color=BAD)
    ax.set_yticks(range(len(rows)), [r["file"].split("/")[-1][:30] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("ms from the recording's end of speech (its own energy) to the agent's first audio")
    ax.set_title(f"{result['answered']} of {result['recordings']} answered; {len(result['premature'])} premature")

    agent = [r["latency_ms"] for r in rows if r["latency_ms"] is not None]
    base = [b["response_latency_ms"] for b in result["baseline"]["per_recording"] if b["response_latency_ms"] is not None]
    bins = range(0, int(max(agent + base + [1000])) + 100, 100)
    p50 = result["baseline"]["response_latency_ms"]["p50"]
    hist.hist(base, bins=bins, alpha=0.6, color=LATE, label=f"naive baseline (p50 {p50 or 0:.0f} ms)")
    hist.hist(agent, bins=bins, alpha=0.8, color=OK, label=f"voice-agent (p50 {result['response_latency_ms']['p50'] or 0:.0f} ms)")
    hist.set_xlabel("end of speech to first agent audio (ms)")
    hist.set_ylabel("recordings")
    hist.set_title(f"{result['machine']['cores']} cores; LLM: {result['llm']}", fontsize=8, wrap=True)
    hist.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
