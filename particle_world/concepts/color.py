"""Color: attend every entity of color c (argument); attended entities turn color c (action)."""

from __future__ import annotations

import numpy as np

from particle_world import entities as E
from particle_world.concepts.base import COLOR_TOLERANCE, Action, Argument, Family, register
from particle_world.scene import Reject, Scene, refs_of


def _is_cross(x0: np.ndarray) -> np.ndarray:
    cross = np.zeros(len(x0), dtype=bool)
    cross[refs_of(x0)] = True
    return cross


def _sample_color(rng: np.random.Generator) -> dict:
    return {"color": E.COLOR_NAMES[rng.integers(len(E.COLOR_NAMES))]}


class ColorArgument(Argument):
    """Attend exactly the entities of one color; no other entity has it."""

    counts = (1, 2, 3, 4)

    def sample_params(self, rng):
        return _sample_color(rng)

    def assign(self, rng, scene: Scene, k, params):
        c = E.color_index(params["color"])
        chosen = rng.choice(scene.ordinary, size=k, replace=False)
        others = [i for i in range(len(E.COLOR_NAMES)) if i != c]
        scene.colors = rng.choice(others, size=scene.n)
        scene.colors[chosen] = c
        attention = np.zeros(scene.n, dtype=np.float32)
        attention[chosen] = 1.0
        return attention

    def attended(self, x0, params):
        """The ordinary entities of color c."""
        x0 = np.asarray(x0)
        is_c = E.nearest_color(x0[:, E.COLOR]) == E.color_index(params["color"])
        return (is_c & ~_is_cross(x0)).astype(np.float32)


class ColorAction(Action):
    """The attended entities take color c; positions stay."""

    counts = (1, 2, 3, 4, 5, 6, 7)
    tolerance = COLOR_TOLERANCE
    error_unit = "RGB distance"

    def sample_params(self, rng):
        return _sample_color(rng)

    def apply(self, rng, x0, attention, params):
        target = np.array(E.PALETTE[params["color"]], dtype=np.float32)
        if np.any(np.all(x0[attention > 0.5, E.COLOR] == target, axis=-1)):
            raise Reject("an attended entity already has the target color")
        x1 = x0.copy()
        x1[attention > 0.5, E.COLOR] = target
        return np.stack([x0, x1])

    def generation_error(self, x, attention, params):
        target = np.array(E.PALETTE[params["color"]])
        return float(np.linalg.norm(x[-1, attention > 0.5, E.COLOR] - target, axis=-1).mean())


ARGUMENT = ColorArgument()
ACTION = ColorAction()

register(
    Family(
        "color",
        "attend every entity of color c / the attended entities turn color c",
        argument=ARGUMENT,
        action=ACTION,
    )
)
