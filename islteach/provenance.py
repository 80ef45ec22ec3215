"""Provenance: what ran, where, on which data, so every number in the book can be traced.

Every chapter's first cell calls :func:`setup_chapter`, which seeds all random
number generators, prints a compact panel (package versions, device and GPU
name, profile, seed, data directory, sha256 of each data file the chapter
reads) and returns the profile. :func:`save_results` writes a chapter's
headline figures together with the same panel to
``results/<profile>/<chapter>.json``.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import random
import sys
from pathlib import Path

import numpy as np

from .profiles import Profile, get_profile

_PACKAGES = (
    "islteach",
    "numpy",
    "scipy",
    "torch",
    "torchvision",
    "segmentation_models_pytorch",
    "skimage",
    "cellpose",
    "pooch",
)


def package_versions() -> dict:
    """Versions of the packages the book relies on (``None`` when not importable)."""
    from importlib import metadata

    dist_names = {
        "skimage": "scikit-image",
        "segmentation_models_pytorch": "segmentation-models-pytorch",
    }
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(dist_names.get(name, name))
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_info() -> dict:
    """The torch device the book will use and, on CUDA, the GPU name."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return {"device": "cpu", "gpu": None, "threads": os.cpu_count()}
    if torch.cuda.is_available():
        return {
            "device": "cuda",
            "gpu": torch.cuda.get_device_name(0),
            "threads": torch.get_num_threads(),
        }
    return {"device": "cpu", "gpu": None, "threads": torch.get_num_threads()}


def get_device(device=None):
    """The torch device to use: ``device`` itself when given, else CUDA when a GPU is visible, else CPU.

    The one place where the package chooses a device; every training and prediction
    function passes its ``device`` argument through here.

    Examples
    --------
    >>> str(get_device("cpu"))
    'cpu'
    """
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return device if isinstance(device, torch.device) else torch.device(device)


