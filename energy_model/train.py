"""Meta-train a concept energy by Algorithm 1.

    python -m energy_model.train --out runs/NAME [--config FILE.json] [--flags]

Writes into runs/NAME: config.json, metrics.jsonl (one line per logged step and per
evaluation), last.pt (every --checkpoint-every steps, atomically), best.pt (the weights of
the best periodic evaluation: a run that later collapses keeps its best state), final.pt,
curves.png, and with --ema a moving average of the weights, final_ema.pt.
--resume continues from runs/NAME/last.pt with the saved config; without it, a folder that
already holds a run is refused rather than mixed into.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from energy_model.algorithm import family_score_scales, meta_loss, scheduled
from energy_model.balance import ContextBalancer
from energy_model.checkpoint import (
    CheckpointError,
    load_weights,
    read_checkpoint,
    save_checkpoint,
    saved_configs,
)
from energy_model.cli_config import add_config_flags, build_config, refuse_out_of_range
from energy_model.config import TEST_TIME_ONLY, TrainConfig
from energy_model.data import TaskStream, units
from energy_model.evaluation import evaluate
from energy_model.langevin import SamplerDiverged
from energy_model.model import ConceptModel
from energy_model.plots import plot_curves
from particle_world.io import atomic_path, write_json


class TrainingDiverged(RuntimeError):
    pass


def build_model(cfg: TrainConfig) -> ConceptModel:
    torch.manual_seed(cfg.seed)
    return ConceptModel(cfg.model, cfg.inference).to(cfg.device)


def init_weights(model: ConceptModel, cfg: TrainConfig) -> None:
    """Load cfg.init's weights into model, or say which config keys differ."""
    ckpt = read_checkpoint(cfg.init, cfg.device)
    saved = saved_configs(ckpt, cfg.init)
    for mine, theirs in zip((cfg.model, cfg.inference), map(asdict, saved), strict=True):
        diff = sorted(
            k for k, v in asdict(mine).items() if theirs[k] != v and k not in TEST_TIME_ONLY
        )
        if diff:
            raise CheckpointError(
                f"--init {cfg.init}: its {type(mine).__name__} differs from this run's in "
                f"{', '.join(diff)}; "
                "give the same --model.* and --inference.* flags it was trained with "
                "(its config.json or the checkpoint's train_config)"
            )
    load_weights(model, ckpt, cfg.init)


def _check_finite(out: dict, step: int, max_energy: float) -> None:
    for name, value in out.items():
        v = value.item()
        if not math.isfinite(v) or (name.startswith("e_") and abs(v) > max_energy):
            raise TrainingDiverged(f"{name} = {v:.4g} at step {step}")


def _summary(result: dict) -> dict:
    rows = result["concepts"]
    out = {"mean_success": float(np.mean([r["success_rate"] for r in rows.values()]))}
    for name, r in rows.items():
        out[f"{name}/success"] = r["success_rate"]
        for key in ("generation_error", "attention_error"):
            if r[key] is not None:
                out[f"{name}/{key}"] = round(r[key], 4)
    return out


def _score(summary: dict) -> tuple[float, float]:
    """How periodic evaluations rank for best.pt: mean success, then lower mean error
    (success saturates on one family long before its error stops falling)."""
    errors = [v for k, v in summary.items() if k.endswith("_error")]
    return summary["mean_success"], -float(np.mean(errors)) if errors else 0.0


def check_config(cfg: TrainConfig) -> None:
    """Refuse settings no run can use, naming their flags, before any work is done."""
    lo, hi = cfg.n_entities
    inf, loss = cfg.inference, cfg.loss
    refuse_out_of_range(cfg, {
        "steps": (cfg.steps >= 1, "at least 1"),
        "seed": (cfg.seed >= 0, "0 or more"),
        "batch_size": (cfg.batch_size >= 1, "at least 1"),
        "queries": (cfg.queries >= 1, "at least 1"),
        "lr": (cfg.lr > 0, "positive"),
        "step_size_lr_scale": (cfg.step_size_lr_scale >= 0, "0 or more"),
        "grad_clip": (cfg.grad_clip >= 0, "0 or more"),
        "threads": (cfg.threads >= 1, "at least 1"),
        "workers": (cfg.workers >= 0, "0 or more"),
        "n_entities": (1 <= lo <= hi, "MIN,MAX with 1 <= MIN <= MAX"),
        "eval_every": (cfg.eval_every >= 0, "0 or more"),
        "eval_tasks": (cfg.eval_tasks >= 1, "at least 1"),
        "checkpoint_every": (cfg.checkpoint_every >= 1, "at least 1"),
        "max_energy": (cfg.max_energy > 0, "positive"),
        "ema": (0 <= cfg.ema < 1, "in [0, 1)"),
        "model.hidden": (cfg.model.hidden >= 1, "at least 1"),
        "model.code_dim": (cfg.model.code_dim >= 1, "at least 1"),
        "inference.x.steps": (inf.x.steps >= 1, "at least 1"),
        "inference.a.steps": (inf.a.steps >= 1, "at least 1"),
        "inference.w.steps": (inf.w.steps >= 0, "0 or more (0: the learned start)"),
        "loss.energy_reg": (loss.energy_reg >= 0, "0 or more"),
        "loss.energy_reg_identification": (
            loss.energy_reg_identification is None or loss.energy_reg_identification >= 0,
            "0 or more (or none: energy_reg)",
        ),
    })  # fmt: skip
    family_score_scales(cfg.loss)
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda, but this torch sees no CUDA device: use --device cpu")
    if not cfg.device.startswith(("cpu", "cuda")):
        raise ValueError(f"--device must be cpu or cuda, got {cfg.device!r}")


