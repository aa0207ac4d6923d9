"""Training throughput of Algorithm 1: seconds per step and events per second.

An event is one scene through the unrolled chains (demo code inference, query generation
and identification). Measured on region-point scenes of exactly N entities, each mode in
a fresh process (the allocator setting is per process), the first four cumulative and
all computing the same energy at 0/1 gates:
    naive     every pair computed, g fed the fractional gate at each identification step,
              autograd's SiLU, glibc's default allocator
    sparse    + only attended rows where the gate is an exact mask (network.ROW_MODE)
    silu      + SiLU's derivatives from one sigmoid (energy_model.activation)
    default   + freed memory kept for reuse (energy_model.allocator): what training runs
    expected  default, and identification's g run once per chain
              (ModelConfig.fractional_gate 'expected', RelationEnergy.gate_energy: a
              different energy between 0 and 1, not the default)
    no-kl-a   default, without identification's L_KL term, so its chain runs without a
              graph (LossConfig.kl_identification false: another loss, not the default)

    python bench/train_throughput.py [--batch-sizes 16 32] [--entities 6] [--steps 5]
                                     [--modes naive ... expected] [--hidden 128 [64 ...]]
                                     [--device cpu] [--json bench/train_throughput.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import time
from pathlib import Path

import torch

from energy_model import activation, network
from energy_model.algorithm import meta_loss
from energy_model.allocator import reuse_freed_memory
from energy_model.config import InferenceConfig, LossConfig, ModelConfig
from energy_model.data import TaskStream
from energy_model.model import ConceptModel

_NAIVE = {"rows": "all", "silu": False, "reuse": False, "fractional_gate": "input", "loss": {}}
_DEFAULT = {**_NAIVE, "rows": "sparse", "silu": True, "reuse": True}
MODES = {
    "naive": _NAIVE,
    "sparse": {**_NAIVE, "rows": "sparse"},
    "silu": {**_NAIVE, "rows": "sparse", "silu": True},
    "default": _DEFAULT,
    "expected": {**_DEFAULT, "fractional_gate": "expected"},
    "no-kl-a": {**_DEFAULT, "loss": {"kl_identification": False}},
}


def measure(b: int, n: int, steps: int, threads: int, device: str, mode: str, hidden: int):
    """Median seconds of one Adam step of Algorithm 1 over steps + 1 batches of b tasks
    with n entities (the first warms up), computed as MODES[mode] says. Run it in a fresh
    process: it sets process-wide switches."""
    how = MODES[mode]
    torch.set_num_threads(threads)
    if how["reuse"]:
        reuse_freed_memory()
    network.ROW_MODE, activation.HAND_DERIVATIVES = how["rows"], how["silu"]
    stream = TaskStream([("region-point", "action")], b, 0, n_entities=(n, n))
    batches = [stream.batch(i).to(device) for i in range(steps + 1)]
    torch.manual_seed(0)
    model_cfg = ModelConfig(hidden=hidden, fractional_gate=how["fractional_gate"])
    model = ConceptModel(model_cfg, InferenceConfig()).to(device)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    times = []
    for i, batch in enumerate(batches):
        t = time.perf_counter()
        loss = meta_loss(model, batch, LossConfig(**how["loss"]))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if i:  # the first step warms up
            times.append(time.perf_counter() - t)
    sec = sorted(times)[len(times) // 2]
    b, kd, _, n, _ = batches[0].demo_x.shape
    events = b * (kd + batches[0].query_x.shape[1])
    return {"batch_size": b, "entities": n, "hidden": hidden, "mode": mode,
            "sec_per_step": sec, "events_per_sec": events / sec}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32])
    p.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    p.add_argument("--entities", type=int, default=6)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--hidden", type=int, nargs="+", default=[128], help="widths of f and g (ModelConfig)"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path, default=Path("bench/train_throughput.json"))
    args = p.parse_args()
    spawn = multiprocessing.get_context("spawn")
    rows = []
    for b in args.batch_sizes:
        for h in args.hidden:
            for mode in args.modes:
                with spawn.Pool(1) as pool:
                    how = (b, args.entities, args.steps, args.threads, args.device, mode, h)
                    rows.append(pool.apply(measure, how))
    print(f"{'batch':>5s} {'N':>3s} {'width':>5s} {'mode':>8s} {'s/step':>8s} {'events/s':>9s} "
          f"{'x naive':>7s}")  # fmt: skip
    for r in rows:
        naive = next((q for q in rows if q["mode"] == "naive" and q["batch_size"] == r["batch_size"]
                      and q["hidden"] == r["hidden"]), None)  # fmt: skip
        r["speedup_over_naive"] = naive and naive["sec_per_step"] / r["sec_per_step"]
        print(f"{r['batch_size']:5d} {r['entities']:3d} {r['hidden']:5d} {r['mode']:>8s} "
              f"{r['sec_per_step']:8.3f} {r['events_per_sec']:9.1f} "
              f"{r['speedup_over_naive'] or float('nan'):7.2f}")  # fmt: skip
    meta = {"device": args.device, "threads": args.threads, "torch": torch.__version__,
            "machine": platform.processor() or platform.machine()}  # fmt: skip
    args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