@contextlib.contextmanager
def atomic_path(path):
    """Write a file atomically: yield a temporary path next to ``path``, then rename it into place.

    The rename happens only when the ``with`` block finishes without an exception; otherwise the
    temporary file is removed. So a reader (or a later run) sees either the old file or the
    complete new one, never a half-written file, even if the process is killed mid-write. The
    temporary name keeps the suffix of ``path`` (``np.savez`` and ``torch.save`` care) and
    carries the process id (two processes writing the same file do not collide).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except Exception as err:
        full = _disk_full_error(path, err)
        if full is None:
            raise
        raise full from err
    finally:
        if tmp.exists():
            tmp.unlink()


#: Below this many free bytes a failed write is reported as a full disk (see :func:`atomic_path`).
DISK_FULL_BYTES = 64 * 2**20


def _disk_full_error(path: Path, err: BaseException) -> OSError | None:
    """An ``OSError(ENOSPC)`` naming ``path`` and the free space when a write failed on a full disk.

    Libraries report a full disk in their own words (``torch.save``: ``RuntimeError: [enforce fail
    at inline_container.cc] unexpected pos``; ``np.savez``: ``OSError: [Errno 28]``). A write that
    failed while less than :data:`DISK_FULL_BYTES` are free is reported so, with what to do;
    ``None`` when the disk is not the cause.
    """
    import errno
    import shutil

    code = getattr(err, "errno", None) if isinstance(err, OSError) else None
    if code not in (None, errno.ENOSPC):
        return None  # an OSError with another cause (permissions, a missing folder ...)
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return None
    if code is None and free >= DISK_FULL_BYTES:
        return None
    return OSError(errno.ENOSPC, (
        f"writing {path} failed ({type(err).__name__}: {err}) with {free / 2**20:.0f} MB free on its "
        f"disk: the disk is full. The partial file was removed and {path.name} is unchanged. Free "
        f"space (checkpoints of finished runs, results/<profile>/checkpoints/, are the largest files) "
        f"or set ISLTEACH_RESULTS_DIR to a folder on a larger disk, then run the cell again."))


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`); returns ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    try:
        import torch

        torch.manual_seed(int(seed))
    except ImportError:  # pragma: no cover
        pass


def sha256_file(path) -> str:
    """The sha256 hex digest of a file (``pooch.file_hash``, the hash pooch checks downloads with).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    str
        64 lowercase hex digits.
    """
    import pooch  # local import: pooch is only needed once a file is hashed

    return pooch.file_hash(os.fspath(path), alg="sha256")


def env_report(profile: Profile | None = None, files=None, hashes=None) -> dict:
    """A dict describing this run: versions, device, profile, seed, data directory, file hashes.

    Parameters
    ----------
    profile : Profile, optional
        Default :func:`islteach.profiles.get_profile`.
    files : iterable of path-like, optional
        Data files the chapter reads; their sha256 is recorded (keyed by file name
        relative to the data directory when possible).
    hashes : dict, optional
        Already verified ``{name: sha256}`` to record as they are (from
        :func:`islteach.data.verified_hashes`).
    """
    from . import data  # local import: data imports pooch

    profile = profile or get_profile()
    ddir = data.data_dir()
    hashes = dict(hashes or {})
    for f in files or ():
        f = Path(f)
        try:
            key = str(f.resolve().relative_to(Path(ddir).resolve()))
        except ValueError:
            key = str(f)
        hashes[key] = sha256_file(f)
    return {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "profile": profile.name,
        "seed": profile.seed,
        "versions": package_versions(),
        **device_info(),
        "platform": platform.platform(),
        "in_colab": in_colab(),
        "data_dir": str(ddir),
        "files_sha256": hashes,
    }


def format_short(report: dict) -> str:
    """The two lines a chapter prints when it starts: profile, seed, device and how many data files were verified.

    The full panel (versions, every file's sha256) is :func:`show_provenance`, at the end of the chapter.
    """
    n = len(report.get("files_sha256") or {})
    return (f"profile : {report['profile']}   seed : {report['seed']}   device : {report['device']}"
            + (f" ({report['gpu']})" if report.get("gpu") else "")
            + (f"\ndata    : {n} files, sha256 verified (listed in the provenance block at the end)" if n else ""))


def format_report(report: dict, max_files: int | None = 8) -> str:
    """A compact, human-readable panel of :func:`env_report`'s dict (``max_files=None``: list every file)."""
    v = report["versions"]
    versions = ", ".join(f"{k} {val}" for k, val in v.items() if val is not None)
    lines = [
        f"profile : {report['profile']}   seed : {report['seed']}",
        f"device  : {report['device']}" + (f" ({report['gpu']})" if report.get("gpu") else "")
        + f"   threads : {report.get('threads')}   colab : {report.get('in_colab')}",
        f"versions: {versions}",
        f"data dir: {report['data_dir']}",
    ]
    hashes = report.get("files_sha256") or {}
    if hashes:
        lines.append(f"data files ({len(hashes)}):")
        shown = len(hashes) if max_files is None else max_files
        for name, digest in list(hashes.items())[:shown]:
            short = name if len(name) <= 60 else name.split("/")[0] + "/…" + name[-(58 - len(name.split("/")[0])):]
            lines.append(f"  {digest[:16]}…  {short}")
        if len(hashes) > shown:
            combined = hashlib.sha256("".join(sorted(hashes.values())).encode()).hexdigest()
            lines.append(f"  … and {len(hashes) - shown} more (combined sha256 {combined[:16]}…)")
    return "\n".join(lines)


def in_colab() -> bool:
    return "google.colab" in sys.modules


class _LineProgress:
    """A progress "bar" for a notebook that nobody watches live (a book build): one line at the end."""

    def __init__(self, total, desc, unit, initial=0):
        import time

        self.total, self.desc, self.unit, self.n, self.initial = total, desc, unit, initial, initial
        self.postfix = ""
        self._t0 = time.perf_counter()

    def update(self, n=1):
        self.n += n

    def set_postfix(self, postfix=None, refresh=False, **kwargs):
        items = {**(postfix or {}), **kwargs}
        self.postfix = ", ".join(f"{k} {v}" for k, v in items.items())

    def set_postfix_str(self, s="", refresh=False):
        self.postfix = s

    def close(self):
        import time

        if self.total is None:
            return
        done = f"{self.desc}: {self.n}/{self.total} {self.unit}s"
        if self.initial:
            done += f" ({self.initial} done before)"
        done += f" in {time.perf_counter() - self._t0:.0f} s"
        print(done + (f" ({self.postfix})" if self.postfix else ""), file=sys.stdout, flush=True)
        self.total = None


def progress(total: int, desc: str, unit: str = "step", initial: int = 0, enabled: bool = True):
    """The one progress bar of the package: live where someone watches, one line where nobody does.

    On Colab a notebook widget (``tqdm.auto``; ipywidgets 7 and 8), in a terminal a text bar, and
    in a notebook executed without a viewer (the book build, CI) a single summary line printed
    when it closes: no frozen ``0%`` bars and no screens of carriage-return updates in the built
    book. ``enabled=False`` gives an object that does nothing.
    """
    if not enabled:
        bar = _LineProgress(total, desc, unit, initial)
        bar.total = None  # closes silently
        return bar
    if in_colab():
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit=unit, mininterval=1.0)
    if sys.stdout.isatty():
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=sys.stdout, dynamic_ncols=True)
    return _LineProgress(total, desc, unit, initial)


#: Where the Drive switch keeps everything: data, results, models, labels, checkpoints, caches.
DRIVE_ROOT = "/content/drive/MyDrive/islteach"


