"""Fixtures of the robot tests."""

import pytest
import torch
from robot_helpers import MOTORS, MOVER, TWO_LINK, arrangement

from robot_transfer.robots import ROBOTS
from robot_transfer.scene import build_scene


@pytest.fixture(autouse=True)
def _one_torch_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def arm_scene():
    return build_scene(ROBOTS["arm"], arrangement(), MOVER)


@pytest.fixture
def two_link_xml(tmp_path):
    def write(actuators: str = MOTORS):
        path = tmp_path / "two_link.xml"
        path.write_text(TWO_LINK.format(actuators=actuators))
        return path

    return write
