"""Few-shot tasks on disk: one `.npz` holds a list of tasks, each under its own keys.

Layout (format version FORMAT_VERSION), for task i:

    format_version             int
    n_tasks                    int
    task{i}/instance           Instance.to_json() as a string
    task{i}/demos_x            [B, T+1, N, D] float
    task{i}/demos_attention    [B, N] float
    task{i}/demos_valid        [B, N] bool
    task{i}/queries_*          the same for the queries

Tasks of one file may differ in entity count and horizon, so nothing is padded across
tasks and the round trip is exact. Files are written atomically, byte-identical for
identical tasks, and read without pickle.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from particle_world import entities as E
from particle_world.concepts import get_family
from particle_world.events import EventBatch
from particle_world.scene import refs_of
from particle_world.tasks import Instance, Task

FORMAT_VERSION = 1
BATCHES = ("demos", "queries")
DTYPES = {"x": np.floating, "attention": np.floating, "valid": np.bool_}
"""The arrays of an EventBatch and the dtype kind each must have."""
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
REGENERATE = "write it again with `python -m particle_world sample`"


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path` (same suffix; folders made as needed) that replaces
    `path` when the block succeeds and is removed when it fails, so readers never see a
    half-written file."""
    path = Path(path)
    tmp = temp_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def temp_beside(path: str | os.PathLike) -> Path:
    """A new empty hidden file beside `path` (same suffix; folders made as needed) with a
    normal file's mode, to be moved onto `path` once complete (atomic_path, video writers)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private
    return Path(tmp)


def prepare_output(flag: str, path: str | os.PathLike) -> None:
    """Make the folder of an output file now, so that a path that cannot be written fails
    at once with one line naming the flag, not after a long run with a traceback."""
    if Path(path).is_dir():
        raise ValueError(f"{flag} {path} is a folder; give a file name in it")
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{flag} {path}: cannot make its folder ({err})") from None


def npz_path(path: str | os.PathLike) -> Path:
    """The path np.savez would write: `.npz` appended unless already there."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def save_tasks(path: str | os.PathLike, tasks: list[Task]) -> Path:
    """Write tasks to an `.npz` (suffix added if missing), atomically; returns the path."""
    arrays = {"format_version": np.array(FORMAT_VERSION), "n_tasks": np.array(len(tasks))}
    for i, task in enumerate(tasks):
        arrays[f"task{i}/instance"] = np.array(task.instance.to_json())
        for name in BATCHES:
            batch = getattr(task, name)
            for field in DTYPES:
                arrays[f"task{i}/{name}_{field}"] = getattr(batch, field)
    path = npz_path(path)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for key, arr in arrays.items():
            # What np.savez_compressed does, with a fixed timestamp: same tasks, same bytes.
            info = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, arr, allow_pickle=False)
    return path


def load_tasks(path: str | os.PathLike) -> list[Task]:
    """Read the tasks of a file written by save_tasks.

    Raises ValueError with a one-line message for a missing or malformed file, another
    format version, arrays of the wrong shape or dtype, or unknown concept names.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file; check the path or {REGENERATE}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not an .npz archive; {REGENERATE}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(f"{path}: unreadable .npz ({err}); {REGENERATE}") from None

    def get(key: str) -> np.ndarray:
        if key not in arrays:
            raise ValueError(f"{path}: missing key {key!r}; is it a task file? {REGENERATE}")
        return arrays[key]

    version = get("format_version")
    if version.shape != () or version.tolist() != FORMAT_VERSION:
        raise ValueError(
            f"{path}: task file format version {version.tolist()!r}, this code reads version "
            f"{FORMAT_VERSION}; {REGENERATE}"
        )
    n_tasks = get("n_tasks")
    if n_tasks.shape != () or not np.issubdtype(n_tasks.dtype, np.integer) or n_tasks < 0:
        raise ValueError(f"{path}: n_tasks must be a count, got {n_tasks.tolist()}; {REGENERATE}")
    return [_load_task(path, i, get) for i in range(int(n_tasks))]


def load_events(path: str | os.PathLike, index: int = 0) -> Task:
    """Task `index` of a file (demo files usually hold one; the robot side reads them)."""
    tasks = load_tasks(path)
    if not tasks:
        raise ValueError(f"{path}: the file holds no tasks; {REGENERATE}")
    if not 0 <= index < len(tasks):
        raise ValueError(
            f"{path} holds {len(tasks)} task(s), numbered 0 to {len(tasks) - 1}; "
            f"there is no task {index}"
        )
    return tasks[index]


def _load_task(path: Path, i: int, get) -> Task:
    where = f"{path}: task {i}"
    try:
        instance = Instance.from_json(str(get(f"task{i}/instance")))
        get_family(instance.family)
    except KeyError as err:  # get_family's message names the unknown concept and the known ones
        raise ValueError(f"{where}: {err.args[0]}; {REGENERATE}") from None
    except (TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"{where}: malformed instance ({err}); {REGENERATE}") from None
    t1 = instance.horizon + 1
    batches = {}
    for name in BATCHES:
        x, attention, valid = (get(f"task{i}/{name}_{field}") for field in DTYPES)
        if x.ndim != 4 or x.shape[1] != t1 or x.shape[3] != E.DIM:
            raise ValueError(
                f"{where}: {name}_x has shape {list(x.shape)}, expected [B, {t1}, N, {E.DIM}] "
                f"(T+1 = {t1} states for {instance.action}, D = entities.DIM); {REGENERATE}"
            )
        b, _, n, _ = x.shape
        for field, arr in (("attention", attention), ("valid", valid)):
            if arr.shape != (b, n):
                raise ValueError(
                    f"{where}: {name}_{field} has shape {list(arr.shape)}, expected [B, N] = "
                    f"{[b, n]} to match {name}_x {list(x.shape)}; {REGENERATE}"
                )
        for (field, kind), arr in zip(DTYPES.items(), (x, attention, valid), strict=True):
            if not np.issubdtype(arr.dtype, kind):
                raise ValueError(
                    f"{where}: {name}_{field} has dtype {arr.dtype}, expected {kind.__name__}; "
                    f"{REGENERATE}"
                )
        batches[name] = EventBatch(x, attention, valid)
        _check_events(f"{where}: {name}", instance, batches[name])
    return Task(instance, batches["demos"], batches["queries"])


def _check_events(where: str, instance: Instance, batch: EventBatch) -> None:
    """Fail on events that the instance's scorers (and the robot side) cannot read: values
    that are not finite, no entities, or other numbers of crosses or attended entities."""
    counts = list(instance.act.counts)
    for j, e in enumerate(batch.events()):
        crosses, attended = len(refs_of(e.x[0])), int((e.attention > 0.5).sum())
        if not (np.isfinite(e.x).all() and np.isfinite(e.attention).all()):
            problem = "holds values that are not finite"
        elif e.x.shape[1] == 0:
            problem = "has no valid entities"
        elif crosses != instance.n_refs:
            problem = f"has {crosses} reference crosses, its concept needs {instance.n_refs}"
        elif attended not in counts:
            problem = f"attends {attended} entities, {instance.action} acts on one of {counts}"
        else:
            continue
        raise ValueError(f"{where} event {j} {problem}; {REGENERATE}")


def write_json(path: str | os.PathLike, data, **dump_options) -> Path:
    """data as indented JSON at path, written atomically (folders made as needed), so a
    long run's results are never lost to a half-written file or a missing folder."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, **dump_options) + "\n")
    return Path(path)
