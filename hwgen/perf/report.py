"""Report writers: Markdown + JSON + a per-layer cycle chart (PNG)."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["write_report"]


def write_report(summary: dict, prefix: Path) -> dict[str, Path]:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": prefix.with_suffix(".json"),
        "md": prefix.with_suffix(".md"),
        "png": prefix.with_suffix(".png"),
    }
    body = {k: v for k, v in summary.items() if k != "text"}
    paths["json"].write_text(json.dumps(body, indent=1))
    md = [
        f"# hwgen report: {summary['model']} on {summary['array']}",
        "",
        "Cycle counts are measured by the design's own counters in Verilator simulation.",
        "",
        "```",
        summary["text"],
        "```",
        "",
        f"![cycles per layer]({paths['png'].name})",
        "",
    ]
    paths["md"].write_text("\n".join(md))
    _chart(summary, paths["png"])
    return paths


def _chart(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = summary["cycles"]["layers"]
    names = [x["name"] for x in layers] + ["data-in", "results"]
    measured = [x["cycles"] for x in layers] + [
        summary["cycles"]["input"],
        summary["cycles"]["output"],
    ]
    ideal = [x["executed_ideal_cycles"] for x in layers] + [0, 0]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], measured, width=0.4, label="measured (RTL)")
    ax.bar([x + 0.2 for x in xs], ideal, width=0.4, label="ideal (executed MACs/PEs)")
    ax.set_xticks(list(xs), names, rotation=20)
    ax.set_ylabel("cycles")
    ax.set_title(
        f"{summary['model']} on {summary['array']}: {summary['cycles']['total']:.0f} cycles, "
        f"PEs busy {100 * summary['utilisation']:.0f}%"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
