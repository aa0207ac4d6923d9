"""Robot specs: a custom MJCF works; unknown names and bad robots give clean errors."""

import re

import numpy as np
import pytest
from robot_helpers import GOAL, MOTORS, MOVER, arrangement, reach

from robot_transfer.controllers import make_controller
from robot_transfer.costs import GoalDistanceCost
from robot_transfer.reenact import main
from robot_transfer.robots import ROBOTS, RobotError, resolve_robot
from robot_transfer.scene import build_scene, workspace_of


def test_custom_mjcf_path_works(two_link_xml):
    spec = resolve_robot(str(two_link_xml()), ee_site="tip")
    cx, cy, half = workspace_of(spec)
    assert 0.05 < half < 0.3 and abs(cx) + abs(cy) + half < 0.45  # inside the 0.4 m reach
    scene = build_scene(spec, arrangement(), MOVER)
    assert scene.model.nu == 2
    dist = reach(scene, GoalDistanceCost(GOAL, MOVER), "mppi", duration=1.5)
    assert dist[0] > 0.1 and dist[-1] < 0.02


def test_tendon_motor_is_planned_and_servo_refused(two_link_xml):
    """A motor on a tendon (here one coupling both joints, as a gripper's would its
    fingers) is planned with the joint motors; a position servo is refused by name."""
    tendon = (
        '<motor name="couple" tendon="couple" ctrlrange="-0.5 0.5"/></actuator>'
        '<tendon><fixed name="couple"><joint joint="shoulder" coef="1"/>'
        '<joint joint="elbow" coef="1"/></fixed></tendon><actuator>'
    )
    spec = resolve_robot(str(two_link_xml(MOTORS + tendon)), ee_site="tip")
    scene = build_scene(spec, arrangement(), MOVER)
    assert scene.model.nu == 3
    dist = reach(scene, GoalDistanceCost(GOAL, MOVER), "mppi", duration=1.5)
    assert dist[0] > 0.1 and dist[-1] < 0.02
    servo = '<position name="grip" joint="elbow" kp="5" ctrlrange="-1 1"/>'
    spec = resolve_robot(str(two_link_xml(MOTORS + servo)), ee_site="tip")
    with pytest.raises(RobotError, match="not motors on a joint or tendon: .*grip; .*<motor"):
        build_scene(spec, arrangement(), MOVER)


def test_servos_become_torque_motors_on_request(two_link_xml):
    """--servos-as-motors turns position servos into motors limited by their forcerange
    (default classes included) that the planner drives; without a forcerange, or on a
    shipped robot, it is refused."""
    servos = (
        '<position name="s1" joint="shoulder" kp="5" forcerange="-1 1"/>'
        '<position class="weak" joint="elbow" kp="5"/></actuator>'
        '<default><default class="weak"><position forcerange="-0.8 0.8"/></default></default>'
        "<actuator>"
    )
    spec = resolve_robot(str(two_link_xml(servos)), ee_site="tip", servos_as_motors=True)
    scene = build_scene(spec, arrangement(), MOVER)
    model = scene.model
    assert model.actuator(0).name.endswith("s1") and model.nu == 2
    assert np.all(model.actuator_biastype == 0) and np.all(model.actuator_gainprm[:, 0] == 1)
    np.testing.assert_allclose(model.actuator_ctrlrange, [[-1, 1], [-0.8, 0.8]])
    assert [model.body_gravcomp[model.body(f"two_link/{b}").id] for b in ("upper", "lower")] == [
        1,
        1,
    ]
    dist = reach(scene, GoalDistanceCost(GOAL, MOVER), "mppi", duration=1.5)
    assert dist[0] > 0.1 and dist[-1] < 0.02
    unlimited = '<motor joint="elbow" ctrlrange="-1 1"/><position joint="shoulder" kp="5"/>'
    spec = resolve_robot(str(two_link_xml(unlimited)), "tip", servos_as_motors=True)
    with pytest.raises(RobotError, match="joint 'shoulder' has no forcerange"):
        build_scene(spec, arrangement(), MOVER)
    with pytest.raises(RobotError, match="for robots given as .xml files"):
        resolve_robot("arm", servos_as_motors=True)


