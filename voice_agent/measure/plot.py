"""The benchmark's picture: a per-stage waterfall per turn, and the latency distributions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SPANS = [  # (label, from, to) on the timeline, ms after the end of the user's speech
    ("STT", "stt_start", "transcript"),
    ("LLM first token", "transcript", "first_token"),
    ("first sentence", "first_token", "first_sentence"),
    ("TTS first audio", "first_sentence", "first_audio"),
]
COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    turns = [t for t in result["turns"] if t["response_latency_ms"] is not None]
    fig, (ax, hist) = plt.subplots(1, 2, figsize=(14, max(4, 0.45 * len(turns) + 1.5)), gridspec_kw={"width_ratios": [3, 2]})
    for row, turn in enumerate(turns):
        tl = turn["timeline_ms"]
        ax.barh(row, tl["turn_decided"], left=0, color="#dddddd", edgecolor="#999999")
        for (label, a, b), color in zip(SPANS, COLORS):
            if a in tl and b in tl:
                ax.barh(row, max(tl[b] - tl[a], 1), left=tl[a], height=0.5, color=color, label=label if row == 0 else None)
        ax.plot(turn["response_latency_ms"], row, "k|", markersize=14, label="first audio plays" if row == 0 else None)
    from matplotlib.patches import Patch

    handles, labels = ax.get_legend_handles_labels()
    handles.append(Patch(facecolor="#dddddd", edgecolor="#999999"))
    labels.append("silence until the turn ends")
    ax.set_yticks(range(len(turns)), [t["user_text"][:28] for t in turns], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="k", linewidth=0.8)
    ax.set_xlabel("ms after the end of the user's speech (work inside the grey bar ran speculatively)")
    ax.set_title("Where the time goes, per turn")
    ax.legend(handles, labels, fontsize=8, loc="lower right")

    agent = [t["response_latency_ms"] for t in turns]
    base = [b["response_latency_ms"] for b in result.get("baseline_turns", [])]
    bins = range(0, int(max(agent + base + [1000])) + 100, 100)
    hist.hist(base, bins=bins, alpha=0.6, label=f"naive baseline (p50 {result['baseline_response_latency_ms']['p50']:.0f} ms)")
    hist.hist(agent, bins=bins, alpha=0.8, label=f"voice-agent (p50 {result['response_latency_ms']['p50']:.0f} ms)")
    hist.set_xlabel("response latency: end of speech to first agent audio (ms)")
    hist.set_ylabel("turns")
    hist.set_title(f"{result['machine']['cores']} cores; LLM: {result['llm']}", fontsize=8, wrap=True)
    hist.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
