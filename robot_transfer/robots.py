"""Robot models as data: an MJCF plus a small spec, and the registry of shipped robots.

A spec names the MJCF, its end-effector site and how to patch the file where it lacks
something the project needs (torque motors, an end-effector site, gravity compensation).
Everything else (arm joints, actuators, torque limits) is read from the compiled model by
`check_robot`, which refuses models that robot_transfer cannot drive.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import dm_control
import mujoco
import numpy as np
from dm_control import mjcf

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DM_CONTROL = Path(os.path.dirname(dm_control.__file__))


class RobotError(ValueError):
    """A robot name, file or model that robot_transfer cannot use; the message says why."""


@dataclass(frozen=True)
class RobotSpec:
    """One robot: where its MJCF is and how the scene and planners should use it."""

    name: str
    """Name shown in metrics and videos."""
    xml: Path
    """The robot's MJCF file."""
    ee_site: str
    """Site whose position is the end-effector entity."""
    base_pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Where the robot's base stands in the scene (metres; the table top is z = 0)."""
    base_yaw: float = 0.0
    """Rotation of the robot about the vertical axis in the scene (radians)."""
    workspace: tuple[float, float, float] | None = None
    """Table square (centre x, centre y, half side) in metres mapped to [-1, 1]^2; None derives
    it from the reachable set at hover height."""
    hover_height: float = 0.04
    """End-effector height above the table at the start (metres)."""
    height_band: tuple[float, float] = (0.02, 0.12)
    """End-effector heights (metres) the planner keeps to, paying for leaving the band."""
    table: bool = True
    """Add a table; False for robots that bring their own ground (the suite's reacher)."""
    sim_timestep: float = 0.002
    """Simulation timestep (seconds)."""
    plan_timestep: float = 0.01
    """Timestep of the planning model, coarser than the simulation as in MuJoCo MPC."""
    add_motors: tuple[tuple[str, float], ...] = ()
    """(joint, torque limit in N m) motors to add where the MJCF has no torque actuators."""
    add_site: tuple[str, tuple[float, float, float]] | None = None
    """(body, position) of an end-effector site to add to a body that lacks one."""
    remove: tuple[str, ...] = ()
    """Names of geoms to drop from the file (e.g. the reacher's own target)."""
    gravcomp: bool = False
    """Add gravity compensation, applied through the actuators (counts against torque limits)."""
    servos_as_motors: bool = False
    """Replace the file's position servos (and other non-motor actuators) on joints with torque
    motors limited by each one's forcerange, and add gravity compensation: the arm of a file
    written for position control, driven by torques."""
    home: tuple[float, ...] | None = None
    """Joint configuration that starts the inverse kinematics of the initial pose."""
    planner: dict[str, float] = field(default_factory=dict, hash=False, compare=False)
    """Per-robot overrides of the controllers' default parameters, by field name."""

    def load(self) -> mjcf.RootElement:
        """The robot's MJCF element tree, patched as the spec says."""
        if not self.xml.is_file():
            raise RobotError(f"robot file {self.xml} does not exist")
        try:
            root = mjcf.from_path(str(self.xml))
        except Exception as err:  # dm_control raises many kinds for a bad file
            raise RobotError(f"cannot read robot file {self.xml}: {err}") from err
        for name in self.remove:
            root.find("geom", name).remove()
        if self.add_site is not None:
            body, pos = self.add_site
            root.find("body", body).add("site", name=self.ee_site, pos=pos, size=[0.005])
        if root.find("site", self.ee_site) is None:
            sites = ", ".join(s.name for s in root.find_all("site") if s.name) or "none"
            raise RobotError(
                f"robot {self.name!r} has no site {self.ee_site!r} for the end-effector "
                f"(its sites: {sites}); pass --ee-site NAME"
            )
        for joint, limit in self.add_motors:
            _add_motor(root, joint, limit)
        if self.servos_as_motors:
            _servos_to_motors(root, self.name)
        if self.gravcomp or self.servos_as_motors:
            for body in root.worldbody.find_all("body"):
                body.gravcomp = 1.0
            for joint in root.worldbody.find_all("joint"):
                joint.actuatorgravcomp = True
        return root


def _add_motor(root: mjcf.RootElement, joint: str, limit: float, name: str | None = None):
    root.actuator.add(
        "motor", name=name or joint, joint=joint, ctrlrange=[-limit, limit], ctrllimited=True
    )


def _servos_to_motors(root: mjcf.RootElement, robot: str) -> None:
    """Replace every actuator on a joint that is not a plain motor with a torque motor on the
    same joint, its limit the actuator's forcerange (read from the compiled model, so that
    default classes count)."""
    model = mujoco.MjModel.from_xml_string(root.to_xml_string(), root.get_assets())
    elements = root.actuator.all_children()
    servos = np.flatnonzero(
        ~_plain_motors(model) & (model.actuator_trntype == mujoco.mjtTrn.mjTRN_JOINT)
    )
    for i in servos:
        servo = elements[i]
        joint = servo.joint if isinstance(servo.joint, str) else servo.joint.name
        if not model.actuator_forcelimited[i]:
            raise RobotError(
                f"robot {robot!r}: the actuator on joint {joint!r} has no forcerange, so its "
                'torque limit is unknown; give it forcerange="-F F" in the MJCF'
            )
        name = servo.name
        servo.remove()
        _add_motor(root, joint, float(np.abs(model.actuator_forcerange[i]).max()), name)