def test_unknown_names_are_refused():
    with pytest.raises(RobotError, match="unknown robot 'nope'.*arm, jaco, reacher"):
        resolve_robot("nope")
    with pytest.raises(RobotError, match="--ee-site"):
        resolve_robot("some/robot.xml")
    with pytest.raises(ValueError, match="unknown controller 'pid'"):
        make_controller("pid", None, None, None, None)


def test_missing_site_is_refused(two_link_xml):
    spec = resolve_robot(str(two_link_xml()), ee_site="hand")
    with pytest.raises(RobotError, match="no site 'hand'.*tip"):
        build_scene(spec, arrangement(), MOVER)


def test_robot_without_motors_is_refused(two_link_xml):
    servos = '<position joint="shoulder" kp="5"/><position joint="elbow" kp="5"/>'
    spec = resolve_robot(str(two_link_xml(servos)), ee_site="tip")
    with pytest.raises(RobotError, match="no motor actuators"):
        build_scene(spec, arrangement(), MOVER)
    spec = resolve_robot(str(two_link_xml("")), ee_site="tip")
    with pytest.raises(RobotError, match="no motor actuators"):
        build_scene(spec, arrangement(), MOVER)


@pytest.mark.parametrize(
    "edits",
    [
        [('axis="0 0 1"', 'axis="0 1 0"')],  # an arm in a vertical plane
        [
            ('<site name="tip" pos="0.2 0 0"/>', ""),
            ('<joint name="shoulder"/>', '<joint name="shoulder"/><site name="tip"/>'),
        ],  # on the axis
    ],
)
def test_site_that_cannot_cover_a_table_is_refused(two_link_xml, edits):
    """A site that reaches no table square (or only a point) is refused with what to
    change, not with a zero-sized table whose meshes fail to compile."""
    path = two_link_xml()
    text = path.read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    path.write_text(text)
    with pytest.raises(RobotError, match="cannot move site 'tip' over a table.*--ee-site"):
        workspace_of(resolve_robot(str(path), ee_site="tip"))


def test_compile_error_is_one_line(two_link_xml):
    spec = resolve_robot(str(two_link_xml('<motor joint="wrist" ctrlrange="-1 1"/>')), "tip")
    with pytest.raises(RobotError, match="does not compile: .*wrist") as err:
        build_scene(spec, arrangement(), MOVER)
    assert "\n" not in str(err.value)


def test_missing_file_is_refused(tmp_path):
    spec = resolve_robot(str(tmp_path / "absent.xml"), ee_site="tip")
    with pytest.raises(RobotError, match="does not exist"):
        spec.load()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--robot", "nope"], "unknown robot 'nope'"),
        (["--controller", "pid", "--cost", "oracle"], "unknown controller 'pid'"),
        (["--concept", "nope", "--cost", "oracle"], "nope"),
        (["--concept", "quantity-1", "--cost", "oracle"], "changes colors.*--concept north"),
        (["--concept", "color", "--cost", "oracle"], "changes colors"),
        (["--checkpoint", "absent.pt"], "no checkpoint at absent.pt.*--cost oracle"),
        (["--demos", "absent.npz"], "absent.npz"),
        (["--robot", "arm", "--ee-site", "nowhere", "--cost", "oracle"], "no site 'nowhere'"),
        (
            ["--samples", "0", "--elite", "2", "--cost", "oracle"],
            r"--samples must be at least 1 \(got 0\); --elite must be in \(0, 1\]",
        ),
        (["--duration", "-1"], r"--duration must be positive \(got -1.0\)"),
        (["--seed", "-1", "--cost", "oracle"], r"--seed must be 0 or more \(got -1\)"),
    ],
)
def test_cli_errors_are_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out", "none"])
    text = str(exit_info.value.code)
    assert text.startswith("reenact: ") and "\n" not in text
    assert re.search(message, text), text


def test_shipped_robots_are_registered():
    assert set(ROBOTS) == {"arm", "jaco", "reacher"}