def use_drive(root: str = DRIVE_ROOT) -> Path | None:
    """The Drive switch: on Colab, mount Google Drive and keep all of the book's files on it.

    Each Colab notebook runs in its own virtual machine, which is wiped when the session ends
    or disconnects. With this switch, ``$ISLTEACH_DATA_DIR`` becomes ``<root>/data`` (data sets
    are downloaded once) and ``$ISLTEACH_RESULTS_DIR`` becomes ``<root>/results`` (results
    files, chapter 1's models, chapter 2's labels, every training checkpoint and chapter 3's
    learning-curve cache live under it). So chapters 3 and 4 load chapter 1's model instead of
    retraining it, and an interrupted training resumes from its last checkpoint in a new VM.
    Variables the user set already are kept. Outside Colab it changes nothing and says so.

    Returns
    -------
    pathlib.Path or None
        ``root`` when Drive is in use.
    """
    if not in_colab():
        print("Drive switch: not on Colab, files stay where they are "
              f"(results: {os.environ.get('ISLTEACH_RESULTS_DIR') or _repo_root() / 'results'}).")
        return None
    from google.colab import drive  # type: ignore

    if not Path("/content/drive/MyDrive").exists():
        drive.mount("/content/drive")
    base = Path(root)
    for var, sub in (("ISLTEACH_DATA_DIR", "data"), ("ISLTEACH_RESULTS_DIR", "results")):
        if not os.environ.get(var):
            os.environ[var] = str(base / sub)
        Path(os.environ[var]).mkdir(parents=True, exist_ok=True)
    print(f"Drive switch on: data in {os.environ['ISLTEACH_DATA_DIR']}, "
          f"results, models, labels and checkpoints in {os.environ['ISLTEACH_RESULTS_DIR']}.")
    return base


def setup_chapter(chapter: str, datasets=(), files=None, profile: str | None = None,
                  drive: bool = False) -> Profile:
    """First call of every chapter: pick the profile, seed everything, print the provenance panel.

    Parameters
    ----------
    chapter : str
        Short chapter name, e.g. ``"01_virtual_staining"``; used for the results file.
    datasets : iterable of str
        Registry data sets the chapter reads; they are fetched (hash-verified, downloaded
        when missing) and every file's sha256 goes into the panel and the results file.
    files : iterable of path-like, optional
        Data files the chapter reads (hashed into the panel and the results file).
    profile : str, optional
        Profile name; default from ``$ISLTEACH_PROFILE``.
    drive : bool
        The Drive switch (:func:`use_drive`): on Colab, keep data, results, models, labels and
        checkpoints on Google Drive so that they survive a new virtual machine.

    Returns
    -------
    Profile
    """
    import time

    from . import data

    if drive:
        use_drive()
    p = get_profile(profile)
    _inline_figures()
    seed_everything(p.seed)
    hashes = {}
    for name in datasets:
        hashes.update(data.verified_hashes(name))
    report = env_report(p, files, hashes)
    _STARTED[chapter] = time.perf_counter()
    _CURRENT[chapter] = report
    print(f"islteach — {chapter}")
    print(format_short(report))
    _record_cell_times(chapter, p.name)
    if getattr(p, "smoke", False):
        print(f"SMOKE RUN ($ISLTEACH_SMOKE): the {p.name} profile's code paths with a few steps, one seed and "
              "small evaluation sets. Its numbers mean nothing; results go to "
              f"{results_dir(p.name)}.")
    if report["device"] == "cpu" and in_colab():
        print(
            "WARNING: no GPU runtime. In Colab choose Runtime > Change runtime type > T4 GPU, "
            "then run the notebook again; on CPU use ISLTEACH_PROFILE=quick."
        )
    return p