def _jaco() -> RobotSpec:
    limits = (30.5, 30.5, 30.5, 6.8, 6.8, 6.8)
    return RobotSpec(
        name="jaco",
        xml=DM_CONTROL / "third_party" / "kinova" / "jaco_arm.xml",
        ee_site="wristsite",
        add_motors=tuple((f"joint_{i + 1}", lim) for i, lim in enumerate(limits)),
        gravcomp=True,
        hover_height=0.06,
        height_band=(0.03, 0.15),
        home=(0.0, 3.6, 1.6, 0.0, 3.14, 0.0),
        planner={"noise": 0.2},  # the Jaco's joint friction (2 N m) swallows smaller noise
    )


ROBOTS: dict[str, RobotSpec] = {
    "arm": RobotSpec(
        name="arm",
        xml=ASSETS / "robots" / "arm.xml",
        ee_site="ee",
        base_pos=(0.0, -0.45, 0.0),
        base_yaw=np.pi / 2,
        workspace=(0.0, 0.0, 0.22),
        home=(0.0, 0.7, 1.3, 1.1, 0.0, 0.0),
    ),
    "jaco": _jaco(),
    "reacher": RobotSpec(
        name="reacher",
        xml=DM_CONTROL / "suite" / "reacher.xml",
        ee_site="fingertip",
        add_site=("finger", (0.0, 0.0, 0.0)),
        remove=("target",),
        table=False,
        hover_height=0.01,
        sim_timestep=0.01,
        plan_timestep=0.02,
    ),
}
"""Shipped robots by name; `resolve_robot` also accepts a path to any MJCF file."""


def resolve_robot(
    name: str, ee_site: str | None = None, servos_as_motors: bool = False
) -> RobotSpec:
    """The spec for a registered name or an MJCF path (then `ee_site` is required)."""
    if name in ROBOTS:
        if servos_as_motors:
            raise RobotError(
                f"--servos-as-motors is for robots given as .xml files; {name} "
                "already has torque motors"
            )
        spec = ROBOTS[name]
        return spec if ee_site is None else dataclasses.replace(spec, ee_site=ee_site)
    if not name.endswith(".xml"):
        raise RobotError(
            f"unknown robot {name!r}; choose one of {', '.join(ROBOTS)} or give a path to an "
            ".xml file with --ee-site"
        )
    if ee_site is None:
        raise RobotError(f"robot file {name} needs --ee-site NAME (the end-effector site)")
    return RobotSpec(
        name=Path(name).stem, xml=Path(name), ee_site=ee_site, servos_as_motors=servos_as_motors
    )


def _plain_motors(model: mujoco.MjModel) -> np.ndarray:
    """Boolean [nu]: actuators whose force is the control times a fixed gain (no dynamics,
    no bias): a motor, through whatever transmission."""
    return (
        (model.actuator_dyntype == mujoco.mjtDyn.mjDYN_NONE)
        & (model.actuator_gaintype == mujoco.mjtGain.mjGAIN_FIXED)
        & (model.actuator_biastype == mujoco.mjtBias.mjBIAS_NONE)
    )


def motor_actuators(model: mujoco.MjModel) -> np.ndarray:
    """Boolean [nu]: actuators that apply a plain torque (or force) to one joint."""
    return _plain_motors(model) & (model.actuator_trntype == mujoco.mjtTrn.mjTRN_JOINT)


def check_robot(spec: RobotSpec, model: mujoco.MjModel) -> None:
    """Refuse a compiled robot whose actuators are not bounded motors, at least one on a
    joint. Motors on tendons (a gripper's) are planned like the rest; inverse kinematics
    moves the joints with a motor."""
    if model.nu == 0 or not motor_actuators(model).any():
        raise RobotError(
            f"robot {spec.name!r} has no motor actuators on its joints; robot_transfer drives "
            "joint torques (add <motor joint=... ctrlrange=...> to the MJCF, or let "
            "--servos-as-motors true turn its position servos into motors)"
        )
    driven = _plain_motors(model) & np.isin(
        model.actuator_trntype, [mujoco.mjtTrn.mjTRN_JOINT, mujoco.mjtTrn.mjTRN_TENDON]
    )
    others = [model.actuator(i).name for i in np.flatnonzero(~driven)]
    if others:
        raise RobotError(
            f"robot {spec.name!r} has actuators that are not motors on a joint or tendon: "
            f"{', '.join(others)}; robot_transfer plans forces: replace them with <motor "
            "joint=... ctrlrange=...>, or let --servos-as-motors true turn servos on joints into "
            "motors (muscles are not supported)"
        )
    unlimited = [model.actuator(i).name for i in np.flatnonzero(~model.actuator_ctrllimited)]
    if unlimited:
        raise RobotError(
            f"robot {spec.name!r}: motors {', '.join(unlimited)} have no ctrlrange (torque limit)"
        )
