"""Fig. 6: are concept codes shared across contexts? PCA of the codes of color events.

A color task (attend the entities of color c1, turn them color c2) gives two codes from its
demos: w_x, the action 'turn c2', and w_a, the argument 'attend c1', both in the one code
space of the network. The figure projects both sets on their first two principal components
(filled dots: w_x colored by c2; open triangles: w_a colored by c1). The number for the
paper's claim is the nearest-centroid accuracy of each w_a against the centroids of the w_x
of each color (and conversely); chance is 1/6. For reference: the same accuracy within one
context (leave-one-out), and across contexts after centering each context's codes (a shared
color direction under a constant offset between contexts), and the same-color gap: how far
a color's w_a centroid lies from its w_x centroid, relative to the distance between colors
(0: identical codes). Both codes are read from one
network's gradient at scenes whose attended entities have the color, so some sharing is built
in: the same numbers for the untrained network (same config, fresh weights) are the baseline.
"""

from __future__ import annotations

import numpy as np
import torch

from energy_model.evaluate import untrained_like
from energy_model.experiments import common as C
from particle_world import entities as E
from particle_world.io import write_json

DESCRIPTION = __doc__
CODE_BATCH = 64
"""Tasks whose codes are inferred in one batch."""


def add_arguments(parser) -> None:
    C.add_common_args(parser, tasks=180)
    C.add_checkpoint_arg(parser)


def color_codes(model, n_tasks: int, seed: int) -> dict:
    """{"w_x": [B, C], "w_a": [B, C], "x_color": [B], "a_color": [B]} (palette indices)."""
    C.seed_everything(seed)
    tasks = C.sample_tasks("color", "action", n_tasks, seed)
    w_x, w_a = [], []
    for lo in range(0, n_tasks, CODE_BATCH):
        wx, wa = C.task_codes(model, tasks[lo : lo + CODE_BATCH])
        w_x.append(wx.cpu().numpy())
        w_a.append(wa.cpu().numpy())
    index = E.color_index
    return {
        "w_x": np.concatenate(w_x),
        "w_a": np.concatenate(w_a),
        "x_color": np.array([index(t.instance.action_params["color"]) for t in tasks]),
        "a_color": np.array([index(t.instance.argument_params["color"]) for t in tasks]),
    }


