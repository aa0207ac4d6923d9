"""Scenes composed with dm_control's mjcf: a robot, a table, colored objects and a camera.

Table objects are static, non-colliding markers (bodies without joints): the shipped
concepts move only the mover, which is the end-effector, so references and distractors stay
where the arrangement put them and the end-effector may pass over them. The end-effector wears
a marker of the mover's color and shape. A `framepos` sensor on the end-effector site makes
its position part of every rollout's sensor data, which is what the entity map reads.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import mujoco
import numpy as np
from dm_control import mjcf

from particle_world.entities import COLOR, SHAPES, shape_of
from robot_transfer.costs import Cost
from robot_transfer.entity_map import EntityMap
from robot_transfer.kinematics import IK_TOLERANCE, arm_joints, largest_square, reach
from robot_transfer.objective import Objective
from robot_transfer.robots import RobotError, RobotSpec, check_robot

FULLPHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS
CAMERA = "overview"
MIN_WORKSPACE = 0.02
"""Least half side (m) of a derived table square: the objects on it are a tenth of it."""


@dataclass
class Scene:
    """A compiled scene and what planners and the entity map need to know about it."""

    spec: RobotSpec
    model: mujoco.MjModel
    """Simulation model (the spec's simulation timestep)."""
    plan_model: mujoco.MjModel
    """The same scene with the planning timestep."""
    entity_map: EntityMap
    ee_site: int
    """Site id of the end-effector."""
    ee_sensor: int
    """Address in sensordata of the end-effector position (3 values)."""
    qpos0: np.ndarray
    """[nq] initial pose: the end-effector at the mover's start, at hover height."""

    def reset(self, data: mujoco.MjData) -> None:
        """Put `data` at the initial pose, at rest."""
        mujoco.mj_resetData(self.model, data)
        data.qpos[:] = self.qpos0
        mujoco.mj_forward(self.model, data)

    def state(self, data: mujoco.MjData) -> np.ndarray:
        """Full physics state [nstate] of `data` (the rollout engine's initial state)."""
        out = np.empty(mujoco.mj_stateSize(self.model, FULLPHYSICS))
        mujoco.mj_getState(self.model, data, out, FULLPHYSICS)
        return out

    def ee(self, data: mujoco.MjData) -> np.ndarray:
        """End-effector position [3] of `data` (after forward kinematics)."""
        return data.site_xpos[self.ee_site].copy()

    def objective(self, cost: Cost) -> Objective:
        """What controllers minimise in this scene: `cost` plus the robot-side residuals."""
        return Objective(self.entity_map, cost, self.ctrl_range, self.spec.height_band)

    @property
    def ctrl_range(self) -> np.ndarray:
        """[nu, 2] torque limits of the motors (control units)."""
        return self.model.actuator_ctrlrange.copy()


def _robot_in_root(spec: RobotSpec) -> tuple[mjcf.RootElement, mjcf.Element]:
    """A root with the robot attached at its base pose, and the robot's end-effector site."""
    robot = spec.load()
    root = mjcf.RootElement(model="scene")
    root.compiler.angle = robot.compiler.angle or "degree"  # mjcf attaches angles unconverted
    frame = root.attach(robot)
    frame.pos = spec.base_pos
    yaw = spec.base_yaw if root.compiler.angle == "radian" else np.rad2deg(spec.base_yaw)
    frame.euler = (0.0, 0.0, yaw)
    return root, robot.find("site", spec.ee_site)


def _compile(root: mjcf.RootElement, spec: RobotSpec) -> mujoco.MjModel:
    root.option.timestep = spec.sim_timestep
    root.option.integrator = "implicitfast"
    try:
        model = mujoco.MjModel.from_xml_string(root.to_xml_string(), assets=root.get_assets())
    except ValueError as err:
        # MuJoCo's second line names an element by its line in the composed scene, not the file
        first = str(err).splitlines()[0]
        raise RobotError(f"robot {spec.name!r} does not compile: {first}") from err
    check_robot(spec, model)
    return model


@functools.cache
def workspace_of(spec: RobotSpec) -> tuple[float, float, float]:
    """The spec's table square, or the largest square reachable at hover height.

    Sampled joint configurations bound the horizontal reach; grid points inside it are
    tested by inverse kinematics and the largest square of reachable points (less a 10%
    margin) is the workspace.
    """
    if spec.workspace is not None:
        return spec.workspace
    root, site_el = _robot_in_root(spec)
    model = _compile(root, spec)
    data = mujoco.MjData(model)
    site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, site_el.full_identifier)
    joints = arm_joints(model)
    rng = np.random.default_rng(0)
    base = np.asarray(spec.base_pos[:2])
    radius = 0.0
    for q in rng.uniform(*joints.ranges.T, size=(2000, len(joints.qadr))):
        data.qpos[joints.qadr] = q
        mujoco.mj_kinematics(model, data)
        radius = max(radius, np.linalg.norm(data.site_xpos[site][:2] - base))
    n = 25
    axis = np.linspace(-radius, radius, n)
    ok = np.zeros((n, n), dtype=bool)
    for i, x in enumerate(axis):
        for j, y in enumerate(axis):
            target = np.array([base[0] + x, base[1] + y, spec.hover_height])
            starts = [data.qpos[joints.qadr].copy(), *joints.starts(spec.home, rng, 2)]
            ok[i, j] = reach(model, data, site, target, starts) < IK_TOLERANCE
    size, (i, j) = largest_square(ok)
    step = axis[1] - axis[0]
    center = base + np.array([axis[i] + axis[i + size - 1], axis[j] + axis[j + size - 1]]) / 2
    half = 0.9 * (size - 1) * step / 2
    if half < MIN_WORKSPACE:
        raise RobotError(
            f"robot {spec.name!r} cannot move site {spec.ee_site!r} over a table square at "
            f"hover height (z = {spec.hover_height} m): give the --ee-site of a robot that "
            "reaches over a horizontal table (an arm moving in a vertical plane cannot)"
        )
    return float(center[0]), float(center[1]), float(half)