def _forget_after(log: Path, step: int) -> None:
    """Drop the log lines of steps after `step` (a resumed run logs them again) and a last
    line cut short by the interruption."""

    def kept(line: str) -> bool:
        try:
            return json.loads(line)["step"] <= step
        except (json.JSONDecodeError, KeyError):
            return False

    if log.exists():
        lines = log.read_text().splitlines(keepends=True)
        with atomic_path(log) as tmp:
            tmp.write_text("".join(ln for ln in lines if kept(ln)))


def train(cfg: TrainConfig, out: Path, resume: bool = False, quiet: bool = False) -> ConceptModel:
    """Run Algorithm 1 for cfg.steps; returns the trained model (also saved as final.pt)."""
    check_config(cfg)
    if not resume and (out / "last.pt").exists():
        raise FileExistsError(
            f"{out} already holds a run: continue it with --resume, or give another --out "
            "(or delete the folder)"
        )
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    model = build_model(cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    steps_ = [p for n, p in model.named_parameters() if p.requires_grad and n.endswith("log_step")]
    rest = [p for p in params if all(p is not q for q in steps_)]
    opt = torch.optim.Adam(
        [{"params": rest}, {"params": steps_, "lr": cfg.lr * cfg.step_size_lr_scale}], lr=cfg.lr
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.steps, 1))
    balancer = ContextBalancer() if cfg.balance_contexts else None
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema)) if cfg.ema else None
    start, best = 0, None
    if resume:
        ckpt = read_checkpoint(out / "last.pt", cfg.device)
        saved = asdict(saved_configs(ckpt, out / "last.pt")[0])
        changed = sorted(k for k, v in asdict(cfg.model).items() if saved[k] != v)
        if changed:
            raise ValueError(
                f"--resume keeps the run's network; {', '.join(changed)} differ from "
                f"{out / 'last.pt'}'s: start a new run to change them (--init to start it "
                "from these weights where they fit)"
            )
        load_weights(model, ckpt, out / "last.pt")
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        start = ckpt["step"]
        if start >= cfg.steps:
            raise ValueError(
                f"{out} is already trained to step {start} of {cfg.steps}: give --steps above "
                f"{start} to train it further"
            )
        _forget_after(out / "metrics.jsonl", start)
        best = tuple(ckpt["best_score"]) if ckpt.get("best_score") else None
        torch.set_rng_state(ckpt["torch_rng"])
        if balancer is not None and "balancer" in ckpt:  # else its running norms start anew
            balancer.load_state_dict(ckpt["balancer"])
        if ema is not None and "ema" in ckpt:  # else the average starts at these weights
            ema.load_state_dict(ckpt["ema"])
    elif cfg.init:
        init_weights(model, cfg)
    write_json(out / "config.json", asdict(cfg))
    unit_list = units(cfg.concepts, cfg.roles)
    stream = TaskStream(
        unit_list, cfg.batch_size, cfg.seed, n_queries=cfg.queries, n_entities=cfg.n_entities,
        paired=cfg.loss.code_contrast > 0,
    )  # fmt: skip

    def checkpoint(name: str, step: int, resumable: bool = True, weights=model) -> None:
        extra = {"step": step, "train_config": asdict(cfg)}
        if resumable:
            extra.update(
                optimizer=opt.state_dict(),
                scheduler=sched.state_dict(),
                torch_rng=torch.get_rng_state(),
                best_score=list(best) if best else None,
            )
            if balancer is not None:
                extra["balancer"] = balancer.state_dict()
            if ema is not None:
                extra["ema"] = ema.state_dict()
        save_checkpoint(out / name, weights, extra)

    log = (out / "metrics.jsonl").open("a" if resume else "w")

    def held_out(net) -> dict:
        return evaluate(net, cfg.concepts, cfg.eval_tasks, cfg.seed + 1, roles=cfg.roles)

    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=quiet, ncols=100)
    t0 = time.time()
    batches = iter(stream.batches(start, cfg.steps, cfg.workers))
    for step in bar:
        batch = next(batches).to(cfg.device)
        try:
            terms = meta_loss(model, batch, scheduled(cfg.loss, step, cfg.steps))
            _check_finite(terms, step, cfg.max_energy)
        except (SamplerDiverged, TrainingDiverged) as exc:
            log.close()
            last = out / "last.pt"
            kept = (
                f"The last good checkpoint is {last} (resume with --resume after"
                if last.exists()
                else "No checkpoint was written yet (start again after"
            )
            raise TrainingDiverged(
                f"training diverged at step {step}: {exc}. {kept} lowering --lr or the "
                "sampler step sizes)"
            ) from exc
        opt.zero_grad(set_to_none=True)
        if balancer is None:
            terms["loss"].backward()
            context_norms = {}
        else:
            context_norms = balancer.backward(terms, params)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip or float("inf"))
        opt.step()
        sched.step()
        if ema is not None:
            ema.update_parameters(model)
        record = {k: round(v.item(), 5) for k, v in terms.items()}
        record.update({k: round(v, 4) for k, v in context_norms.items()})
        record.update(step=step + 1, grad_norm=round(grad_norm.item(), 4), time=time.time() - t0)
        log.write(json.dumps(record) + "\n")
        log.flush()
        bar.set_postfix(loss=f"{record['loss']:.3f}")
        done = step + 1
        if (cfg.eval_every and done % cfg.eval_every == 0) or done == cfg.steps:
            result = held_out(model)
            summary = _summary(result)
            score = _score(summary)
            if best is None or score > best:
                best = score
                checkpoint("best.pt", done, resumable=False)
            log.write(json.dumps({"step": done, "eval": summary}) + "\n")
            if ema is not None:
                ema_summary = _summary(held_out(ema.module))
                log.write(json.dumps({"step": done, "eval_ema": ema_summary}) + "\n")
            log.flush()
            plot_curves(out / "metrics.jsonl", out / "curves.png")
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            checkpoint("last.pt", done)  # after the evaluation: it holds the best score
    log.close()
    checkpoint("final.pt", cfg.steps, resumable=False)
    if ema is not None:
        checkpoint("final_ema.pt", cfg.steps, resumable=False, weights=ema.module)
    write_json(out / "eval.json", result)
    return model


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m energy_model.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, type=Path, help="run directory (runs/NAME)")
    parser.add_argument("--config", type=Path, help="JSON file of config values (flags win)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument(
        "--paper", action="store_true",
        help="the paper's recipe as written: squared head, literal SGLD, Gaussian code init",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_flags(parser, TrainConfig)
    return parser.parse_args(argv)


def paper_overrides() -> dict:
    from energy_model.config import paper_inference

    return {
        "model": {"head": "square", "pair_gate": "attended-pairs"},
        "inference": asdict(paper_inference()),
        "loss": {"energy_reg": 0.0, "target": 0.0},
        "balance_contexts": False,
    }


def read_config_file(path: Path, label: str = "--config") -> dict:
    """The config values of a --config file (or, label naming it, a run's config.json); a
    file that is not a JSON object of them is refused in one line."""
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise ValueError(f"{label} {path}: cannot read it ({err.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{label} {path} is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(
            f"{label} {path} must hold one JSON object of config values, as a run's "
            "config.json does"
        )
    return data


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.resume:  # the saved config, with any flags given now on top
            if not (args.out / "last.pt").is_file():
                raise FileNotFoundError(
                    f"nothing to resume in {args.out}: no last.pt there (start the run "
                    "without --resume)"
                )
            base = read_config_file(args.out / "config.json", "the run's config")
        else:
            base = paper_overrides() if args.paper else {}
            if args.config:
                base.update(read_config_file(args.config))
        cfg = build_config(TrainConfig, args, base)
        units(cfg.concepts, cfg.roles)  # unknown names fail here, before any work
        train(cfg, args.out, resume=args.resume, quiet=args.quiet)
    except (TrainingDiverged, CheckpointError, ValueError, KeyError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
