"""Concept families, one module per group of the paper's appendix; importing registers them."""

# Registration order is the paper's appendix order.
from particle_world.concepts import color, region, placement, shapes  # noqa: F401, I001
from particle_world.concepts import proximity, quantity, temporal  # noqa: F401
from particle_world.concepts.base import REGISTRY, Action, Argument, Family, get_family

__all__ = ["REGISTRY", "Action", "Argument", "Family", "get_family"]
