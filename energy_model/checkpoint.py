"""Checkpoints: weights, the full config, the entity layout and a format version.

Written atomically (a temporary file in the same directory, then os.replace), so a crash
never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from energy_model.config import InferenceConfig, ModelConfig, from_dict
from energy_model.model import ConceptModel
from particle_world import entities as E
from particle_world.io import atomic_path

FORMAT_VERSION = 3
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "assets/checkpoints/default.pt"
"""The shipped all-family model (README: how it was trained), found from any working
directory, as robot_transfer finds its MJCF assets."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used with this version of the code."""


def entity_layout() -> dict:
    return {
        "dim": E.DIM,
        "pos": [E.POS.start, E.POS.stop],
        "color": [E.COLOR.start, E.COLOR.stop],
        "shape": [E.SHAPE.start, E.SHAPE.stop],
        "shapes": list(E.SHAPES),
        "palette": {k: list(v) for k, v in E.PALETTE.items()},
    }


def atomic_torch_save(obj, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_checkpoint(path, model: ConceptModel, extra: dict | None = None) -> None:
    """Save the model and its configs; extra holds run state (step, optimizer, train config)."""
    payload = {
        "format_version": FORMAT_VERSION,
        "entity_layout": entity_layout(),
        "model_config": asdict(model.model_cfg),
        "inference_config": asdict(model.inference_cfg),
        "state_dict": model.state_dict(),
        **(extra or {}),
    }
    atomic_torch_save(payload, path)


def read_checkpoint(path, device="cpu") -> dict:
    """The raw checkpoint dict, after checking that it fits this code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {path}; train one with `python -m energy_model.train --out "
            "runs/NAME` (it writes runs/NAME/final.pt)"
        )
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise CheckpointError(  # torch's own text is long and suggests unsafe loading
            f"{path} is not a readable torch checkpoint ({type(exc).__name__}); use one written by "
            "`python -m energy_model.train` (runs/NAME/final.pt)"
        ) from exc
    if not isinstance(ckpt, dict) or "format_version" not in ckpt:
        raise CheckpointError(f"{path} is not a concept-model checkpoint (no format_version)")
    if ckpt["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {ckpt['format_version']}, this code reads version "
            f"{FORMAT_VERSION}; retrain it with this version of the code"
        )
    missing = [k for k in ("state_dict", "model_config", "inference_config") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} is not a concept-model checkpoint (no {', '.join(missing)})")
    bad = [
        k for k, v in ckpt["state_dict"].items() if v.is_floating_point() and not v.isfinite().all()
    ]
    if bad:
        raise CheckpointError(
            f"{path}: weights hold NaN or inf ({', '.join(bad[:3])}); use the run's last good "
            "checkpoint (runs/NAME/last.pt or best.pt) or retrain"
        )
    if ckpt.get("entity_layout") != entity_layout():
        raise CheckpointError(
            f"{path} was trained on another entity layout ({ckpt.get('entity_layout')}); "
            "retrain it with the current particle_world"
        )
    return ckpt


def load_model(path, device="cpu") -> ConceptModel:
    """A ConceptModel from a checkpoint, in eval mode on the given device."""
    ckpt = read_checkpoint(path, device)
    model = ConceptModel(*saved_configs(ckpt, path))
    load_weights(model, ckpt, path)
    return model.to(device).eval()


def saved_configs(ckpt: dict, path) -> tuple[ModelConfig, InferenceConfig]:
    """A checkpoint's model and inference configs (keys added since take their defaults)."""
    try:
        return (
            from_dict(ModelConfig, ckpt["model_config"]),
            from_dict(InferenceConfig, ckpt["inference_config"]),
        )
    except (ValueError, TypeError) as exc:
        raise CheckpointError(
            f"{path}: its config does not fit this version of the code ({exc}); retrain it "
            "with this version, or load it with the version that wrote it"
        ) from exc


def load_weights(model: ConceptModel, ckpt: dict, path) -> None:
    """Put a checkpoint's weights into model, or say why they do not fit its config."""
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the config ({exc})") from exc
