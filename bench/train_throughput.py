"""Training throughput of Algorithm 1: seconds per step and events per second.

An event is one scene through the unrolled chains (demo code inference, query generation
and identification). Measured on region-point scenes of exactly N entities, each mode in
its own process (its switches are per process), the modes stepped in turn so that this
machine's drift falls on all alike. The first three modes are cumulative and all compute
the same energy at 0/1 gates:
    naive     every pair computed, g fed the fractional gate at each identification step,
              autograd's SiLU
    sparse    + only attended rows where the gate is an exact mask, and g's first layer
              without the gate computed once per chain over the gate (network.ROW_MODE)
    default   + SiLU's derivatives from one sigmoid (energy_model.activation): what
              training runs
    expected  default, and identification's g run once per chain
              (ModelConfig.fractional_gate 'expected', RelationEnergy.gate_energy: a
              different energy between 0 and 1, not the default)
    no-kl-a   default, without identification's L_KL term, so its chain runs without a
              graph (LossConfig.kl_identification false: another loss, not the default)
    no-kl-x   default, without generation's L_KL term (its chain runs without a graph) and
              with the perturbed near misses (LossConfig.kl_generation false, perturbed 1,
              perturb_scale 2: another loss, not the default)
    no-kl     default, without either L_KL term and with the perturbed near misses
              (LossConfig.kl false, perturbed 1, perturb_scale 2: another loss)
    unroll-2  default, the query chains differentiated through their last 2 steps only
              (LossConfig.unroll 2: truncated, not the default)
    search    default, identification's negative the lowest-energy binary mask, every mask
              scored, and no identification chain (LossConfig.identification_negative)
    code-scale default, each input feature of g scaled by the code (ModelConfig.code_scale,
              which the all-family default checkpoint trains with)
    distance  code-scale, and each pair's distance an input of g's first layer
              (ModelConfig.pair_distance): the all-family default checkpoint's network
    code-likelihood distance, and identification's codes inferred from the demos'
              likelihood among their neighbor masks (InferenceConfig.code_likelihood)
    generation-likelihood distance, and generation's codes inferred from the demos'
              likelihood against their start and noised copies
              (InferenceConfig.generation_likelihood)
    figure    distance, and the attended entities' spread an input of generation's f
              (ModelConfig.figure_input)
    bf16      default, the loss computed under torch.autocast to bfloat16 (matrix products
              in bfloat16: fast where the CPU has AMX or AVX512-BF16; inexact, and not
              measured for learning, so no training switch)

    python bench/train_throughput.py [--batch-sizes 16 32] [--entities 6] [--steps 5]
                                     [--modes naive ... unroll-2] [--hidden 128 [64 ...]]
                                     [--threads 1] [--device cpu]
                                     [--json bench/train_throughput.json]
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import time
from pathlib import Path

import torch

from energy_model import activation, network
from energy_model.algorithm import meta_loss
from energy_model.config import InferenceConfig, LossConfig, ModelConfig
from energy_model.data import TaskStream
from energy_model.model import ConceptModel
from particle_world.io import write_json

_NAIVE = {
    "rows": "all", "silu": False, "model": {"fractional_gate": "input"}, "inference": {},
    "loss": {}, "bf16": False,
}  # fmt: skip
_DEFAULT = {**_NAIVE, "rows": "sparse", "silu": True}
_NEAR_MISSES = {"perturbed": 1.0, "perturb_scale": 2.0}
WARMUP = 3
"""Untimed steps first: a fresh process's first steps pay for mapping the memory it then
reuses (one thread, batch 128: 4.2, 4.8 and 3.6 s, up to 2.6 s of it in page faults, then
2.3 s a step)."""
MODES = {
    "naive": _NAIVE,
    "sparse": {**_NAIVE, "rows": "sparse"},
    "default": _DEFAULT,
    "expected": {**_DEFAULT, "model": {"fractional_gate": "expected"}},
    "no-kl-a": {**_DEFAULT, "loss": {"kl_identification": False}},
    "no-kl-x": {**_DEFAULT, "loss": {"kl_generation": False, **_NEAR_MISSES}},
    "no-kl": {**_DEFAULT, "loss": {"kl": False, **_NEAR_MISSES}},
    "unroll-2": {**_DEFAULT, "loss": {"unroll": 2}},
    "search": {**_DEFAULT, "loss": {"identification_negative": "search"}},
    "code-scale": {**_DEFAULT, "model": {**_DEFAULT["model"], "code_scale": True}},
    "distance": {**_DEFAULT, "model": {"code_scale": True, "pair_distance": True}},
    "code-likelihood": {
        **_DEFAULT,
        "model": {"code_scale": True, "pair_distance": True},
        "inference": {"code_likelihood": True},
    },
    "generation-likelihood": {
        **_DEFAULT,
        "model": {"code_scale": True, "pair_distance": True},
        "inference": {"generation_likelihood": True},
    },
    "figure": {
        **_DEFAULT,
        "model": {"code_scale": True, "pair_distance": True, "figure_input": True},
    },
    "bf16": {**_DEFAULT, "bf16": True},
}


def _stepper(conn, b: int, n: int, steps: int, threads: int, device: str, mode: str, hidden):
    """A process that trains as MODES[mode] says (it sets process-wide switches) and times
    one Adam step of Algorithm 1 each time it is asked, on batch i of WARMUP + steps batches of
    b tasks with n entities: its seconds."""
    how = MODES[mode]
    torch.set_num_threads(threads)
    network.ROW_MODE, activation.HAND_DERIVATIVES = how["rows"], how["silu"]
    stream = TaskStream([("region-point", "action")], b, 0, n_entities=(n, n))
    batches = [stream.batch(i).to(device) for i in range(WARMUP + steps)]
    torch.manual_seed(0)
    model = ConceptModel(
        ModelConfig(hidden=hidden, **how["model"]), InferenceConfig(**how["inference"])
    ).to(device)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    conn.send(b * (batches[0].demo_x.shape[1] + batches[0].query_x.shape[1]))  # events
    while (i := conn.recv()) is not None:
        t = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=how["bf16"]):
            loss = meta_loss(model, batches[i], LossConfig(**how["loss"]))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        conn.send(time.perf_counter() - t)


def measure(b: int, n: int, steps: int, threads: int, device: str, modes: list, hidden: int):
    """Rows of median per-step figures over steps steps after WARMUP more, one
    process per mode, the modes stepped in turn (the order rotating each round) so that
    this machine's drift, 10 to 20% between sittings, falls on all of them alike."""
    spawn = multiprocessing.get_context("spawn")
    procs, conns = [], []
    for mode in modes:
        here, there = spawn.Pipe()
        procs.append(spawn.Process(target=_stepper, args=(there, b, n, steps, threads, device,
                                                           mode, hidden)))  # fmt: skip
        procs[-1].start()
        conns.append(here)
    try:
        events = [conn.recv() for conn in conns][0]  # each reports it when ready; all alike
        times = {mode: [] for mode in modes}
        for i in range(WARMUP + steps):
            for k in range(len(modes)):
                j = (i + k) % len(modes)
                try:
                    conns[j].send(i)
                    sec = conns[j].recv()
                except (EOFError, BrokenPipeError):
                    procs[j].join()
                    raise SystemExit(
                        f"error: the {modes[j]} process at batch {b} died (exit code "
                        f"{procs[j].exitcode}; -9 is most often the out-of-memory killer): "
                        "measure smaller --batch-sizes, or that mode alone"
                    ) from None
                if i >= WARMUP:
                    times[modes[j]].append(sec)
    finally:
        for conn, proc in zip(conns, procs, strict=True):
            if proc.is_alive():
                conn.send(None)
        for proc in procs:
            proc.join()
    rows = []
    for mode in modes:
        sec = sorted(times[mode])[len(times[mode]) // 2]
        rows.append({"batch_size": b, "entities": n, "hidden": hidden, "mode": mode,
                     "sec_per_step": sec, "events_per_sec": events / sec})  # fmt: skip
    return rows


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
    rows = []
    for b in args.batch_sizes:
        for h in args.hidden:
            rows += measure(b, args.entities, args.steps, args.threads, args.device, args.modes, h)
    mw = max(len(r["mode"]) for r in rows)
    print(f"{'batch':>5s} {'N':>3s} {'width':>5s} {'mode':>{mw}s} {'s/step':>8s} {'events/s':>9s} "
          f"{'x naive':>7s}")  # fmt: skip
    for r in rows:
        naive = next((q for q in rows if q["mode"] == "naive" and q["batch_size"] == r["batch_size"]
                      and q["hidden"] == r["hidden"]), None)  # fmt: skip
        r["speedup_over_naive"] = naive and naive["sec_per_step"] / r["sec_per_step"]
        print(f"{r['batch_size']:5d} {r['entities']:3d} {r['hidden']:5d} {r['mode']:>{mw}s} "
              f"{r['sec_per_step']:8.3f} {r['events_per_sec']:9.1f} "
              f"{r['speedup_over_naive'] or float('nan'):7.2f}")  # fmt: skip
    meta = {"device": args.device, "threads": args.threads, "torch": torch.__version__,
            "machine": platform.processor() or platform.machine()}  # fmt: skip
    write_json(args.json, {"meta": meta, "rows": rows})


if __name__ == "__main__":
    main()