def _add_marker(parent: mjcf.Element, entity: np.ndarray, size: float, **kw) -> None:
    """Geoms for one entity: sphere (circle), box (square), prism (triangle), two bars (cross)."""
    rgba = (*entity[COLOR].tolist(), 1.0)
    common = dict(rgba=rgba, contype=0, conaffinity=0, mass=0, **kw)
    shape = SHAPES[int(shape_of(entity))]
    if shape == "circle":
        parent.add("geom", type="sphere", size=[size], **common)
    elif shape == "square":
        parent.add("geom", type="box", size=[size * 0.85] * 3, **common)
    elif shape == "triangle":
        parent.add("geom", type="mesh", mesh=_prism(parent.root, size), **common)
    else:
        parent.add("geom", type="box", size=[size * 1.2, size * 0.3, size * 0.5], **common)
        parent.add("geom", type="box", size=[size * 0.3, size * 1.2, size * 0.5], **common)


def _prism(root: mjcf.RootElement, size: float) -> mjcf.Element:
    """A triangular prism mesh of the given size in the model of `root` (made once)."""
    name = f"prism{size:.4f}"
    mesh = root.find("mesh", name)
    if mesh is None:
        angles = np.deg2rad([90.0, 210.0, 330.0])
        ring = np.stack([np.cos(angles), np.sin(angles)], -1) * size * 1.2
        verts = [(*p, z) for z in (-size * 0.8, size * 0.8) for p in ring]
        mesh = root.asset.add("mesh", name=name, vertex=np.ravel(verts))
    return mesh


def _add_table(root: mjcf.RootElement, spec: RobotSpec, ws: tuple[float, float, float]) -> None:
    cx, cy, half = ws
    base = np.asarray(spec.base_pos[:2])
    lo = np.minimum([cx - half, cy - half], base) - 0.15
    hi = np.maximum([cx + half, cy + half], base) + 0.15
    mid, ext = (lo + hi) / 2, (hi - lo) / 2
    wood = root.asset.add("material", name="table", rgba=[0.62, 0.5, 0.38, 1])
    root.worldbody.add("geom", name="table", type="box", material=wood, contype=0,
                       conaffinity=1, friction=[0.2, 0.005, 1e-4], pos=[*mid, -0.02],
                       size=[*ext, 0.02])  # fmt: skip
    for sx in (-1, 1):
        for sy in (-1, 1):
            leg = mid + np.array([sx, sy]) * (ext - 0.04)
            root.worldbody.add("geom", type="box", material=wood, contype=0, conaffinity=0,
                               pos=[*leg, -0.37], size=[0.025, 0.025, 0.33])  # fmt: skip
    grid = root.asset.add("texture", name="floor", type="2d", builtin="checker", width=256,
                          height=256, rgb1=[0.82, 0.84, 0.86], rgb2=[0.74, 0.76, 0.78])  # fmt: skip
    floor = root.asset.add("material", name="floor", texture=grid, texrepeat=[6, 6])
    root.worldbody.add("geom", type="plane", material=floor, size=[4, 4, 0.1], pos=[0, 0, -0.7],
                       contype=0, conaffinity=0)  # fmt: skip