def centroids(codes: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """[k, C] mean code per label (NaN for a label without codes)."""
    return np.stack(
        [
            codes[labels == c].mean(0) if (labels == c).any() else np.full(codes.shape[1], np.nan)
            for c in range(k)
        ]
    )


def nearest(codes: np.ndarray, cents: np.ndarray) -> np.ndarray:
    """Index [B] of the nearest centroid [k, C] of each code [B, C]."""
    d = ((codes[:, None] - cents[None]) ** 2).sum(-1)  # [B, k]
    return np.where(np.isnan(d), np.inf, d).argmin(1)


def leave_one_out(codes: np.ndarray, labels: np.ndarray, k: int) -> float:
    hits = []
    for b in range(len(codes)):
        keep = np.arange(len(codes)) != b
        hits.append(
            nearest(codes[b : b + 1], centroids(codes[keep], labels[keep], k))[0] == labels[b]
        )
    return float(np.mean(hits))


def sharing_metrics(d: dict) -> dict:
    k = len(E.COLOR_NAMES)
    cx, ca = centroids(d["w_x"], d["x_color"], k), centroids(d["w_a"], d["a_color"], k)
    zx, za = d["w_x"] - d["w_x"].mean(0), d["w_a"] - d["w_a"].mean(0)
    czx, cza = centroids(zx, d["x_color"], k), centroids(za, d["a_color"], k)

    def acc(codes, labels, cents):
        return float((nearest(codes, cents) == labels).mean())

    return {
        "w_a_vs_w_x_centroids": acc(d["w_a"], d["a_color"], cx),
        "w_x_vs_w_a_centroids": acc(d["w_x"], d["x_color"], ca),
        "centered_w_a_vs_w_x_centroids": acc(za, d["a_color"], czx),
        "centered_w_x_vs_w_a_centroids": acc(zx, d["x_color"], cza),
        "within_w_x_leave_one_out": leave_one_out(d["w_x"], d["x_color"], k),
        "within_w_a_leave_one_out": leave_one_out(d["w_a"], d["a_color"], k),
        "chance": 1.0 / k,
        "same_color_gap": same_color_gap(cx, ca),
        "confusion_w_a_to_w_x": _confusion(nearest(d["w_a"], cx), d["a_color"], k),
    }


def same_color_gap(cx: np.ndarray, ca: np.ndarray) -> float:
    """Mean distance between the w_x and the w_a centroid of one color, over the mean
    distance between w_x centroids of different colors: 0 when the contexts share codes
    exactly, about 1 when a color's w_a is as far from its w_x as another color is."""
    k = len(cx)
    same = np.linalg.norm(cx - ca, axis=1).mean()
    between = np.linalg.norm(cx[:, None] - cx[None], axis=-1).sum() / (k * (k - 1))
    return float(same / between)


def _confusion(pred: np.ndarray, true: np.ndarray, k: int) -> list[list[int]]:
    m = np.zeros((k, k), dtype=int)  # rows: true color, columns: assigned color
    np.add.at(m, (true, pred), 1)
    return m.tolist()


def pca2(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Projection [B, 2] on the first two principal components, and their variance shares."""
    z = codes - codes.mean(0)
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    return z @ vt[:2].T, (s**2 / (s**2).sum())[:2]


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    model = C.load_trained(args.checkpoint)
    d = color_codes(model, args.tasks, args.seed)
    metrics = sharing_metrics(d)
    untrained = sharing_metrics(color_codes(untrained_like(args.checkpoint), args.tasks, args.seed))
    n = len(d["w_x"])
    proj, share = pca2(np.concatenate([d["w_x"], d["w_a"]]))  # [2B, 2]

    fig = C.new_figure(10.5, 4.6)
    ax, ax_m = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1]})
    for c, name in enumerate(E.COLOR_NAMES):
        rgb = E.PALETTE[name]
        px, pa = proj[:n][d["x_color"] == c], proj[n:][d["a_color"] == c]
        ax.scatter(
            *px.T, s=22, color=rgb, edgecolors="black", linewidths=0.4, label=f"w_x turn {name}"
        )
        ax.scatter(
            *pa.T,
            s=30,
            marker="^",
            facecolors="none",
            edgecolors=rgb,
            linewidths=1.2,
            label=f"w_a attend {name}",
        )
    ax.set_xlabel(f"PC 1 ({share[0]:.0%} of variance)")
    ax.set_ylabel(f"PC 2 ({share[1]:.0%})")
    ax.set_title("codes of color events (filled: w_x, open: w_a)", fontsize=9)
    ax.legend(fontsize=6, ncol=2, loc="best")
    conf = np.array(metrics["confusion_w_a_to_w_x"])
    ax_m.imshow(conf, cmap="Greys")
    for (r, c), v in np.ndenumerate(conf):
        ax_m.text(
            c,
            r,
            str(v),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if v > conf.max() / 2 else "black",
        )
    ax_m.set_xticks(range(len(E.COLOR_NAMES)), E.COLOR_NAMES, rotation=45, fontsize=7)
    ax_m.set_yticks(range(len(E.COLOR_NAMES)), E.COLOR_NAMES, fontsize=7)
    ax_m.set_xlabel("nearest w_x centroid")
    ax_m.set_ylabel("color that w_a attends")
    ax_m.set_title(
        f"w_a by nearest w_x centroid: {metrics['w_a_vs_w_x_centroids']:.0%} right "
        f"(chance {metrics['chance']:.0%})",
        fontsize=9,
    )
    fig.tight_layout()
    result = {
        "checkpoint": str(args.checkpoint),
        "seed": args.seed,
        "tasks": args.tasks,
        "pca_variance_share": share.round(4).tolist(),
        **metrics,
        "untrained": untrained,
    }
    result["figure"] = str(C.save_figure(fig, args.out / "fig6.png"))
    write_json(args.out / "fig6.json", result)
    return result


ROWS = {
    "w_a_vs_w_x_centroids": "nearest centroid: w_a vs w_x centroids",
    "w_x_vs_w_a_centroids": "nearest centroid: w_x vs w_a centroids",
    "centered_w_a_vs_w_x_centroids": "nearest centroid: centered w_a vs w_x centroids",
    "centered_w_x_vs_w_a_centroids": "nearest centroid: centered w_x vs w_a centroids",
    "within_w_x_leave_one_out": "nearest centroid: within w_x, leave one out",
    "within_w_a_leave_one_out": "nearest centroid: within w_a, leave one out",
    "chance": "chance",
}
"""Table rows: JSON key -> label."""


def table(result: dict) -> str:
    rows = [[label, C.pct(result[k]), C.pct(result["untrained"][k])] for k, label in ROWS.items()]
    gap = [result["same_color_gap"], result["untrained"]["same_color_gap"]]
    rows.append(["same-color gap (0 = shared)", *(round(g, 3) for g in gap)])
    return C.markdown_table(["measure", "trained", "untrained"], rows)
