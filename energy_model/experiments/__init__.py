"""The paper's experiments, one command each: ``python -m energy_model.experiments NAME``.

Each experiment writes PNGs and a JSON of numbers under --out (docs/results by default) and
prints a markdown table of its numbers. Experiments that only need a trained model take
--checkpoint; the ablations train their own small models under runs/exp-* (reused when
their saved config matches, --retrain to force).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from particle_world.concepts.base import UnknownName

EXPERIMENTS: dict[str, str] = {
    "fig4": "fig4",
    "fig6": "fig6",
    "fig7": "fig7",
    "no-rn": "norn",
    "fig8": "fig8",
    "composition": "composition",
}
"""Command name -> module of this package. Each module has DESCRIPTION, add_arguments(parser),
run(args) -> dict (the JSON it wrote) and table(result) -> str (markdown)."""


def experiment(name: str) -> ModuleType:
    if name not in EXPERIMENTS:
        raise UnknownName(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(f"{__name__}.{EXPERIMENTS[name]}")
