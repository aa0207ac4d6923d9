"""Concepts as energy functions E(x, a, w), learned from few demonstrations (Algorithm 1).

The few-shot API the robot side uses: load a checkpoint, infer codes from demos, then
generate (argmin over x) or identify (argmin over a), all batched.
"""

from energy_model.checkpoint import CheckpointError, load_model
from energy_model.inference import Codes, generate, identify, infer_codes
from energy_model.model import ConceptModel

__all__ = [
    "CheckpointError",
    "Codes",
    "ConceptModel",
    "generate",
    "identify",
    "infer_codes",
    "load_model",
]
