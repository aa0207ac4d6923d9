"""A 2D world of entities whose events demonstrate concepts, with their ground truth."""

from particle_world.concepts import REGISTRY, get_family
from particle_world.events import Event, EventBatch
from particle_world.tasks import Instance, Task, sample_instance, sample_task

__all__ = [
    "REGISTRY",
    "Event",
    "EventBatch",
    "Instance",
    "Task",
    "get_family",
    "sample_instance",
    "sample_task",
]