def _inline_figures() -> None:
    """In a notebook kernel, draw figures inline even when ``MPLBACKEND`` says otherwise.

    An inherited ``MPLBACKEND=Agg`` silently drops every figure from an executed notebook
    (and so from the built book).
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return
    ip = get_ipython()
    if ip is None or type(ip).__name__ != "ZMQInteractiveShell":
        return
    import matplotlib

    if "inline" not in matplotlib.get_backend().lower():
        ip.run_line_magic("matplotlib", "inline")


_CURRENT: dict = {}
_STARTED: dict = {}


def show_provenance(chapter: str) -> None:
    """The provenance block at the end of a chapter: date, profile, seed, device, versions and every data file's sha256.

    Chapters call it in a cell tagged ``[remove-input, hide-output]``, so the built book shows it
    collapsed. It is the panel that :func:`setup_chapter` recorded (and :func:`save_results` wrote).
    """
    report = _CURRENT.get(chapter)
    if report is None:
        raise RuntimeError(f"chapter {chapter!r}: call setup_chapter({chapter!r}, ...) first")
    import time

    elapsed = time.perf_counter() - _STARTED.get(chapter, time.perf_counter())
    print(f"islteach — {chapter}, run {report['date_utc']}, {elapsed / 60:.1f} min so far")
    print(format_report(report, max_files=None))


def timings_path(chapter: str, profile: str | None = None) -> Path:
    """Where :func:`setup_chapter` records the wall time of each executed code cell of ``chapter``."""
    return results_dir(profile) / "timings" / f"{chapter}.json"


def _record_cell_times(chapter: str, profile: str) -> None:
    """In a notebook kernel, write ``[seconds of code cell 1, 2, ...]`` (in execution order) after every cell.

    The instructor page maps the cells to the chapter's sections. The file is rewritten
    atomically after each cell; outside IPython nothing is recorded.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return
    ip = get_ipython()
    if ip is None:
        return
    import time

    path = timings_path(chapter, profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"chapter": chapter, "profile": profile, "first_cell": ip.execution_count, "cells": []}
    clock = {"t": time.perf_counter()}

    def pre(*_args):
        clock["t"] = time.perf_counter()

    def post(result=None):
        state["cells"].append(round(time.perf_counter() - clock["t"], 2))
        atomic_write_bytes(path, json.dumps(state).encode())

    for name, fn in list(getattr(ip, "_islteach_timers", {}).items()):
        try:
            ip.events.unregister(name, fn)
        except ValueError:
            pass
    ip._islteach_timers = {"pre_run_cell": pre, "post_run_cell": post}
    ip.events.register("pre_run_cell", pre)
    ip.events.register("post_run_cell", post)


def results_dir(profile: str | None = None) -> Path:
    """``$ISLTEACH_RESULTS_DIR`` or ``<repository root>/results/<profile>`` (``./results`` outside a checkout).

    With the smoke switch on (:func:`islteach.profiles.smoke_enabled`) the folder is
    ``<profile>-smoke``, so a smoke run never mixes with a real run's models and results.
    """
    from .profiles import smoke_enabled

    name = profile or get_profile().name
    if smoke_enabled() and not name.endswith("-smoke"):
        name += "-smoke"
    base = os.environ.get("ISLTEACH_RESULTS_DIR")
    if base:
        root = Path(base)
    else:
        root = _repo_root() / "results"
    out = root / name
    out.mkdir(parents=True, exist_ok=True)
    return out


def shown_path(path) -> str:
    """``path`` as a chapter prints it: relative to the results or data folder, never a machine's absolute path.

    ``results/quick/models/isl_dapi.pt`` (or ``$ISLTEACH_RESULTS_DIR/...`` / ``$ISLTEACH_DATA_DIR/...``
    when those are set); any other path is shown by its name only.
    """
    path = Path(path)
    roots = [("$ISLTEACH_RESULTS_DIR", os.environ.get("ISLTEACH_RESULTS_DIR")),
             ("results", str(_repo_root() / "results")),
             ("$ISLTEACH_DATA_DIR", os.environ.get("ISLTEACH_DATA_DIR"))]
    for shown, root in roots:
        if not root:
            continue
        try:
            return f"{shown}/{path.resolve().relative_to(Path(root).resolve()).as_posix()}"
        except ValueError:
            continue
    return path.name


def _repo_root() -> Path:
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "_config.yml").exists() and (d / "islteach").is_dir():
            return d
    return here


def to_jsonable(obj):
    """``obj`` with NumPy scalars/arrays, paths and tuples turned into plain JSON types (NaN -> null)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def save_results(chapter: str, results: dict, profile: str | None = None, files=None) -> Path:
    """Write ``results`` plus the provenance panel to ``results/<profile>/<chapter>.json``.

    The write is atomic (a temporary file renamed into place), so an interrupted
    run never leaves a half-written results file.
    """
    if not isinstance(results, dict):
        raise TypeError(f"results must be a dict, got {type(results).__name__}")
    p = get_profile(profile)
    import time

    report = dict(_CURRENT.get(chapter) or env_report(p, files))
    if chapter in _STARTED:
        report["elapsed_s"] = round(time.perf_counter() - _STARTED[chapter], 1)
    path = results_dir(p.name) / f"{chapter}.json"
    payload = {**to_jsonable(results), "provenance": report}
    return atomic_write_bytes(path, json.dumps(payload, indent=2, sort_keys=False).encode())


def load_results(chapter: str, profile: str | None = None) -> dict:
    """Read a results file written by :func:`save_results`."""
    path = results_dir(profile) / f"{chapter}.json"
    if not path.exists():
        raise FileNotFoundError(f"no results for {chapter!r} at {path}; run that chapter first")
    return json.loads(path.read_text())
