"""Training throughput of Algorithm 1: seconds per step and events per second.

An event is one scene through the unrolled chains (demo code inference, query generation
and identification). Measured on region-point scenes of exactly N entities, in three
modes that compute the same energy at 0/1 gates:
    naive     every pair computed, g fed the fractional gate at each identification step
    sparse    only attended rows where the gate is an exact mask (network.ROW_MODE; the
              default)
    expected  sparse, and identification's g run once per chain
              (ModelConfig.fractional_gate 'expected', RelationEnergy.gate_energy: a
              different energy between 0 and 1, not the default)

    python bench/train_throughput.py [--batch-sizes 16 32] [--entities 6] [--steps 5]
                                     [--hidden 128 [64 ...]] [--device cpu]
                                     [--json bench/train_throughput.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from energy_model import network
from energy_model.algorithm import meta_loss
from energy_model.config import InferenceConfig, LossConfig, ModelConfig
from energy_model.data import TaskStream
from energy_model.model import ConceptModel

MODES = {
    "naive": {"rows": "all", "fractional_gate": "input"},
    "sparse": {"rows": "sparse", "fractional_gate": "input"},
    "expected": {"rows": "sparse", "fractional_gate": "expected"},
}


def measure(batches: list, device: str, mode: str, hidden: int) -> dict:
    """Median seconds of one Adam step of Algorithm 1 over the batches (the first warms up),
    computed as MODES[mode] says."""
    torch.manual_seed(0)
    how = MODES[mode]
    model_cfg = ModelConfig(hidden=hidden, fractional_gate=how["fractional_gate"])
    model = ConceptModel(model_cfg, InferenceConfig()).to(device)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    default, network.ROW_MODE = network.ROW_MODE, how["rows"]
    try:
        times = []
        for i, batch in enumerate(batches):
            t = time.perf_counter()
            loss = meta_loss(model, batch, LossConfig())["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            if device == "cuda":
                torch.cuda.synchronize()
            if i:  # the first step warms up
                times.append(time.perf_counter() - t)
    finally:
        network.ROW_MODE = default
    sec = sorted(times)[len(times) // 2]
    b, kd, _, n, _ = batches[0].demo_x.shape
    events = b * (kd + batches[0].query_x.shape[1])
    return {"batch_size": b, "entities": n, "hidden": hidden, "mode": mode,
            "sec_per_step": sec, "events_per_sec": events / sec}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32])
    p.add_argument("--entities", type=int, default=6)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--hidden", type=int, nargs="+", default=[128], help="widths of f and g (ModelConfig)"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path, default=Path("bench/train_throughput.json"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for b in args.batch_sizes:
        stream = TaskStream([("region-point", "action")], b, 0, n_entities=(args.entities,) * 2)
        batches = [stream.batch(i).to(args.device) for i in range(args.steps + 1)]
        rows += [measure(batches, args.device, mode, h) for h in args.hidden for mode in MODES]
    print(f"{'batch':>5s} {'N':>3s} {'width':>5s} {'mode':>8s} {'s/step':>8s} {'events/s':>9s}")
    for r in rows:
        print(f"{r['batch_size']:5d} {r['entities']:3d} {r['hidden']:5d} {r['mode']:>8s} "
              f"{r['sec_per_step']:8.3f} {r['events_per_sec']:9.1f}")  # fmt: skip
    meta = {"device": args.device, "threads": args.threads, "torch": torch.__version__,
            "machine": platform.processor() or platform.machine()}  # fmt: skip
    args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
