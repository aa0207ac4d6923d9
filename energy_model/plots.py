"""Training curves from a metrics.jsonl, as a PNG (written atomically)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from particle_world.io import atomic_path  # noqa: E402

LOSS_KEYS = ("loss", "ml_x", "ml_a", "kl_x", "kl_a")


def save_figure(fig, path: Path) -> None:
    """Save a pyplot figure atomically and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format=Path(path).suffix.lstrip("."))
    plt.close(fig)


def plot_curves(metrics: Path, out: Path) -> None:
    rows = [json.loads(line) for line in Path(metrics).read_text().splitlines() if line]
    train = [r for r in rows if "loss" in r]
    evals = [r for r in rows if "eval" in r]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4))
    for key in LOSS_KEYS:
        pts = [(r["step"], r[key]) for r in train if key in r]
        if pts:
            steps, vals = zip(*pts, strict=True)
            ax0.plot(steps, vals, label=key, lw=0.8)
    ax0.set_xlabel("step")
    ax0.set_title("training losses")
    ax0.legend()
    if evals:
        steps = [r["step"] for r in evals]
        ax1.plot(steps, [r["eval"]["mean_success"] for r in evals], "k-o", label="mean")
        averaged = [(r["step"], r["eval_ema"]["mean_success"]) for r in rows if "eval_ema" in r]
        if averaged:
            ax1.plot(*zip(*averaged, strict=True), "k--s", label="mean, weight average")
        for key in evals[-1]["eval"]:
            if key.endswith("/success"):
                ax1.plot(steps, [r["eval"].get(key) for r in evals], lw=0.6, label=key[:-8])
        ax1.set_ylim(0, 1)
        ax1.legend(fontsize=6, ncol=2)
    ax1.set_xlabel("step")
    ax1.set_title("held-out success rate")
    save_figure(fig, out)


def plot_success(results: dict[str, dict], out: Path, target: float = 0.9) -> None:
    """Held-out success per concept family, one bar per model (results: model name ->
    evaluation with 'concepts'), the target drawn as a line: the evaluation table at a
    glance."""
    names = list(next(iter(results.values()))["concepts"])
    height = 0.8 / len(results)
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(names) + 1.2))
    for k, (model, res) in enumerate(results.items()):
        rates = [res["concepts"][n]["success_rate"] for n in names]
        mean = sum(rates) / len(rates)
        ys = [i + (k - (len(results) - 1) / 2) * height for i in range(len(names))]
        ax.barh(ys, rates, height=height, label=f"{model} (mean {mean:.1%})")
    ax.axvline(target, color="k", ls="--", lw=0.8, label=f"target {target:.0%}")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("held-out success rate")
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    save_figure(fig, out)
