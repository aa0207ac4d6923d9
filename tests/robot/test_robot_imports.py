"""The robot side and training in one process."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_an_optimizer_built_after_importing_the_robot_side_does_not_crash():
    """dm_control starts Mesa's LLVM on import; torch's first optimizer then loads triton's
    (where triton is installed), which segfaulted until robot_transfer loaded triton first."""
    code = (
        "import robot_transfer.scene, torch\n"
        "torch.optim.Adam([torch.zeros(1, requires_grad=True)])\n"
        "print('built')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "MUJOCO_GL": "egl"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "built", done.stderr[-2000:]