def _add_outline(root: mjcf.RootElement, ws: tuple[float, float, float], z: float) -> None:
    """Thin lines around the workspace square (visual only)."""
    cx, cy, half = ws
    w = half * 0.01
    for pos, size in (
        ((cx, cy - half), (half, w)),
        ((cx, cy + half), (half, w)),
        ((cx - half, cy), (w, half)),
        ((cx + half, cy), (w, half)),
    ):
        root.worldbody.add("geom", type="box", pos=[*pos, z], size=[*size, 0.0005],
                           rgba=[0.95, 0.95, 0.95, 1], contype=0, conaffinity=0)  # fmt: skip


def _add_camera(root: mjcf.RootElement, spec: RobotSpec, ws: tuple[float, float, float]):
    """A camera above, behind and beside the robot, looking steeply down at the workspace
    centre (the world square's north is up in the image, as in the demo inset)."""
    cx, cy, half = ws
    look = np.array([cx, cy, 0.0])
    away = look[:2] - np.asarray(spec.base_pos[:2])
    away = away / (np.linalg.norm(away) + 1e-9) if np.linalg.norm(away) > 1e-6 else np.array([0, 1])
    side = np.array([away[1], -away[0]])
    dist = 3.5 * half + 0.3
    pos = look + np.array([*(-0.5 * away + 0.3 * side) * dist, 0.9 * dist])
    fwd = (look - pos) / np.linalg.norm(look - pos)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    root.worldbody.add("camera", name=CAMERA, pos=pos, xyaxes=[*right, *up], fovy=45)


def build_scene(spec: RobotSpec, entities: np.ndarray, mover: int) -> Scene:
    """The scene for an arrangement: entities [N, D] (x^0 of an event, valid ones only) are
    placed on the table square; entity `mover` is the end-effector, which starts above it."""
    ws = workspace_of(spec)
    root, site_el = _robot_in_root(spec)
    emap = EntityMap(entities, mover, ws)
    size = 0.1 * ws[2]
    getattr(root.visual, "global").offwidth = 1280
    getattr(root.visual, "global").offheight = 720
    root.asset.add("texture", type="skybox", builtin="gradient", rgb1=[0.9, 0.92, 0.95],
                   rgb2=[0.6, 0.65, 0.72], width=64, height=64)  # fmt: skip
    root.worldbody.add("light", pos=[ws[0], ws[1], 2.5], dir=[0, 0, -1], diffuse=[0.6] * 3)
    if spec.table:
        _add_table(root, spec, ws)
    _add_outline(root, ws, 0.0005)
    xy = emap.to_world(entities[:, :2])
    for i, ent in enumerate(entities):
        if i != mover:
            body = root.worldbody.add("body", name=f"entity{i}", pos=[*xy[i], size])
            _add_marker(body, ent, size)
    _add_marker(site_el.parent, entities[mover], size * 0.7, pos=site_el.pos)
    root.sensor.add("framepos", name="ee_pos", objtype="site", objname=site_el)
    _add_camera(root, spec, ws)
    model = _compile(root, spec)
    site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, site_el.full_identifier)
    sensor = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SENSOR, "ee_pos")
    data = mujoco.MjData(model)
    target = np.array([*xy[mover], spec.hover_height])
    starts = arm_joints(model).starts(spec.home, np.random.default_rng(0), 20)
    err = reach(model, data, site, target, starts)
    if err > 0.02:
        raise RobotError(f"robot {spec.name!r} cannot reach the start {target} ({err:.3f} m off)")
    plan_model = copy.copy(model)
    plan_model.opt.timestep = spec.plan_timestep
    return Scene(
        spec=spec,
        model=model,
        plan_model=plan_model,
        entity_map=emap,
        ee_site=site,
        ee_sensor=int(model.sensor_adr[sensor]),
        qpos0=data.qpos.copy(),
    )
