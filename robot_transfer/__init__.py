"""Acting learned concepts out with simulated, torque-driven MuJoCo arms.

A concept energy learned from 2D demos (energy_model) becomes the cost of model-predictive
control: the end-effector is the mover entity, table objects are the other entities, and
the planners (ps, mppi, cem, ilqr) drive joint torques so that the mapped entities satisfy
the concept. `python robot_transfer/reenact.py --help` runs it end to end.

    robots       robot specs (MJCF + end-effector site + patches) and the registry
    scene        scenes composed with dm_control's mjcf; workspace; initial pose
    entity_map   end-effector positions -> particle-world entities, batched, differentiable
    costs        GoalDistanceCost, LearnedEnergyCost (one protocol)
    objective    what controllers minimise: cost + robot-side residuals, iLQR derivatives
    rollouts     the batched mujoco.rollout engine and control splines
    controllers  ps, mppi, cem, ilqr behind one interface, by name
    mpc          the closed loop
    transfer     arrangements from particle_world instances, costs, scoring
    video        offscreen frames with the demo inset, written atomically
"""

import importlib.util
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering unless the user chose

# dm_control's EGL backend starts Mesa, and with it Mesa's LLVM, as soon as it is imported;
# where triton is installed, torch loads triton's own LLVM later (on the first optimizer, for
# one) and that second LLVM crashes the process (a segfault in triton's import). Loaded
# first, triton's LLVM and Mesa's live side by side; it costs 0.1 s.
if importlib.util.find_spec("triton") is not None:
    import triton  # noqa: F401
