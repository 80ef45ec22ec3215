"""Transfer-learning experiments: does a pretext model save annotations? (chapter 3, and chapter 4's)

Bonte et al. fine-tune the same U-Net for nucleus segmentation on N annotated images,
starting either from the usual initialisation or from the In Silico Labeling (ISL)
model that predicts DAPI from label-free planes, and compare the IoU on a fixed test
set for N in {1, 10, 50, 100, 200, 500} {cite}`bonte2022`. Chapter 4 asks the same
question for instance segmentation (mAP of a two-output U-Net). This module holds the
parts of both experiments that are worth reusing and testing:

:func:`learning_curve`
    The one learning-curve engine of both chapters: runs every (init, N, seed) point
    through a function you give it, in-process or on an executor (a process pool, Dask,
    SLURM via submitit), caches each finished point to disk (a rerun, e.g. after a Colab
    disconnect, skips what is done; a crash loses at most the points being computed) and
    returns a tidy table: one record per point.
:func:`summarize`, :func:`relative_gain`, :func:`format_table`, :func:`plot_learning_curve`
    Mean and spread over seeds, the paper's relative gain per N, the figure.
:class:`ShiftedSigmoid`, :class:`SegmentationNet`, :func:`segmentation_model`
    The two segmentation models: a U-Net with a plain sigmoid (random or ImageNet
    initialisation) and the ISL model with the paper's shifted sigmoid
    :math:`f(x) = 1 / (1 + e^{-(x - 0.5)})`.
:func:`finetune_and_evaluate`
    One point: fine-tune with the soft Jaccard loss through :func:`islteach.train.fit`
    and score the IoU on the test images, averaged over the last checkpoints.
:func:`calibrate_threshold`, :func:`zero_shot_point`
    The zero-shot reference: the ISL output thresholded, with the threshold chosen on
    the N annotated images, no training.
:func:`synthetic_fields`, :func:`get_synthetic_pretext`
    Track A: synthetic fields with known nuclei and cells (both chapters), and the
    label-free -> DAPI pretext model trained on a separate pool of fields.
:func:`choose`, :func:`isl_field_split`
    Track B: the seeded, nested choice of N training tiles of the real ISL field
    (:func:`islteach.data.isl_tile_grid`), and chapter 4's split of that field.
:class:`SegmentationPointRunner` (:func:`make_point_runner`), :class:`InstancePointRunner`
    The points of chapter 3 (fine-tune for semantic segmentation, IoU) and chapter 4
    (Bonte et al.'s two-output recipe, :mod:`islteach.distance_maps`, mAP): picklable
    ``run_point(init, n, seed)`` objects for :func:`learning_curve`.
"""
from __future__ import annotations

import copy
import json
import math
import re
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .provenance import atomic_write_bytes as _atomic_write_bytes
from .provenance import shown_path
from .provenance import to_jsonable as _jsonable

__all__ = [
    "PAPER_GAINS_PERCENT", "PAPER_IOU_N1", "ISL_SHIFT",
    "learning_curve", "run_cached_point", "point_path", "summarize", "relative_gain", "format_table",
    "records_to_json", "seed_values", "crop_passes",
    "ShiftedSigmoid", "SegmentationNet", "segmentation_model",
    "calibrate_threshold", "zero_shot_point", "segmentation_scores", "finetune_and_evaluate",
    "synthetic_fields", "train_pretext", "get_synthetic_pretext", "synthetic_pretext_path",
    "SYNTH_SEEDS", "synthetic_track", "difficulty_sweep", "plot_difficulty_sweep", "chapter3_headline",
    "isl_field_split", "choose", "SegmentationPointRunner", "make_point_runner", "KEEP_PRETEXT_KEYS",
    "without_keep_pretext",
    "INSTANCE_INITS", "instance_model", "InstancePointRunner", "synthetic_cells_transfer", "gain_rows", "format_gains", "baseline_inits",
    "mean_metric", "track_results", "n1_predictions", "plot_learning_curve", "plot_examples",
    "shifted_sigmoid", "summary_table", "gain_table", "legend_below", "add_error_key",
]

#: Bonte et al.'s relative IoU gain of the ISL initialisation over ImageNet, in percent, per N.
PAPER_GAINS_PERCENT = {1: 31.3, 10: 4.8, 50: 1.1, 100: 0.0, 200: 0.0, 500: -1.1}
#: Bonte et al.'s IoU at N = 1 (mean, sd over the 190 test images).
PAPER_IOU_N1 = {"imagenet": (0.64, 0.2), "isl": (0.84, 0.1)}
#: Centre of the ISL model's activation: its DAPI output already lives around [0, 1].
ISL_SHIFT = 0.5


# =============================================================================== learning curve
def _check_int_list(values, name, minimum):
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a sequence of integers, got {values!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
            raise ValueError(f"{name} must hold integers >= {minimum}, got {v!r}")
        out.append(int(v))
    if not out:
        raise ValueError(f"{name} must not be empty")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not repeat values, got {out}")
    return out


def _canonical(config) -> str:
    return json.dumps(_jsonable(config if config is not None else {}), sort_keys=True, default=repr)


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def point_path(cache_dir, init: str, n: int, seed: int) -> Path:
    """The cache file of one point: ``<cache_dir>/<init>_n<n>_s<seed>.json``."""
    return Path(cache_dir) / f"{_SAFE.sub('-', str(init))}_n{int(n)}_s{int(seed)}.json"


def _save_point(path: Path, record: dict, arrays: dict, config: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    array_file = None
    if arrays:
        import io

        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        array_file = path.with_suffix(".npz")
        _atomic_write_bytes(array_file, buf.getvalue())  # arrays first: the json marks "done"
    payload = {"format": "islteach-point-1", "config": config, "record": _jsonable(record),
               "arrays": array_file.name if array_file else None}
    _atomic_write_bytes(path, json.dumps(payload, indent=1).encode())


def _load_point(path: Path, config: str):
    """The cached record at ``path``, or None (missing, unreadable, or made with another config)."""
    if not path.exists():
        return None, "missing"
    try:
        payload = json.loads(path.read_text())
        if payload.get("format") != "islteach-point-1":
            return None, "unreadable"
        if payload.get("config") != config:
            return None, "config"
        record = dict(payload["record"])
        if payload.get("arrays"):
            with np.load(path.parent / payload["arrays"]) as z:
                record.update({k: z[k] for k in z.files})
        return record, "ok"
    except (OSError, ValueError, KeyError, TypeError):
        return None, "unreadable"


def _point_record(result, init, n, seed, metric, seconds):
    """The record of one finished point (arrays split off), after checking ``result``."""
    if not isinstance(result, dict):
        raise TypeError(f"run_point must return a dict, got {type(result).__name__}")
    value = result.get(metric)
    if (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
            or not math.isfinite(float(value))):
        raise ValueError(f"run_point's result must hold a finite number under {metric!r}, "
                         f"got {value!r} for point ({init!r}, N={n}, seed={seed})")
    arrays = {k: np.asarray(v) for k, v in result.items() if isinstance(v, np.ndarray)}
    rec = {"init": init, "n": n, "seed": seed,
           **{k: v for k, v in result.items() if k not in arrays}, "train_time_s": round(seconds, 3)}
    return rec, arrays


def run_cached_point(run_point, init: str, n: int, seed: int, metric: str = "iou", path=None,
                     config: str = "") -> dict:
    """Run one point and, when ``path`` is given, write its record there at once (atomically).

    This is what :func:`learning_curve` runs for every point, in-process or on a worker of
    its ``executor``: the worker itself writes the cache file, so a lost worker (or job)
    loses only its own point.

    Parameters
    ----------
    run_point : callable
        ``run_point(init, n, seed) -> dict`` (see :func:`learning_curve`).
    init : str
    n, seed : int
    metric : str
        Key of the score in the result (checked to be a finite number).
    path : path-like, optional
        The point's cache file (:func:`point_path`); ``None``: not cached.
    config : str
        The canonical configuration string stored with the record.

    Returns
    -------
    dict
        The record (``init``, ``n``, ``seed``, the result's values, ``train_time_s``),
        arrays included, ``cached`` False.
    """
    t0 = time.perf_counter()
    result = run_point(init, n, seed)
    rec, arrays = _point_record(result, init, n, seed, metric, time.perf_counter() - t0)
    if path is not None:
        _save_point(Path(path), rec, arrays, config)
    rec.update(arrays)
    rec["cached"] = False
    return rec


def learning_curve(run_point, *, inits, n_values, seeds, cache_dir=None, config=None, metric: str = "iou",
                   executor=None, progress: bool = True, desc: str = "learning curve") -> list:
    """Run every (init, N, seed) point of a learning curve, caching each finished point to disk.

    Points are taken in the order N, then seed, then init (so the small-N comparisons, the
    interesting ones, finish first). First every point's cache file is looked up: when it
    exists and was written with the same ``config``, the point is skipped and its record is
    read back. Each remaining point runs through :func:`run_cached_point`, which writes its
    record at once (atomically), so an interruption loses at most the points being computed,
    and running the same call again resumes where it stopped.

    Parameters
    ----------
    run_point : callable
        ``run_point(init, n, seed) -> dict`` with at least ``metric`` (a finite number).
        Other values are kept: numbers, strings, lists and dicts in the JSON file, NumPy
        arrays (e.g. an example prediction) in an ``.npz`` next to it. Each point must seed
        itself (it may run in any order, or on another machine).
    inits : sequence of str
        Initialisations to compare, e.g. ``["random", "isl"]``.
    n_values : sequence of int
        Training-set sizes N (>= 1).
    seeds : sequence of int
        Seeds (>= 0); each (init, N) point runs once per seed.
    cache_dir : path-like, optional
        Directory of the per-point cache (``None``: no caching). With an ``executor`` the
        workers write there, so it must be on a file system they share with this process.
    config : dict, optional
        Everything that changes the result besides (init, N, seed): steps, learning rate,
        crop size, data... A cached point made with a different ``config`` is recomputed
        (and overwritten), never silently reused.
    metric : str
        Key of the score in ``run_point``'s result (``"iou"`` in chapter 3, ``"mAP"`` in
        chapter 4).
    executor : optional
        Anything with ``submit(fn, *args)`` returning futures with ``.result()``:
        :class:`concurrent.futures.ProcessPoolExecutor`, a Dask ``distributed.Client``, a
        ``submitit.AutoExecutor`` (SLURM)... All missing points are submitted at once and
        collected in order. ``run_point`` must then be picklable (a module-level function or
        a callable object such as :class:`SegmentationPointRunner`, not a closure or lambda).
        When some points fail, the others still finish and are cached; the first error is
        raised at the end. ``None`` (default): the points run here, one after the other.
        A process pool should start its workers with ``spawn``
        (``ProcessPoolExecutor(mp_context=multiprocessing.get_context("spawn"))``): workers
        forked from a process where torch has already run can hang in torch's thread pool.
    progress : bool
        A tqdm progress bar over points.
    desc : str
        Label of the progress bar.

    Returns
    -------
    list of dict
        One record per point, in the order above (the same with or without an executor):
        ``init``, ``n``, ``seed``, the result's values, ``train_time_s`` (wall time of
        ``run_point``, as measured when it ran) and ``cached`` (True when read back from the
        cache in this call).

    Examples
    --------
    >>> import tempfile
    >>> fake = lambda init, n, seed: {"iou": 0.5 + 0.1 * (init == "isl") / n}
    >>> rec = learning_curve(fake, inits=["random", "isl"], n_values=[1, 10], seeds=[0],
    ...                      cache_dir=tempfile.mkdtemp(), progress=False)
    >>> [(r["init"], r["n"], round(r["iou"], 2)) for r in rec]
    [('random', 1, 0.5), ('isl', 1, 0.6), ('random', 10, 0.5), ('isl', 10, 0.51)]
    """
    if not callable(run_point):
        raise TypeError(f"run_point must be callable, got {type(run_point).__name__}")
    if isinstance(inits, str) or not hasattr(inits, "__iter__"):
        raise TypeError(f"inits must be a sequence of strings, got {inits!r}")
    inits = list(inits)
    if not inits or not all(isinstance(i, str) and i for i in inits) or len(set(inits)) != len(inits):
        raise ValueError(f"inits must be distinct non-empty strings, got {inits!r}")
    n_values = _check_int_list(n_values, "n_values", 1)
    seeds = _check_int_list(seeds, "seeds", 0)
    if not isinstance(metric, str):
        raise TypeError(f"metric must be a string, got {metric!r}")
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise ValueError(f"executor must have a submit(fn, *args) method (e.g. concurrent.futures."
                         f"ProcessPoolExecutor, distributed.Client), got {type(executor).__name__}")
    cfg = _canonical(config)
    cache = Path(cache_dir) if cache_dir is not None else None

    points = [(init, n, seed) for n in n_values for seed in seeds for init in inits]
    from .provenance import progress as _progress

    bar = _progress(len(points), desc, "point", enabled=progress)
    records, todo, stale = [None] * len(points), [], 0
    try:
        for k, (init, n, seed) in enumerate(points):
            path = point_path(cache, init, n, seed) if cache is not None else None
            rec = None
            if path is not None:
                rec, why = _load_point(path, cfg)
                stale += why == "config"
            if rec is None:
                todo.append((k, path))
                continue
            rec["cached"] = True
            records[k] = rec
            bar.update(1)
        if executor is None:
            for k, path in todo:
                init, n, seed = points[k]
                bar.set_postfix_str(f"{init} N={n} seed={seed}")
                records[k] = run_cached_point(run_point, init, n, seed, metric, path, cfg)
                bar.update(1)
        else:
            futures = [(k, executor.submit(run_cached_point, run_point, *points[k], metric, path, cfg))
                       for k, path in todo]
            errors = []
            for k, fut in futures:
                init, n, seed = points[k]
                bar.set_postfix_str(f"waiting for {init} N={n} seed={seed}")
                try:
                    records[k] = fut.result()
                except Exception as e:  # keep collecting: the other points still get cached
                    errors.append((points[k], e))
                bar.update(1)
            if errors:
                (init, n, seed), first = errors[0]
                print(f"{len(errors)} of {len(futures)} submitted point(s) failed; the first was "
                      f"({init!r}, N={n}, seed={seed}). The others are cached.")
                raise first
    finally:
        bar.close()
    for rec in records:
        rec[metric] = float(rec[metric])
    if stale:
        print(f"Note: {stale} cached point(s) in {cache} were made with another configuration "
              "and were recomputed.")
    return records


def summarize(records, metric: str = "iou") -> list:
    """Mean, standard deviation, min and max of ``metric`` over seeds, per (init, N).

    Parameters
    ----------
    records : list of dict
        From :func:`learning_curve`.
    metric : str

    Returns
    -------
    list of dict
        ``init``, ``n``, ``mean``, ``std`` (sample sd, 0 with one seed), ``min``, ``max``,
        ``count``, sorted by init (in order of first appearance) then N.

    Examples
    --------
    >>> rows = summarize([{"init": "a", "n": 1, "iou": 0.4}, {"init": "a", "n": 1, "iou": 0.6}])
    >>> rows[0]["mean"], round(rows[0]["std"], 4), rows[0]["count"]
    (0.5, 0.1414, 2)
    """
    groups: dict = {}
    order = []
    for r in records:
        if not isinstance(r, dict) or not {"init", "n", metric} <= set(r):
            raise ValueError(f"records must be dicts with 'init', 'n' and {metric!r}, got {r!r}")
        key = (r["init"], int(r["n"]))
        if r["init"] not in order:
            order.append(r["init"])
        groups.setdefault(key, []).append(float(r[metric]))
    rows = []
    for (init, n), vals in sorted(groups.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
        v = np.asarray(vals, float)
        rows.append({"init": init, "n": n, "mean": float(v.mean()),
                     "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                     "min": float(v.min()), "max": float(v.max()), "count": int(len(v))})
    return rows


def relative_gain(records, init: str = "isl", baseline: str = "random", metric: str = "iou") -> dict:
    """Bonte et al.'s relative gain per N: (mean of ``init`` - mean of ``baseline``) / mean of ``baseline``.

    Returns
    -------
    dict
        ``{N: gain}`` (a fraction: 0.313 is +31.3 %) for every N where both ran.

    Examples
    --------
    >>> recs = [{"init": "random", "n": 1, "iou": 0.64}, {"init": "isl", "n": 1, "iou": 0.84}]
    >>> round(relative_gain(recs)[1], 3)
    0.312
    """
    means = {(r["init"], r["n"]): r["mean"] for r in summarize(records, metric)}
    out = {}
    for (i, n), m in sorted(means.items(), key=lambda kv: kv[0][1]):
        if i == init and (baseline, n) in means:
            b = means[(baseline, n)]
            out[n] = (m - b) / b if b != 0 else float("nan")
    return out


def crop_passes(finetune: dict, n: int) -> float:
    """How often a fine-tuning sees each of its fixed crops when ``n`` images are annotated.

    ``finetune`` is a profile's fine-tuning section (``steps``, ``batch_size``, ``n_crops`` per
    annotated image): ``steps * batch_size / (n * n_crops)``. At a fixed step budget the
    largest N gets the fewest looks per crop, which can bend a learning curve down.

    Examples
    --------
    >>> crop_passes({"steps": 60, "batch_size": 4, "n_crops": 40}, 12)
    0.5
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1 (annotated images), got {n!r}")
    missing = [k for k in ("steps", "batch_size", "n_crops") if k not in finetune]
    if missing:
        raise KeyError(f"finetune lacks {missing}: expected a fine-tuning section of a profile")
    return finetune["steps"] * finetune["batch_size"] / (int(n) * finetune["n_crops"])


def format_table(records, metric: str = "iou", digits: int = 3) -> str:
    """A plain-text table: one row per N, one ``mean ± sd (min-max)`` column per init.

    Examples
    --------
    >>> print(format_table([{"init": "a", "n": 1, "iou": 0.5}]))  # doctest: +NORMALIZE_WHITESPACE
    N  a
    1  0.500 ± 0.000 (n=1)
    """
    rows = summarize(records, metric)
    inits = list(dict.fromkeys(r["init"] for r in rows))
    ns = sorted({r["n"] for r in rows})
    cell = {(r["init"], r["n"]): f"{r['mean']:.{digits}f} ± {r['std']:.{digits}f} (n={r['count']})"
            for r in rows}
    table = [["N"] + inits] + [[str(n)] + [cell.get((i, n), "-") for i in inits] for n in ns]
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in table)


def records_to_json(records, drop_arrays: bool = True) -> list:
    """Records made JSON-friendly (arrays dropped), e.g. for :func:`islteach.provenance.save_results`."""
    out = []
    for r in records:
        out.append({k: _jsonable(v) for k, v in r.items() if not (drop_arrays and isinstance(v, np.ndarray))})
    return out


# =============================================================================== models
class ShiftedSigmoid(nn.Module):
    r"""The logistic function centred at ``shift``: :math:`f(x) = 1 / (1 + e^{-\mathrm{slope}\,(x - \mathrm{shift})})`.

    ``shift=0, slope=1`` is the plain sigmoid; Bonte et al. use ``shift=0.5`` after the ISL
    model, whose (DAPI) output already lies around [0, 1] {cite}`bonte2022`. A larger
    ``slope`` makes the head steeper: with ``shift`` at the threshold that segments the
    annotated image best, the pretext model starts fine-tuning as that zero-shot segmenter
    (:meth:`SegmentationPointRunner.__call__` with ``pretext_head_slope``).

    Examples
    --------
    >>> float(ShiftedSigmoid(0.5)(torch.tensor(0.5)))
    0.5
    >>> round(float(ShiftedSigmoid(0.2, slope=20)(torch.tensor(0.3))), 3)
    0.881
    """

    def __init__(self, shift: float = 0.0, slope: float = 1.0):
        super().__init__()
        if isinstance(shift, bool) or not isinstance(shift, (int, float, np.floating)) or not math.isfinite(shift):
            raise ValueError(f"shift must be a finite number, got {shift!r}")
        if isinstance(slope, bool) or not isinstance(slope, (int, float, np.floating)) or not (
                math.isfinite(slope) and slope > 0):
            raise ValueError(f"slope must be a positive finite number, got {slope!r}")
        self.shift = float(shift)
        self.slope = float(slope)

    def forward(self, x):
        return torch.sigmoid(self.slope * (x - self.shift))  # slope 1: exactly sigmoid(x - shift)

    def extra_repr(self) -> str:
        return f"shift={self.shift:g}" + ("" if self.slope == 1.0 else f", slope={self.slope:g}")


class SegmentationNet(nn.Module):
    """A network with one raw output channel followed by a (shifted) sigmoid: a probability map.

    Attributes
    ----------
    body : torch.nn.Module
        The U-Net (its raw output: logits, or predicted DAPI for the ISL model).
    activation : ShiftedSigmoid
    islteach_init : str
        The initialisation that actually happened (``"random"``, ``"imagenet"``, ``"isl"``...).
    """

    def __init__(self, body: nn.Module, shift: float = 0.0, init: str = "random", slope: float = 1.0):
        super().__init__()
        self.body = body
        self.activation = ShiftedSigmoid(shift, slope)
        self.islteach_init = str(init)
        #: when True, :meth:`train` leaves every BatchNorm layer in evaluation mode: it keeps
        #: normalising with the statistics of the pretext training (its running mean and
        #: variance) instead of those of each small fine-tuning batch, and does not update them
        self.freeze_norm = False

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.freeze_norm:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def raw(self, x):
        """The body's output before the activation."""
        return self.body(x)

    def forward(self, x):
        return self.activation(self.body(x))


def segmentation_model(init: str = "random", *, pretext_model=None, encoder_name: str = "resnet18",
                       in_channels: int = 3, shift=None, slope: float = 1.0, verbose: bool = True) -> SegmentationNet:
    """One of the two models of Bonte et al.'s comparison, ready for the soft Jaccard loss.

    Parameters
    ----------
    init : str
        ``"random"`` or ``"imagenet"``: a fresh :func:`islteach.models.unet` with a plain
        sigmoid (ImageNet falls back to random when the weights cannot be had; the returned
        model's ``islteach_init`` says what happened). Any other name (``"isl"``,
        ``"isl-map2"``...) labels a copy of ``pretext_model``, followed by the shifted sigmoid.
    pretext_model : torch.nn.Module, optional
        The pretext (ISL) network with one output channel; required for a pretext init,
        copied (never modified). Its ``islteach_config`` fixes the architecture of the
        other inits too, when given.
    encoder_name : str
        Encoder of the fresh U-Net when no ``pretext_model`` is given.
    in_channels : int
        Input channels of the fresh U-Net when no ``pretext_model`` is given.
    shift : float, optional
        Centre of the sigmoid; default ``0.5`` (:data:`ISL_SHIFT`) for a pretext init, 0 otherwise.
    slope : float
        Steepness of the sigmoid (:class:`ShiftedSigmoid`); 1 is Bonte et al.'s head.
    verbose : bool

    Returns
    -------
    SegmentationNet

    Examples
    --------
    >>> m = segmentation_model("random", encoder_name="resnet18", in_channels=2)
    >>> m.islteach_init, m.activation.shift
    ('random', 0.0)
    >>> isl = segmentation_model("isl", pretext_model=m.body)
    >>> isl.islteach_init, isl.activation.shift
    ('isl', 0.5)
    """
    from .models import unet

    if not isinstance(init, str) or not init:
        raise TypeError(f"init must be a non-empty string, got {init!r}")
    cfg = getattr(pretext_model, "islteach_config", None) if pretext_model is not None else None
    if cfg:
        encoder_name, in_channels = cfg["encoder_name"], int(cfg["in_channels"])
    if init in ("random", "imagenet"):
        body = unet(encoder_name, encoder_weights=None if init == "random" else "imagenet",
                    in_channels=in_channels, classes=1, verbose=verbose)
        actual = body.islteach_init
        return SegmentationNet(body, 0.0 if shift is None else shift, init=actual, slope=slope)
    if pretext_model is None:
        raise ValueError(f"init={init!r} is a pretext initialisation: pass pretext_model")
    if not isinstance(pretext_model, nn.Module):
        raise TypeError(f"pretext_model must be a torch.nn.Module, got {type(pretext_model).__name__}")
    body = copy.deepcopy(pretext_model)
    body.train()
    return SegmentationNet(body, ISL_SHIFT if shift is None else shift, init=init, slope=slope)


# =============================================================================== scoring
def _check_score_masks(scores, masks):
    if isinstance(scores, np.ndarray):
        scores = [scores]
    if isinstance(masks, np.ndarray):
        masks = [masks]
    scores, masks = list(scores), list(masks)
    if not scores or len(scores) != len(masks):
        raise ValueError(f"scores and masks must be non-empty and as many, got {len(scores)} and {len(masks)}")
    for s, m in zip(scores, masks):
        s, m = np.asarray(s), np.asarray(m)
        if s.shape != m.shape:
            raise ValueError(f"each score map must have its mask's shape, got {s.shape} and {m.shape}")
        if s.dtype.kind not in "uif":
            raise TypeError(f"scores must be real-valued arrays, got {s.dtype}")
        if m.dtype != bool and not np.isin(np.unique(m), (0, 1)).all():
            raise ValueError("masks must be binary (bool or 0/1)")
    return scores, masks


def calibrate_threshold(scores, masks, n_candidates: int = 101) -> tuple:
    """The threshold ``t`` that maximises the pooled IoU of ``score > t`` against ``masks``.

    The candidates are ``n_candidates`` quantiles of the pooled scores (0.5 % to 99.5 %)
    and as many evenly spaced values between those two quantiles; the IoU is pooled over all pixels of all images (total intersection / total union).

    Parameters
    ----------
    scores : (H, W) array or list of them
        E.g. the ISL model's predicted DAPI on the N annotated images.
    masks : (H, W) binary array or list of them
    n_candidates : int

    Returns
    -------
    threshold : float
    iou : float
        Pooled IoU at that threshold on these images.

    Examples
    --------
    >>> s = np.linspace(0, 1, 100).reshape(10, 10)
    >>> t, v = calibrate_threshold(s, s > 0.7)
    >>> round(v, 2), bool(0.6 < t < 0.75)
    (1.0, True)
    """
    scores, masks = _check_score_masks(scores, masks)
    if isinstance(n_candidates, bool) or not isinstance(n_candidates, (int, np.integer)) or n_candidates < 2:
        raise ValueError(f"n_candidates must be an integer >= 2, got {n_candidates!r}")
    s = np.concatenate([np.asarray(a, np.float64).ravel() for a in scores])
    m = np.concatenate([np.asarray(a).astype(bool).ravel() for a in masks])
    q = np.quantile(s, np.linspace(0.005, 0.995, int(n_candidates)))
    cand = np.unique(np.concatenate([q, np.linspace(q[0], q[-1], int(n_candidates))]))
    # counts of positives / negatives with score > t for every candidate t, via sorting
    pos_sorted = np.sort(s[m])
    neg_sorted = np.sort(s[~m])
    tp = len(pos_sorted) - np.searchsorted(pos_sorted, cand, side="right")
    fp = len(neg_sorted) - np.searchsorted(neg_sorted, cand, side="right")
    fn = len(pos_sorted) - tp
    union = tp + fp + fn
    iou = np.where(union > 0, tp / np.maximum(union, 1), 1.0)
    k = int(np.argmax(iou))
    return float(cand[k]), float(iou[k])


def zero_shot_point(train_scores, train_masks, test_scores, test_masks) -> dict:
    """The zero-shot reference for one point: calibrate a threshold on the annotated images, apply it to the test images.

    Returns
    -------
    dict
        ``iou`` (mean per-image IoU on the test images), ``threshold``, ``train_iou``.
    """
    from .metrics import iou

    t, train_iou = calibrate_threshold(train_scores, train_masks)
    test_scores, test_masks = _check_score_masks(test_scores, test_masks)
    vals = [iou(np.asarray(s) > t, np.asarray(m).astype(bool)) for s, m in zip(test_scores, test_masks)]
    return {"iou": float(np.mean(vals)), "threshold": t, "train_iou": train_iou}


def segmentation_scores(model, images, tile: int = 256, overlap: int = 32, device=None) -> list:
    """The model's first output channel on every (C, H, W) image (tiled prediction), as (H, W) float32 maps."""
    from .train import predict_tiled

    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    out = []
    for img in images:
        img = np.asarray(img, np.float32)
        t = int(min(tile, 32 * math.ceil(max(img.shape[-2:]) / 32)))
        ov = min(overlap, t // 4)
        out.append(predict_tiled(model, img, tile=t, overlap=ov, device=device)[0])
    return out


def _as_image_list(x, name, ndim):
    if isinstance(x, np.ndarray) and x.ndim == ndim:
        x = [x]
    x = list(x)
    if not x or not all(isinstance(a, np.ndarray) and a.ndim == ndim for a in x):
        raise ValueError(f"{name} must be a {ndim}-D array or a non-empty list of them")
    return x


def finetune_and_evaluate(model, train_x, train_masks, test_x, test_masks, *, steps: int, batch_size: int,
                          lr: float, crop_size: int, n_crops: int = 5, seed: int = 0, eval_every: int | None = None,
                          n_last: int = 3, threshold: float = 0.5, tile: int = 256, overlap: int = 32,
                          encoder_lr_scale: float = 1.0, freeze_encoder_steps: int = 0, freeze_norm: bool = False,
                          scheduler=None, keep_prediction: bool = False, progress: bool = False,
                          device=None) -> dict:
    """Fine-tune a :class:`SegmentationNet` with the soft Jaccard loss and score it on the test images.

    Training uses :func:`islteach.train.fit` (Adam, constant learning rate, seeded batches)
    on ``n_crops`` random crops per annotated image with random flips and rotations.
    Single checkpoints of a model trained on one image swing a lot, so the model is
    evaluated at its last ``n_last`` checkpoints (every ``eval_every`` steps up to
    ``steps``) and the reported ``iou`` is their mean; ``iou_final`` is the last one.

    Parameters
    ----------
    model : SegmentationNet
        Outputs probabilities (it is trained in place).
    train_x, test_x : (C, H, W) array or list of them
        Normalised inputs.
    train_masks, test_masks : (H, W) binary array or list of them
    steps, batch_size : int
    lr : float
    crop_size, n_crops : int
        Crop side (at most the smallest training image) and crops per image.
    seed : int
    eval_every : int, optional
        Steps between the evaluated checkpoints (default ``max(1, steps // 10)``).
    n_last : int
        Number of final checkpoints averaged.
    threshold : float
        Probability threshold of the segmentation.
    tile, overlap : int
        Tiled prediction of the test images.
    encoder_lr_scale : float
        The encoder (``model.body.encoder``) learns at ``lr * encoder_lr_scale``, the decoder
        and head at ``lr``: a lower rate keeps more of what a pretrained encoder knew.
    freeze_encoder_steps : int
        The encoder is frozen (no gradient) for the first this many steps, so the decoder
        adapts to the new task before the encoder changes (Zaki et al. freeze it at first).
    freeze_norm : bool
        Keep the BatchNorm layers in evaluation mode while training
        (:attr:`SegmentationNet.freeze_norm`): a pretext model keeps normalising with the
        statistics of its pretext training, not with those of a few small crops of one image.
    scheduler : {None, "constant", "cosine"}
        Learning-rate schedule of :func:`islteach.train.fit` (default constant).
    keep_prediction : bool
        Also return the probability map of the first test image (float16) as ``prediction``.
    progress : bool
    device : optional

    Returns
    -------
    dict
        ``iou``, ``iou_final``, ``iou_checkpoints`` ({step: IoU}), ``loss_final`` (mean of the
        last 10 training losses), ``steps``, ``fit_seconds``, ``init`` and, with
        ``keep_prediction``, ``prediction``.
    """
    from .data import PairDataset
    from .losses import SoftJaccardLoss
    from .metrics import iou
    from .train import fit

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    train_x = _as_image_list(train_x, "train_x", 3)
    train_masks = _as_image_list(train_masks, "train_masks", 2)
    test_x = _as_image_list(test_x, "test_x", 3)
    test_masks = _as_image_list(test_masks, "test_masks", 2)
    if len(train_x) != len(train_masks) or len(test_x) != len(test_masks):
        raise ValueError("each input image needs one mask")
    for name, v in (("steps", steps), ("batch_size", batch_size), ("crop_size", crop_size), ("n_crops", n_crops),
                    ("n_last", n_last)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    eval_every = max(1, steps // 10) if eval_every is None else int(eval_every)
    if isinstance(encoder_lr_scale, bool) or not isinstance(encoder_lr_scale, (int, float)) or not encoder_lr_scale > 0:
        raise ValueError(f"encoder_lr_scale must be a positive number, got {encoder_lr_scale!r}")
    if isinstance(freeze_encoder_steps, bool) or not isinstance(freeze_encoder_steps, (int, np.integer)) \
            or not 0 <= freeze_encoder_steps < steps:
        raise ValueError(f"freeze_encoder_steps must be an integer in 0..steps-1, got {freeze_encoder_steps!r}")
    if not isinstance(freeze_norm, bool):
        raise ValueError(f"freeze_norm must be True or False, got {freeze_norm!r}")
    if freeze_norm:
        if not isinstance(model, SegmentationNet):
            raise ValueError(f"freeze_norm=True needs a SegmentationNet, got {type(model).__name__}")
        model.freeze_norm = True
    encoder = getattr(getattr(model, "body", None), "encoder", None)
    if (encoder_lr_scale != 1.0 or freeze_encoder_steps) and not isinstance(encoder, nn.Module):
        raise ValueError("encoder_lr_scale and freeze_encoder_steps need a model whose body has an encoder "
                         "(a SegmentationNet around a U-Net)")
    optimizer = "adam"
    if encoder_lr_scale != 1.0 or freeze_encoder_steps:  # every parameter in the optimiser, frozen ones too
        enc_ids = {id(p) for p in encoder.parameters()}
        optimizer = torch.optim.Adam([
            {"params": [p for p in encoder.parameters()], "lr": float(lr) * float(encoder_lr_scale)},
            {"params": [p for p in model.parameters() if id(p) not in enc_ids], "lr": float(lr)}])
    if freeze_encoder_steps:
        for p in encoder.parameters():
            p.requires_grad_(False)
    targets = [np.asarray(m).astype(np.float32)[None] for m in train_masks]
    ds = PairDataset(train_x, targets, crop_size=int(crop_size), n_crops=int(n_crops), seed=int(seed), flips=True)
    eval_steps = {steps - k * eval_every for k in range(n_last) if steps - k * eval_every >= 1}
    truth = [np.asarray(m).astype(bool) for m in test_masks]
    checkpoints, last_pred = {}, {}

    def evaluate(step):
        was = model.training
        model.eval()
        with torch.no_grad():
            probs = segmentation_scores(model, test_x, tile=tile, overlap=overlap, device=device)
        if was:
            model.train()
        checkpoints[int(step)] = float(np.mean([iou(p > threshold, t) for p, t in zip(probs, truth)]))
        last_pred["p"] = probs[0]

    def callback(step, loss):
        if freeze_encoder_steps and step == int(freeze_encoder_steps):
            for p in encoder.parameters():
                p.requires_grad_(True)
        if step in eval_steps:
            evaluate(step)

    hist = fit(model, ds, SoftJaccardLoss(), steps=int(steps), batch_size=int(batch_size), lr=float(lr),
               optimizer=optimizer, scheduler=scheduler, seed=int(seed), device=device, progress=progress,
               callback=callback)
    vals = [checkpoints[s] for s in sorted(checkpoints)]
    out = {"iou": float(np.mean(vals)), "iou_final": vals[-1],
           "iou_checkpoints": {str(k): v for k, v in sorted(checkpoints.items())},
           "loss_final": float(np.mean(hist.loss[-10:])), "steps": int(steps),
           "fit_seconds": round(float(hist.seconds), 2), "init": getattr(model, "islteach_init", None)}
    if keep_prediction:
        out["prediction"] = last_pred["p"].astype(np.float16)
    return out


# =============================================================================== synthetic fields
def synthetic_fields(seeds, *, size: int = 128, bf_planes=(0, 4), phase: bool = True, target: str = "dapi",
                     **field_kwargs) -> dict:
    """Synthetic fields (:func:`islteach.synth.make_field`) as network inputs, pretext target and labels.

    One function for both chapters' transfer experiments: chapter 3 feeds two bright-field
    planes and the phase-contrast image and predicts DAPI; chapter 4 feeds every bright-field
    plane (``bf_planes=None, phase=False``) and predicts the membrane stain
    (``target="cellmask"``).

    Parameters
    ----------
    seeds : sequence of int
        One field per seed (use disjoint seed ranges for the pretext pool, the annotated
        pool and the test set), e.g. ``range(1000, 1000 + n)``.
    size : int
        Field side in pixels.
    bf_planes : sequence of int or None
        Bright-field focal planes (indices into the field's ``z_um``) used as input channels;
        ``None``: all of them.
    phase : bool
        Add the phase-contrast image as an input channel (Bonte et al.: 2 bright-field
        planes + phase contrast).
    target : {"dapi", "cellmask"}
        The pretext target.
    **field_kwargs
        Passed to :func:`islteach.synth.make_field`.

    Returns
    -------
    dict
        ``x``: list of (C, size, size) float32 (each channel percentile-normalised on its
        own); ``y``: list of (1, size, size) float32 normalised target; ``mask``: list of
        (size, size) bool nucleus masks; ``nuclei`` and ``cells``: lists of (size, size) int32
        nucleus and cell labels; ``seeds``.

    Examples
    --------
    >>> f = synthetic_fields([0], size=64, bf_planes=None, phase=False, target="cellmask")
    >>> f["x"][0].shape[1:], f["y"][0].shape, f["cells"][0].dtype
    ((64, 64), (1, 64, 64), dtype('int32'))
    """
    from .data import normalize_percentile
    from .synth import make_field

    seeds = _check_int_list(seeds, "seeds", 0)
    if target not in ("dapi", "cellmask"):
        raise ValueError(f"target must be 'dapi' or 'cellmask', got {target!r}")
    if bf_planes is not None:
        bf_planes = [int(p) for p in bf_planes]
    out = {"x": [], "y": [], "mask": [], "nuclei": [], "cells": [], "seeds": seeds}
    for s in seeds:
        f = make_field(int(size), seed=int(s), **field_kwargs)
        planes = list(f["brightfield"]) if bf_planes is None else [f["brightfield"][p] for p in bf_planes]
        chans = planes + ([f["phase"]] if phase else [])
        if not chans:
            raise ValueError("bf_planes and phase must give at least one input channel, got none")
        out["x"].append(normalize_percentile(np.stack(chans), axis=(-2, -1)))
        out["y"].append(normalize_percentile(f[target])[None])
        out["mask"].append(f["nuclei"] > 0)
        out["nuclei"].append(f["nuclei"])
        out["cells"].append(f["cells"].astype(np.int32))
    return out


def train_pretext(x, y, *, encoder_name: str = "resnet18", encoder_weights=None, steps: int, batch_size: int,
                  lr: float, crop_size: int, n_crops: int = 5, seed: int = 0, warmup: int = 20,
                  progress: bool = True, device=None):
    """The In Silico Labeling pretext on many images: :func:`islteach.train.train_image_to_image`.

    The same recipe as chapter 1's :func:`islteach.virtual_staining.train_virtual_staining`
    (U-Net, L1 loss, Adam with a cosine schedule, random crops and flips, initial weights
    seeded by ``seed``), for a list of images (e.g. a pool of synthetic fields) instead of
    one large field.

    Returns
    -------
    model : torch.nn.Module
        From :func:`islteach.models.unet` (``islteach_init`` says how its encoder started).
    history : islteach.train.History
    """
    from .train import train_image_to_image

    return train_image_to_image(x, y, encoder_name=encoder_name, encoder_weights=encoder_weights, steps=steps,
                                crop_size=crop_size, batch_size=batch_size, lr=lr, n_crops=n_crops,
                                warmup=warmup, seed=seed, progress=progress, device=device)


def synthetic_pretext_path(target: str = "dapi", profile=None, difficulty=None) -> Path:
    """``results_dir()/"models"/"synth_<target>.pt"``: where chapter 3 keeps its synthetic pretext model.

    With a ``difficulty`` (:func:`islteach.synth.difficulty_settings`) the file is
    ``synth_<target>_d<difficulty>.pt``, one per microscope of the difficulty sweep.
    """
    from .provenance import results_dir

    name = profile if isinstance(profile, str) or profile is None else profile.name
    suffix = "" if difficulty is None else f"_d{float(difficulty):.2f}"
    return results_dir(name) / "models" / f"synth_{target}{suffix}.pt"


def get_synthetic_pretext(target: str = "dapi", *, recipe: dict, profile=None, progress: bool = True,
                          device=None):
    """Load the synthetic pretext model for ``target``, or train it (and save it) when missing or stale.

    Parameters
    ----------
    target : {"dapi", "cellmask"}
    recipe : dict
        ``pretext_seeds`` (list of field seeds), ``size``, ``bf_planes``, ``phase``,
        ``encoder_name``, ``encoder_weights``, ``steps``, ``batch_size``, ``lr``, ``crop_size``,
        ``n_crops``, ``seed``, and ``eval_seeds`` (fields on which the PCC is measured);
        optionally ``difficulty`` (the synthetic microscope's, :func:`islteach.synth.make_field`;
        its model is saved under its own name, :func:`synthetic_pretext_path`).
        A saved model made with another recipe is retrained.
    profile : str or Profile, optional

    Returns
    -------
    model : torch.nn.Module (eval mode)
    metadata : dict
        The recipe, ``pcc`` on the evaluation fields, ``train_seconds``, ``init``.
    """
    from .metrics import pcc
    from .models import load_model, save_model

    keys = ("pretext_seeds", "size", "bf_planes", "phase", "encoder_name", "encoder_weights", "steps",
            "batch_size", "lr", "crop_size", "n_crops", "seed", "eval_seeds")
    missing = [k for k in keys if k not in recipe]
    if missing:
        raise ValueError(f"recipe must hold {list(keys)}; it is missing {missing}")
    rec = {k: _jsonable(recipe[k]) for k in keys}
    rec["target"] = target
    difficulty = recipe.get("difficulty")
    field_kw = {}
    if difficulty is not None:
        from .synth import difficulty_settings

        rec["difficulty"] = float(difficulty)
        rec["imaging"] = difficulty_settings(float(difficulty))  # a change of the knob's mapping retrains
        field_kw["difficulty"] = float(difficulty)
    path = synthetic_pretext_path(target, profile, difficulty)
    if path.exists():
        try:
            model, meta = load_model(path, device=device)
            if meta.get("recipe") == json.loads(json.dumps(rec)):
                print(f"Loaded the synthetic {target} pretext model from {shown_path(path)} "
                      f"(PCC {meta['pcc']:.3f} on {len(rec['eval_seeds'])} held-out fields).")
                return model, meta
            print(f"The synthetic pretext model at {shown_path(path)} was made with another recipe: retraining.")
        except Exception as e:  # corrupt or incompatible file
            print(f"Could not load {shown_path(path)} ({type(e).__name__}: {e}); retraining.")
    pool = synthetic_fields(rec["pretext_seeds"], size=rec["size"], bf_planes=rec["bf_planes"],
                            phase=rec["phase"], target=target, **field_kw)
    print(f"Training the synthetic {target} pretext model on {len(pool['x'])} fields "
          f"({rec['steps']} steps, {rec['encoder_name']}).")
    t0 = time.perf_counter()
    model, hist = train_pretext(pool["x"], pool["y"], encoder_name=rec["encoder_name"],
                                encoder_weights=rec["encoder_weights"], steps=rec["steps"],
                                batch_size=rec["batch_size"], lr=rec["lr"], crop_size=rec["crop_size"],
                                n_crops=rec["n_crops"], seed=rec["seed"], progress=progress, device=device)
    seconds = time.perf_counter() - t0
    ev = synthetic_fields(rec["eval_seeds"], size=rec["size"], bf_planes=rec["bf_planes"],
                          phase=rec["phase"], target=target, **field_kw)
    preds = segmentation_scores(model, ev["x"], device=device)
    pccs = [pcc(p, t[0]) for p, t in zip(preds, ev["y"])]
    meta = {"recipe": rec, "pcc": float(np.mean(pccs)), "pcc_per_field": pccs,
            "train_seconds": round(seconds, 1), "init": model.islteach_init,
            "loss_final": float(np.mean(hist.loss[-20:]))}
    save_model(model, path, **meta)
    model.eval()
    meta["config"] = dict(model.islteach_config)
    print(f"Saved it to {shown_path(path)}: PCC {meta['pcc']:.3f} on {len(pccs)} held-out fields, {seconds:.0f} s.")
    return model, meta


# =============================================================================== the difficulty sweep
#: First seeds of the synthetic field pools (disjoint ranges): pretext, annotated pool, test, PCC evaluation.
SYNTH_SEEDS = {"pretext": 10_000, "pool": 0, "test": 20_000, "eval": 30_000}


def synthetic_track(difficulty: float = 0.0, *, n_values, seeds, pretext: dict, finetune: dict, size: int,
                    bf_planes, phase: bool, pool_fields: int, test_fields: int, eval_fields: int, seed: int = 0,
                    controls=(), inits=None, cache_dir=None, profile=None, device=None, executor=None,
                    progress: bool = True) -> dict:
    """One synthetic microscope's learning curve: pretext, annotated pool, test fields, every (init, N, seed) point.

    The field seeds come from :data:`SYNTH_SEEDS` (disjoint pools), so every difficulty images
    the *same specimens*. The label-free -> DAPI pretext is trained on ``pretext["n_fields"]``
    fields (:func:`get_synthetic_pretext`, saved per difficulty and reused on the next run);
    the inits ``"random"`` (plus ``"imagenet"`` when its weights can be had), ``"isl"``, the
    control pretexts of ``controls`` (e.g. ``["cellmask"]``, as ``"isl-cellmask"``) and
    ``"zero-shot"`` run through :func:`make_point_runner` and :func:`learning_curve`, cached in
    ``cache_dir/d<difficulty>``. Two calls with the same sizes share their cached points (the
    difficulty sweep reuses the chapter's N = 1 points of the easiest microscope).

    Parameters
    ----------
    difficulty : float
        In [0, 1] (:func:`islteach.synth.difficulty_settings`).
    n_values, seeds : sequences of int
    pretext : dict
        ``n_fields``, ``encoder_name``, ``encoder_weights``, ``steps``, ``batch_size``, ``lr``,
        ``crop_size``, ``n_crops`` (chapter 3's ``synth_pretext``).
    finetune : dict
        Keyword arguments of :func:`finetune_and_evaluate` (chapter 3's ``synth_finetune``).
    size : int
    bf_planes, phase
        Input channels (:func:`synthetic_fields`).
    pool_fields, test_fields, eval_fields : int
        Annotated pool (at least ``max(n_values)``), test fields, fields of the pretext's PCC.
    seed : int
        Seed of the pretext trainings (the profile's).
    controls : sequence of str
        Control pretext targets (``"cellmask"``).
    inits : sequence of str, optional
        Run only these of the inits (default: every one).
    cache_dir : path-like, optional
    profile : str or Profile, optional
    device : optional
    executor : optional
        Runs the points side by side (:func:`learning_curve`); the pretext is trained here first.
    progress : bool

    Returns
    -------
    dict
        ``records``, ``inits``, ``baselines`` (the baseline inits that ran), ``pretext_meta``
        (``{init: metadata}``), ``pretext_recipe``, ``pool`` and ``test`` (:func:`synthetic_fields`),
        ``config``, ``difficulty``.
    """
    from .synth import difficulty_settings

    difficulty_settings(difficulty)  # checks the range
    d = float(difficulty)
    n_values = _check_int_list(n_values, "n_values", 1)
    seeds = _check_int_list(seeds, "seeds", 0)
    need = ("n_fields", "encoder_name", "encoder_weights", "steps", "batch_size", "lr", "crop_size", "n_crops")
    missing = [k for k in need if k not in pretext]
    if missing:
        raise ValueError(f"pretext must hold {list(need)}; it is missing {missing}")
    for name, v in (("pool_fields", pool_fields), ("test_fields", test_fields), ("eval_fields", eval_fields)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if max(n_values) > pool_fields:
        raise ValueError(f"N={max(n_values)} is larger than the annotated pool ({pool_fields} fields)")
    S = SYNTH_SEEDS
    seeds_pretext = list(range(S["pretext"], S["pretext"] + int(pretext["n_fields"])))
    seeds_pool = list(range(S["pool"], S["pool"] + int(pool_fields)))
    seeds_test = list(range(S["test"], S["test"] + int(test_fields)))
    seeds_eval = list(range(S["eval"], S["eval"] + int(eval_fields)))
    kw = dict(size=int(size), bf_planes=list(bf_planes), phase=bool(phase))
    recipe = {"pretext_seeds": seeds_pretext, **kw, "seed": int(seed), "eval_seeds": seeds_eval,
              "difficulty": d, **{k: pretext[k] for k in need if k != "n_fields"}}
    models, metas = {}, {}
    for target in ["dapi", *controls]:
        name = "isl" if target == "dapi" else f"isl-{target}"
        models[name], metas[name] = get_synthetic_pretext(target, recipe=recipe, profile=profile,
                                                          progress=progress, device=device)
    pool = synthetic_fields(seeds_pool, difficulty=d, **kw)
    test = synthetic_fields(seeds_test, difficulty=d, **kw)
    runner = make_point_runner(pool["x"], pool["mask"], test["x"], test["mask"], pretext_models=models,
                               finetune=finetune, device=device)
    config = {"track": "synthetic", "difficulty": d, "finetune": finetune, "pool": [seeds_pool[0], len(seeds_pool)],
              "test": seeds_test, "input": kw, "pretext": recipe, "pretext_pcc": round(metas["isl"]["pcc"], 6)}
    baselines = baseline_inits(pretext["encoder_name"])
    every = baselines + list(models) + ["zero-shot"]
    if inits is not None:
        unknown = [i for i in inits if i not in every]
        if unknown or not inits:
            raise ValueError(f"inits must be a non-empty subset of {every}, got {inits!r}")
    inits = every if inits is None else [i for i in every if i in inits]
    sub = None if cache_dir is None else Path(cache_dir) / f"d{d:.2f}"
    records = learning_curve(runner, inits=inits, n_values=n_values, seeds=seeds, cache_dir=sub, config=config,
                             executor=executor, progress=progress, desc=f"synthetic points (difficulty {d:.2f})")
    return {"records": records, "inits": inits, "baselines": baselines, "pretext_meta": metas,
            "pretext_recipe": recipe, "pool": pool, "test": test, "config": config, "difficulty": d}


def difficulty_sweep(difficulties, *, seeds, n: int = 1, progress: bool = True, **track) -> dict:
    """When does the pretext pay off? ISL init against random init at N = ``n``, one microscope per difficulty.

    For every ``difficulty`` of the synthetic microscope (:func:`islteach.synth.difficulty_settings`:
    how hard the nuclei are to see in the label-free planes), :func:`synthetic_track` images
    the *same specimens*, trains a label-free -> DAPI pretext on them and, for every seed,
    fine-tunes a random-init U-Net and a copy of the pretext model on the same ``n``
    annotated field(s) (other fields for other seeds), plus the zero-shot reference; every
    point is scored on the same test fields and cached.

    Parameters
    ----------
    difficulties : sequence of float
        In [0, 1], easiest first (strictly increasing).
    seeds : sequence of int
    n : int
        Annotated fields per point.
    progress : bool
    **track
        The other keyword arguments of :func:`synthetic_track` (``pretext``, ``finetune``,
        ``size``, ``bf_planes``, ``phase``, ``pool_fields``, ``test_fields``, ``eval_fields``,
        ``seed``, ``cache_dir``, ``profile``, ``device``).

    Returns
    -------
    dict
        ``difficulties``, ``n``, ``seeds``, ``settings`` (imaging settings per difficulty),
        ``pretext_pcc`` and ``pretext_steps``, ``records`` (every point, with its ``difficulty``),
        ``iou`` (``{init: [[IoU per seed] per difficulty]}`` for ``random``, ``isl``,
        ``zero-shot``), ``gain_per_seed`` (``[[isl / random - 1 per seed] per difficulty]``,
        both fine-tuned on the same annotated field), ``gain`` (relative gain of the means per
        difficulty, 0.25 = +25 %).
    """
    from .synth import difficulty_settings

    ds = [float(d) for d in difficulties]
    if not ds or any(b <= a for a, b in zip(ds, ds[1:])):
        raise ValueError(f"difficulties must be a non-empty, strictly increasing list, got {difficulties!r}")
    for d in ds:
        difficulty_settings(d)
    seeds = _check_int_list(seeds, "seeds", 0)
    inits = ["random", "isl", "zero-shot"]
    out = {"difficulties": ds, "n": int(n), "seeds": seeds, "settings": [difficulty_settings(d) for d in ds],
           "pretext_pcc": [], "pretext_steps": int(track["pretext"]["steps"]), "records": [],
           "iou": {i: [] for i in inits}, "gain_per_seed": [], "gain": []}
    for d in ds:
        t = synthetic_track(d, n_values=[int(n)], seeds=seeds, progress=progress, **track)
        recs = [dict(r, difficulty=d) for r in t["records"] if r["init"] in inits]
        out["records"] += recs
        out["pretext_pcc"].append(float(t["pretext_meta"]["isl"]["pcc"]))
        per = {i: [next(float(r["iou"]) for r in recs if r["init"] == i and r["seed"] == s) for s in seeds]
               for i in inits}
        for i in inits:
            out["iou"][i].append(per[i])
        out["gain_per_seed"].append([a / b - 1 if b > 0 else float("nan") for a, b in zip(per["isl"], per["random"])])
        out["gain"].append(float(np.mean(per["isl"]) / np.mean(per["random"]) - 1))
    return out


def chapter3_headline(isl_records, sweep: dict, baseline: str = "random", control: str = "isl-map2") -> dict:
    """Chapter 3's ``headline`` block (issue 15): means over seeds on the ISL field and the sweep's gains.

    Parameters
    ----------
    isl_records : list of dict
        The ISL field's learning-curve records (inits ``baseline``, ``"isl"``, ``"zero-shot"`` and
        optionally ``control``).
    sweep : dict
        From :func:`difficulty_sweep`.

    Returns
    -------
    dict
        ``isl_field``: ``n1_random`` (the baseline), ``n1_isl``, ``n1_zero_shot``, ``n1_control``
        (None when the control did not run), ``nmax``, ``nmax_isl``, ``nmax_random``,
        ``nmax_zero_shot``, ``seeds``, ``n1_tiles`` (the distinct annotated tiles at N = 1) and the
        per-seed values ``n1_per_seed`` (``{init: [...]}``); ``synthetic``: ``difficulties``
        (easiest first), ``gain_n1_by_difficulty`` (relative gain of the means, 0.25 = +25 %),
        ``gain_n1_per_seed``, ``iou_n1_random``, ``iou_n1_isl``, ``iou_n1_zero_shot`` (per seed,
        per difficulty), ``pretext_pcc``, ``seeds``.

    Examples
    --------
    >>> recs = [{"init": i, "n": n, "seed": s, "iou": v, "images": [s]} for i, n, s, v in
    ...         [("random", 1, 0, .2), ("isl", 1, 0, .3), ("zero-shot", 1, 0, .25),
    ...          ("random", 4, 0, .4), ("isl", 4, 0, .4), ("zero-shot", 4, 0, .3)]]
    >>> sw = {"difficulties": [0.0], "gain": [0.1], "gain_per_seed": [[0.1]], "seeds": [0], "pretext_pcc": [0.8],
    ...       "iou": {"random": [[0.5]], "isl": [[0.55]], "zero-shot": [[0.4]]}}
    >>> h = chapter3_headline(recs, sw)
    >>> h["isl_field"]["n1_isl"], h["isl_field"]["nmax"], h["isl_field"]["n1_control"], h["synthetic"]["gain_n1_by_difficulty"]
    (0.3, 4, None, [0.1])
    """
    ns = sorted({int(r["n"]) for r in isl_records})
    n0, n1 = ns[0], ns[-1]

    def per_seed(init, n):
        return [float(r["iou"]) for r in isl_records if r["init"] == init and int(r["n"]) == n]

    def mean(init, n):
        v = per_seed(init, n)
        return float(np.mean(v)) if v else None

    tiles = sorted({int(i) for r in isl_records if int(r["n"]) == n0 and r["init"] == "isl"
                    for i in r.get("images", [])})
    inits = [i for i in (baseline, "isl", "zero-shot", control) if per_seed(i, n0)]
    isl_field = {"n1_random": mean(baseline, n0), "n1_isl": mean("isl", n0), "n1_zero_shot": mean("zero-shot", n0),
                 "n1_control": mean(control, n0), "nmax": n1, "nmax_isl": mean("isl", n1),
                 "nmax_random": mean(baseline, n1), "nmax_zero_shot": mean("zero-shot", n1),
                 "seeds": sorted({int(r["seed"]) for r in isl_records}), "n1_tiles": tiles,
                 "baseline": baseline, "n1_per_seed": {i: per_seed(i, n0) for i in inits}}
    synthetic = {"difficulties": list(sweep["difficulties"]),
                 "gain_n1_by_difficulty": [float(g) for g in sweep["gain"]],
                 "gain_n1_per_seed": sweep["gain_per_seed"],
                 "iou_n1_random": sweep["iou"]["random"], "iou_n1_isl": sweep["iou"]["isl"],
                 "iou_n1_zero_shot": sweep["iou"]["zero-shot"], "pretext_pcc": list(sweep["pretext_pcc"]),
                 "seeds": list(sweep["seeds"])}
    return _jsonable({"isl_field": isl_field, "synthetic": synthetic})


def plot_difficulty_sweep(sweep: dict, labels=None, target_gain: float | None = 0.25):
    """Two panels from :func:`difficulty_sweep`: the IoU at N = n per init, and the relative gain of ISL over random.

    Every seed is a dot, the means are joined by lines; the gain panel shows each seed's
    gain (ISL and random fine-tuned on the same annotated field) and the gain of the means,
    with ``target_gain`` as a dashed line.

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt

    labels = labels or {}
    ds = np.asarray(sweep["difficulties"], float)
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.8))
    jitter = np.linspace(-0.012, 0.012, max(1, len(sweep["seeds"])))
    for init, per in sweep["iou"].items():
        color = _COLORS.get(init, None)
        per = np.asarray(per, float)
        ls = "--" if init == "zero-shot" else "-"
        axes[0].plot(ds, per.mean(1), ls, marker="o", color=color, label=labels.get(init, init))
        for k in range(per.shape[1]):
            axes[0].scatter(ds + jitter[k], per[:, k], s=12, color=color, alpha=0.6, zorder=3)
    axes[0].set_ylabel(f"IoU on the test fields, N = {sweep['n']}")
    g = np.asarray(sweep["gain_per_seed"], float)
    axes[1].plot(ds, 100 * np.asarray(sweep["gain"]), "-o", color="tab:red", label="gain of the means")
    for k in range(g.shape[1]):
        axes[1].scatter(ds + jitter[k], 100 * g[:, k], s=14, color="tab:red", alpha=0.5, zorder=3,
                        label="one seed (same annotated field)" if k == 0 else None)
    axes[1].axhline(0, color="k", lw=0.6)
    if target_gain is not None:
        axes[1].axhline(100 * target_gain, color="tab:gray", ls="--", lw=1, label=f"+{100 * target_gain:.0f} %")
    axes[1].set_ylabel("relative gain of ISL over random init (%)")
    for ax in axes:
        ax.set_xlabel("difficulty (0: nuclei plain; 1: nuclei hard to see)")
        ax.set_xticks(ds)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# =============================================================================== the ISL field
def isl_field_split(x, labels, *, tile: int = 256, n_val: int = 2, seed: int = 0, test_region=None) -> dict:
    """Annotated tiles, validation tiles and the test region of one large field (the ISL field).

    The field is cut into non-overlapping ``tile x tile`` tiles that do not touch the test
    region (:func:`islteach.data.isl_tile_grid`); the tiles are put in a seeded random
    order, the last ``n_val`` of them choose the post-processing parameter and the others are
    the pool of annotated images (take the first N of them for N annotated images, so a
    learning curve adds tiles rather than swapping them). The test region is one image.

    Parameters
    ----------
    x : (C, H, W) float array
        Network input, e.g. ``islteach.virtual_staining.isl_arrays(planes)["x"]``.
    labels : (H, W) int array
        Instance labels of the whole field (chapter 2's ISL nucleus labels).
    tile : int
    n_val : int
        Tiles held out for validation (at least 1, and one tile must remain for training).
    seed : int
    test_region : pair of slices, optional
        Default :data:`islteach.data.ISL_TEST_REGION` (the bottom-right quadrant).

    Returns
    -------
    dict
        ``train_x``, ``train_y``, ``val_x``, ``val_y``, ``test_x``, ``test_y`` (lists of
        (C, h, w) inputs and (h, w) int32 labels), ``train_corners``, ``val_corners``
        (top-left (y, x) of each tile) and ``test_region``.

    Examples
    --------
    >>> x = np.zeros((3, 1024, 1024), np.float32); lab = np.zeros((1024, 1024), np.int32)
    >>> s = isl_field_split(x, lab, tile=256, n_val=2)
    >>> len(s["train_x"]), len(s["val_x"]), s["test_x"][0].shape
    (10, 2, (3, 512, 512))
    """
    from .data import ISL_TEST_REGION, isl_tile_grid
    from .distance_maps import _check_image, _check_labels

    img = _check_image(x, "x")
    if img.ndim != 3:
        raise ValueError(f"x must be a (C, H, W) array, got shape {img.shape}")
    lab = _check_labels(labels)
    if img.shape[1:] != lab.shape:
        raise ValueError(f"x {img.shape} and labels {lab.shape} differ in (H, W)")
    region = ISL_TEST_REGION if test_region is None else test_region
    grid = isl_tile_grid(tile, shape=lab.shape, test_region=region)
    if isinstance(n_val, bool) or not isinstance(n_val, (int, np.integer)) or not 1 <= n_val < len(grid):
        raise ValueError(f"n_val must be an integer in 1..{len(grid) - 1} ({len(grid)} tiles of {tile} px), "
                         f"got {n_val!r}")
    order = np.random.default_rng(seed).permutation(len(grid))
    corners = [grid[i] for i in order]

    def cut(cs):
        return ([img[:, y:y + tile, x0:x0 + tile] for y, x0 in cs],
                [lab[y:y + tile, x0:x0 + tile].astype(np.int32) for y, x0 in cs])

    train_x, train_y = cut(corners[:len(corners) - n_val])
    val_x, val_y = cut(corners[len(corners) - n_val:])
    ty, tx = region
    return {"train_x": train_x, "train_y": train_y, "val_x": val_x, "val_y": val_y,
            "test_x": [img[:, ty, tx]], "test_y": [lab[ty, tx].astype(np.int32)],
            "train_corners": corners[:len(corners) - n_val], "val_corners": corners[len(corners) - n_val:],
            "test_region": region}


def choose(pool_size: int, n: int, seed: int) -> np.ndarray:
    """Indices of ``n`` of ``pool_size`` items for ``seed``: a seeded permutation's first ``n``.

    For one seed the choices are nested (the N = 1 item is among the N = 10 ones), so a
    learning curve adds data rather than swapping it; different seeds give different items.

    Examples
    --------
    >>> a, b = choose(100, 1, seed=0), choose(100, 10, seed=0)
    >>> bool(a[0] in b), len(set(choose(100, 10, seed=1)))
    (True, 10)
    """
    for name, v in (("pool_size", pool_size), ("n", n), ("seed", seed)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
    if n > pool_size:
        raise ValueError(f"n={n} is larger than the pool ({pool_size})")
    return np.random.default_rng([int(seed), 7919]).permutation(int(pool_size))[: int(n)]


# =============================================================================== one point, both tracks
def _architectures(models: dict) -> set:
    """Encoder names recorded in the ``islteach_config`` of the models that have one."""
    return {m.islteach_config["encoder_name"] for m in models.values()
            if isinstance(getattr(m, "islteach_config", None), dict) and "encoder_name" in m.islteach_config}


class SegmentationPointRunner:
    """The ``run_point(init, n, seed)`` of chapter 3's segmentation learning curves.

    A plain object (picklable, so :func:`learning_curve` can send it to the workers of an
    executor). Build it with :func:`make_point_runner`, which documents the parameters.
    """

    def __init__(self, pool_x, pool_masks, test_x, test_masks, *, pretext_models: dict, finetune: dict,
                 zero_shot_from: str = "isl", keep_prediction_for=(1,), encoder_name: str | None = None,
                 in_channels: int | None = None, device=None):
        self.pool_x = _as_image_list(pool_x, "pool_x", 3)
        self.pool_masks = _as_image_list(pool_masks, "pool_masks", 2)
        self.test_x = _as_image_list(test_x, "test_x", 3)
        self.test_masks = _as_image_list(test_masks, "test_masks", 2)
        if len(self.pool_x) != len(self.pool_masks):
            raise ValueError(f"pool_x and pool_masks must be as many, got {len(self.pool_x)} and "
                             f"{len(self.pool_masks)}")
        if not isinstance(pretext_models, dict):
            raise ValueError(f"pretext_models must be a dict {{init name: model}}, got {type(pretext_models).__name__}")
        if not isinstance(finetune, dict):
            raise ValueError(f"finetune must be a dict of finetune_and_evaluate keyword arguments, "
                             f"got {type(finetune).__name__}")
        archs = _architectures(pretext_models)
        if encoder_name is not None and archs and archs != {encoder_name}:
            raise ValueError(f"encoder_name={encoder_name!r} differs from the pretext models' encoder "
                             f"{sorted(archs)}: the baselines must have the pretext model's architecture")
        if encoder_name is None and len(archs) > 1:
            raise ValueError(f"the pretext models have different encoders {sorted(archs)}: pass encoder_name")
        self.encoder_name = encoder_name if encoder_name is not None else (archs.pop() if archs else None)
        self.pretext_models = pretext_models
        self.finetune = dict(finetune)
        self.zero_shot_from = zero_shot_from
        self.keep = {int(n) for n in keep_prediction_for}
        self.in_channels = int(self.pool_x[0].shape[0]) if in_channels is None else int(in_channels)
        self.device = device
        if self.finetune.get(self.HEAD_KEY) is not None:
            try:  # the head's own check, before any point has run
                ShiftedSigmoid(0.0, self.finetune[self.HEAD_KEY])
            except ValueError as err:
                raise ValueError(f"finetune[{self.HEAD_KEY!r}]: {err}") from None
        self._scores = None
        self._pool_scores = None

    #: keys of ``finetune`` that apply to the pretext initialisations only (their encoder came pretrained)
    PRETEXT_KEYS = {"pretext_encoder_lr_scale": "encoder_lr_scale",
                    "pretext_freeze_encoder_steps": "freeze_encoder_steps",
                    "pretext_lr": "lr",
                    "pretext_freeze_norm": "freeze_norm"}
    #: the key of ``finetune`` that gives a pretext init the calibrated head (see :meth:`__call__`)
    HEAD_KEY = "pretext_head_slope"

    def finetune_kwargs(self, init: str) -> dict:
        """The keyword arguments of :func:`finetune_and_evaluate` for ``init``.

        For a pretext init (its network was pretrained) ``finetune``'s ``pretext_lr``,
        ``pretext_encoder_lr_scale``, ``pretext_freeze_encoder_steps`` and ``pretext_freeze_norm``
        become ``lr``, ``encoder_lr_scale``, ``freeze_encoder_steps`` and ``freeze_norm``: a
        lower rate and the pretext's BatchNorm statistics keep what it knew. The random and
        ImageNet inits train every layer at ``lr`` from the first step.
        """
        kw = {k: v for k, v in self.finetune.items() if k not in self.PRETEXT_KEYS and k != self.HEAD_KEY}
        if init in self.pretext_models:
            kw.update({new: self.finetune[old] for old, new in self.PRETEXT_KEYS.items() if old in self.finetune})
        return kw

    def pool_scores(self, init: str) -> list:
        """The pretext model ``init``'s raw output on every pool image (computed once per model;
        the zero-shot model's are those of :meth:`zero_shot_scores`)."""
        if init == self.zero_shot_from:
            return self.zero_shot_scores()[0]
        if self._pool_scores is None:
            self._pool_scores = {}
        if init not in self._pool_scores:
            self._pool_scores[init] = segmentation_scores(self.pretext_models[init], self.pool_x,
                                                          tile=int(self.finetune.get("tile", 256)), device=self.device)
        return self._pool_scores[init]

    def head(self, init: str, idx) -> dict:
        """The sigmoid head of a pretext init annotated on pool images ``idx``: ``{"shift", "slope"}``.

        Without ``pretext_head_slope`` in ``finetune`` it is Bonte et al.'s fixed head
        (shift 0.5, slope 1). With it, the shift is the threshold of the pretext output that
        segments the annotated images best (:func:`calibrate_threshold`, the zero-shot
        reference's threshold) and the slope is ``pretext_head_slope``: before its first step
        the fine-tuned model is then the zero-shot segmenter, with a head steep enough that its
        probabilities are near 0 and 1 where the pretext output is clearly below or above the threshold.
        """
        slope = self.finetune.get(self.HEAD_KEY)
        if slope is None:
            return {"shift": ISL_SHIFT, "slope": 1.0}
        scores = self.pool_scores(init)
        t, _ = calibrate_threshold([scores[i] for i in idx], [self.pool_masks[i] for i in idx])
        return {"shift": float(t), "slope": float(slope)}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_scores"] = None  # recomputed where needed, not shipped to every worker
        state["_pool_scores"] = None
        return state

    def zero_shot_scores(self):
        """The zero-shot pretext model's output on the pool and the test images (computed once)."""
        if self._scores is None:
            model = self.pretext_models[self.zero_shot_from]
            tile = int(self.finetune.get("tile", 256))
            self._scores = (segmentation_scores(model, self.pool_x, tile=tile, device=self.device),
                            segmentation_scores(model, self.test_x, tile=tile, device=self.device))
        return self._scores

    def __call__(self, init, n, seed):
        idx = choose(len(self.pool_x), int(n), int(seed))
        if init == "zero-shot":
            if self.zero_shot_from not in self.pretext_models:
                raise ValueError(f"zero-shot needs pretext_models[{self.zero_shot_from!r}]")
            pool_s, test_s = self.zero_shot_scores()
            out = zero_shot_point([pool_s[i] for i in idx], [self.pool_masks[i] for i in idx], test_s,
                                  self.test_masks)
            if int(n) in self.keep:
                out["prediction"] = (test_s[0] > out["threshold"]).astype(np.float16)
        else:
            pretext = self.pretext_models.get(init)
            if pretext is None and self.encoder_name is None:
                raise ValueError(f"init={init!r} needs the architecture of the pretext models: pass "
                                 "encoder_name (the pretext models carry no islteach_config)")
            torch.manual_seed(10_000 + int(seed))  # the random init differs between seeds
            head = self.head(init, idx) if pretext is not None else {}
            model = segmentation_model(init, pretext_model=pretext, encoder_name=self.encoder_name,
                                       in_channels=self.in_channels, verbose=False, **head)
            out = finetune_and_evaluate(model, [self.pool_x[i] for i in idx], [self.pool_masks[i] for i in idx],
                                        self.test_x, self.test_masks, seed=int(seed),
                                        keep_prediction=int(n) in self.keep, device=self.device,
                                        **self.finetune_kwargs(init))
            if head:
                out["head"] = head
        out["images"] = [int(i) for i in idx]
        return out


#: the keys of a fine-tuning recipe that make a pretext init keep what its pretext knew
#: (:meth:`SegmentationPointRunner.finetune_kwargs`, :meth:`SegmentationPointRunner.head`); the
#: encoder's lower rate (``pretext_encoder_lr_scale``) is not among them
KEEP_PRETEXT_KEYS = ("pretext_lr", "pretext_freeze_norm", "pretext_head_slope")


def without_keep_pretext(finetune: dict) -> dict:
    """``finetune`` without :data:`KEEP_PRETEXT_KEYS`: Bonte et al.'s fixed head ``sigmoid(x - 0.5)``,
    BatchNorm on each batch's statistics and the rate ``lr`` for a pretext init too.

    Examples
    --------
    >>> without_keep_pretext({"lr": 1e-3, "pretext_lr": 1e-4, "pretext_head_slope": 20.0})
    {'lr': 0.001}
    """
    if not isinstance(finetune, dict):
        raise ValueError(f"finetune must be a dict, got {type(finetune).__name__}")
    return {k: v for k, v in finetune.items() if k not in KEEP_PRETEXT_KEYS}


def make_point_runner(pool_x, pool_masks, test_x, test_masks, *, pretext_models: dict, finetune: dict,
                      zero_shot_from: str = "isl", keep_prediction_for=(1,), encoder_name: str | None = None,
                      in_channels: int | None = None, device=None) -> SegmentationPointRunner:
    """The ``run_point(init, n, seed)`` of a segmentation learning curve, for :func:`learning_curve`.

    For a point (init, N, seed) it picks N annotated images of the pool with
    :func:`choose` (nested in N for one seed, different across seeds), then:

    * ``init == "zero-shot"``: no training; the output of ``pretext_models[zero_shot_from]``
      is thresholded at the value that works best on the N annotated images
      (:func:`zero_shot_point`): the reference that fine-tuning has to beat;
    * ``init`` in ``pretext_models`` (``"isl"``, ``"isl-map2"``...): a copy of that pretext
      model with the shifted sigmoid, fine-tuned (:func:`finetune_and_evaluate`) with the
      pretext-only keys of ``finetune`` (:meth:`SegmentationPointRunner.finetune_kwargs`); with
      ``pretext_head_slope`` its sigmoid is centred at the zero-shot threshold of the N annotated
      images instead of 0.5 (:meth:`SegmentationPointRunner.head`);
    * ``"random"`` / ``"imagenet"``: a fresh U-Net of the pretext models' architecture with a
      plain sigmoid (seeded by ``seed``), fine-tuned the same way.

    Parameters
    ----------
    pool_x : list of (C, H, W) arrays
        The annotated images to draw from (normalised inputs).
    pool_masks : list of (H, W) bool arrays
    test_x, test_masks : arrays or lists
        The fixed held-out test images.
    pretext_models : dict
        ``{init name: pretext network}``.
    finetune : dict
        Keyword arguments of :func:`finetune_and_evaluate` (``steps``, ``batch_size``, ``lr``,
        ``crop_size``, ``n_crops``, ``eval_every``, ``n_last``...).
    zero_shot_from : str
        Which pretext model the zero-shot reference uses.
    keep_prediction_for : sequence of int
        Values of N whose test prediction is kept (for figures).
    encoder_name : str, optional
        Encoder of the fresh (random / ImageNet) U-Nets. Default: the one recorded in the
        pretext models' ``islteach_config`` (:func:`islteach.models.unet`), so the baselines
        always have the pretext model's architecture; a different name raises ValueError.
        Required when the pretext models carry no ``islteach_config``.
    in_channels : int, optional
        Input channels of the fresh U-Nets (default: those of ``pool_x``).
    device : optional

    Returns
    -------
    SegmentationPointRunner
        ``run_point(init, n, seed) -> dict`` (see :func:`finetune_and_evaluate`), plus
        ``images`` (the pool indices used). Picklable: it can run on an executor.
    """
    return SegmentationPointRunner(pool_x, pool_masks, test_x, test_masks, pretext_models=pretext_models,
                                   finetune=finetune, zero_shot_from=zero_shot_from,
                                   keep_prediction_for=keep_prediction_for, encoder_name=encoder_name,
                                   in_channels=in_channels, device=device)


# =============================================================================== chapter 4: instances
#: The initialisations of chapter 4's transfer experiments (two-output Bonte U-Nets).
INSTANCE_INITS = ("isl", "random", "imagenet")


def instance_model(init: str, *, encoder_name: str, in_channels: int, isl_state=None, encoder_weights=None):
    """A fresh two-output (distance, mask logits) U-Net for chapter 4's transfer experiments.

    Parameters
    ----------
    init : {"isl", "random", "imagenet"}
        ``"isl"``: a one-output :func:`islteach.models.unet` loaded with ``isl_state`` (the
        pretext network), followed by the two convolutions of
        :func:`islteach.distance_maps.isl_two_output`. ``"random"``: a two-output U-Net with
        random weights. ``"imagenet"``: the same with ``encoder_weights`` (default
        ``"imagenet"``) in the encoder.
    encoder_name : str
    in_channels : int
    isl_state : dict, optional
        ``state_dict`` of a one-output pretext U-Net of this architecture; required for ``"isl"``.
    encoder_weights : str, optional

    Returns
    -------
    torch.nn.Module
        ``(B, in_channels, H, W) -> (B, 2, H, W)``. The random draws come from torch's global
        generator: seed it first (``torch.manual_seed``) for a reproducible start.
    """
    from . import models
    from .distance_maps import isl_two_output

    if init == "isl":
        if isl_state is None:
            raise ValueError("init='isl' needs isl_state (the pretext U-Net's state_dict)")
        body = models.unet(encoder_name, encoder_weights=None, in_channels=in_channels, classes=1, verbose=False)
        body.load_state_dict(isl_state)
        return isl_two_output(body)
    if init == "random":
        return models.unet(encoder_name, encoder_weights=None, in_channels=in_channels, classes=2, verbose=False)
    if init == "imagenet":
        return models.unet(encoder_name, encoder_weights=encoder_weights or "imagenet", in_channels=in_channels,
                           classes=2)
    raise ValueError(f"init must be one of {INSTANCE_INITS}, got {init!r}")


class InstancePointRunner:
    """The ``run_point(init, n, seed)`` of chapter 4's transfer experiments (Bonte et al.'s recipe).

    For a point (init, N, seed): ``torch.manual_seed(seed)``, a fresh two-output model
    (:func:`instance_model`), trained with :func:`islteach.distance_maps.train_bonte` on
    random crops of the first N training images (``max(1, crops_total // N)`` crops per
    image, so every N sees about the same number of crops), h (or an (h, mask threshold) pair)
    chosen on the validation images, and the test images segmented and scored.

    Calling it, ``run_point(init, n, seed)``, returns a dict: ``mAP`` (mean over IoU
    0.5..0.95, averaged over the test images), ``f1_05``, ``parameter`` (the chosen h or
    pair), ``model_init`` (what the model's encoder actually started from) and, for N in
    ``keep_prediction_for``, ``prediction`` (int32 labels of ``test_x[0]``). The object is
    picklable, so :func:`learning_curve` can send it to an executor's workers.

    Parameters
    ----------
    train_x, train_y : sequences of (C, H, W) inputs and (H, W) int labels
        The annotated pool; a point with N uses its first N items (nested in N).
    test_x, test_y : sequences
        The fixed test images.
    encoder_name : str
        Encoder of every model (the pretext network's, for ``"isl"``).
    in_channels : int
    steps : int
        Training steps per point.
    alpha : float
        Weight of the BCE term of :class:`islteach.losses.CombinedLoss`.
    crop_size : int
        Side of the training crops.
    crops_total : int
        Crops per point, shared out over the N training images (chapter 4's profiles: 40).
    batch_size : int
    lr : float
    h_values : sequence
        Candidates of :func:`islteach.distance_maps.choose_parameter` (h, or (h, mask threshold) pairs).
    val : (xs, ys), optional
        Validation images that choose the parameter (default: the N training images).
    min_size : int
        Smallest object kept.
    choose_iou : float
        IoU threshold of the validation F1 that chooses the parameter.
    isl_state : dict, optional
        ``state_dict`` of the one-output pretext U-Net (needed for ``init="isl"``); copied to the CPU.
    encoder_weights : str, optional
        Encoder weights of ``init="imagenet"``.
    keep_prediction_for : sequence of int
        Values of N whose predicted labels of ``test_x[0]`` are kept (as ``prediction``).
    progress : bool
    device : optional
        Passed to training and prediction (default: CUDA when available).
    """

    def __init__(self, train_x, train_y, test_x, test_y, *, encoder_name: str, in_channels: int, steps: int,
                 alpha: float, crop_size: int, crops_total: int, batch_size: int = 8, lr: float = 1e-3,
                 h_values=(0.5, 1.0, 2.0), val=None, min_size: int = 16, choose_iou: float = 0.7,
                 isl_state=None, encoder_weights=None, keep_prediction_for=(), progress: bool = False,
                 device=None):
        if len(train_x) != len(train_y) or not len(train_x):
            raise ValueError(f"train_x and train_y must be non-empty and as many, got {len(train_x)} and "
                             f"{len(train_y)}")
        if len(test_x) != len(test_y) or not len(test_x):
            raise ValueError(f"test_x and test_y must be non-empty and as many, got {len(test_x)} and {len(test_y)}")
        for name, v in (("steps", steps), ("crop_size", crop_size), ("crops_total", crops_total),
                        ("batch_size", batch_size), ("in_channels", in_channels)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if val is not None and (len(val) != 2 or len(val[0]) != len(val[1]) or not len(val[0])):
            raise ValueError("val must be a pair (xs, ys) of non-empty sequences of the same length")
        self.train_x, self.train_y = list(train_x), list(train_y)
        self.test_x, self.test_y = list(test_x), list(test_y)
        self.val = None if val is None else (list(val[0]), list(val[1]))
        self.encoder_name, self.in_channels = str(encoder_name), int(in_channels)
        self.encoder_weights = encoder_weights
        self.isl_state = (None if isl_state is None
                          else {k: v.detach().cpu().clone() for k, v in isl_state.items()})
        self.steps, self.alpha, self.crop_size = int(steps), float(alpha), int(crop_size)
        self.crops_total, self.batch_size, self.lr = int(crops_total), int(batch_size), float(lr)
        self.h_values, self.min_size, self.choose_iou = list(h_values), int(min_size), float(choose_iou)
        self.keep = {int(n) for n in keep_prediction_for}
        self.progress, self.device = bool(progress), device

    def build(self, init: str):
        """The fresh model of ``init`` (:func:`instance_model`; seed torch first)."""
        return instance_model(init, encoder_name=self.encoder_name, in_channels=self.in_channels,
                              isl_state=self.isl_state, encoder_weights=self.encoder_weights)

    def __call__(self, init, n, seed):
        from .distance_maps import choose_parameter, instance_dataset, predict_maps, to_instances, train_bonte
        from .metrics import score_record

        n, seed = int(n), int(seed)
        if not 1 <= n <= len(self.train_x):
            raise ValueError(f"n must lie in 1..{len(self.train_x)} (the training images), got {n}")
        torch.manual_seed(seed)
        model = self.build(init)
        ds = instance_dataset(self.train_x[:n], self.train_y[:n], "bonte", crop_size=self.crop_size,
                              n_crops=max(1, self.crops_total // n), seed=seed)
        train_bonte(model, ds, steps=self.steps, alpha=self.alpha, batch_size=self.batch_size, lr=self.lr,
                    seed=seed, progress=self.progress, device=self.device)
        vx, vy = self.val if self.val is not None else (self.train_x[:n], self.train_y[:n])
        vmaps = [predict_maps(model, x, device=self.device) for x in vx]
        h, _ = choose_parameter(vmaps, list(vy), "bonte", self.h_values, iou=self.choose_iou,
                                min_size=self.min_size)
        preds = [to_instances(predict_maps(model, x, device=self.device), "bonte", h, min_size=self.min_size)
                 for x in self.test_x]
        # the switch to metrics.score_record (its "mAP" and ["f1"]["0.5"]) belongs here
        ev = score_record(list(self.test_y), preds)
        out = {"mAP": float(ev["mAP"]), "f1_05": float(ev["f1"]["0.5"]), "parameter": h,
               "model_init": getattr(model, "islteach_init", None)}
        if n in self.keep:
            out["prediction"] = np.asarray(preds[0], np.int32)
        return out


def synthetic_cells_transfer(section, *, seed: int = 0, encoder_weights=None, lr: float | None = None,
                             progress: bool = False) -> dict:
    """Chapter 4's transfer experiment on synthetic cells with membranes, the whole protocol.

    A U-Net learns to predict the membrane stain from every bright-field plane of one large
    un-annotated synthetic field (the pretext, :func:`islteach.virtual_staining.train_virtual_staining`).
    Then that network (``"isl"``) and the same U-Net with the baseline initialisations
    (:func:`baseline_inits`) are fine-tuned with Bonte et al.'s two outputs on N annotated
    fields (:class:`InstancePointRunner`, h chosen on validation fields) and scored (mAP) on
    separate test fields: :func:`learning_curve` over ``transfer_n`` and ``transfer_seeds``.

    Parameters
    ----------
    section : mapping
        Chapter 4's sizes (a profile's ``ch4`` section, or a dict): ``transfer_size``,
        ``transfer_n``, ``transfer_test``, ``transfer_pretext_steps``, ``transfer_steps``,
        ``transfer_batch``, ``transfer_seeds``, ``transfer_crops_total``, ``cells_seeds``,
        ``cells_val_fields``, ``cells_pretext_n_crops``, ``encoder_name``, ``crop_size``,
        ``h_values``, ``min_size``, ``lr``.
    seed : int
        Seed of the pretext training.
    encoder_weights : str or None
        Encoder weights of the baseline and fine-tuned networks (``None``: random only).
    lr : float, optional
        Default ``section["lr"]``.

    Returns
    -------
    dict
        ``records`` (one per init, N and seed: ``mAP``, ``f1_05``, ``parameter``), ``inits``,
        ``pretext_pcc`` (on the first test field), ``seconds``.
    """
    from .distance_maps import bonte_targets
    from .losses import initial_loss_ratio
    from .metrics import pcc as _pcc
    from .train import predict_tiled, train_image_to_image

    n_values = list(section["transfer_n"])
    if not n_values:
        raise ValueError("section['transfer_n'] is empty: this profile does not run the synthetic-cells "
                         "transfer experiment")
    t0 = time.perf_counter()
    size, seeds = int(section["transfer_size"]), section["cells_seeds"]
    lr = float(section["lr"] if lr is None else lr)

    def cells(n, first_seed, side=size):
        return synthetic_fields(range(first_seed, first_seed + n), size=side, bf_planes=None, phase=False,
                                target="cellmask")

    train, test = cells(max(n_values), seeds["train"]), cells(int(section["transfer_test"]), seeds["test"])
    val, pre = cells(int(section["cells_val_fields"]), seeds["val"]), cells(1, seeds["pretext"], 2 * size)
    crop = min(int(section["crop_size"]), size)
    # chapter 1's recipe (islteach.virtual_staining.train_virtual_staining) on the whole pretext field
    isl_net, _ = train_image_to_image(
        pre["x"][0], pre["y"][0], allowed=np.ones((2 * size, 2 * size), bool), encoder_name=section["encoder_name"],
        encoder_weights=None, steps=int(section["transfer_pretext_steps"]), crop_size=crop,
        batch_size=int(section["transfer_batch"]), lr=lr, n_crops=int(section["cells_pretext_n_crops"]),
        warmup=20, seed=int(seed), progress=progress)
    pcc = _pcc(predict_tiled(isl_net, test["x"][0], tile=size)[0], np.squeeze(test["y"][0]))
    inits = ["isl"] + (baseline_inits(section["encoder_name"]) if encoder_weights else ["random"])
    alpha = initial_loss_ratio(np.concatenate([bonte_targets(y)[0].ravel() for y in train["cells"]]))
    runner = InstancePointRunner(
        train["x"], train["cells"], test["x"], test["cells"], encoder_name=section["encoder_name"],
        in_channels=train["x"][0].shape[0], isl_state=isl_net.state_dict(), encoder_weights=encoder_weights,
        steps=int(section["transfer_steps"]), alpha=alpha, crop_size=crop,
        crops_total=int(section["transfer_crops_total"]), batch_size=int(section["transfer_batch"]), lr=lr,
        h_values=section["h_values"], val=(val["x"], val["cells"]), min_size=int(section["min_size"]))
    records = learning_curve(runner, inits=inits, n_values=n_values, seeds=list(section["transfer_seeds"]),
                             metric="mAP", progress=progress)
    return {"records": records, "inits": inits, "pretext_pcc": float(pcc), "seconds": time.perf_counter() - t0}


def seed_values(records, init: str, key: str) -> dict:
    """``{N: [value of key, one per seed, in record order]}`` for one init, N ascending.

    Examples
    --------
    >>> seed_values([{"init": "a", "n": 4, "seed": 0, "mAP": 0.3}, {"init": "a", "n": 1, "seed": 0, "mAP": 0.1}],
    ...             "a", "mAP")
    {1: [0.1], 4: [0.3]}
    """
    out: dict = {}
    for r in records:
        if r["init"] == init:
            out.setdefault(int(r["n"]), []).append(r[key])
    return dict(sorted(out.items()))


def gain_rows(records, init: str = "isl", baseline: str = "random", metric: str = "iou") -> list:
    """Per N: mean IoU of both inits, our relative gain and Bonte et al.'s (where they report one).

    Returns
    -------
    list of dict
        ``n``, ``baseline_mean``, ``init_mean``, ``gain`` (fraction), ``paper_gain`` (fraction or None).
    """
    means = {(r["init"], r["n"]): r["mean"] for r in summarize(records, metric)}
    gains = relative_gain(records, init=init, baseline=baseline, metric=metric)
    rows = []
    for n, g in gains.items():
        paper = PAPER_GAINS_PERCENT.get(int(n))
        rows.append({"n": int(n), "baseline_mean": means[(baseline, n)], "init_mean": means[(init, n)],
                     "gain": float(g), "paper_gain": None if paper is None else paper / 100.0})
    return rows


def format_gains(records, init: str = "isl", baseline: str = "random", metric: str = "iou") -> str:
    """:func:`gain_rows` as text, one line per N, with the paper's gain where it has that N."""
    lines = []
    for r in gain_rows(records, init=init, baseline=baseline, metric=metric):
        paper = "" if r["paper_gain"] is None else f"{100 * r['paper_gain']:+.1f} %"
        lines.append(f"N={r['n']:>4}: {baseline} {r['baseline_mean']:.3f}  {init} {r['init_mean']:.3f}  "
                     f"gain {100 * r['gain']:+6.1f} %   paper {paper}".rstrip())
    return "\n".join(lines)


def baseline_inits(encoder_name: str) -> list:
    """``["random", "imagenet"]`` when ImageNet weights for ``encoder_name`` can be had (cache or hub), else ``["random"]``."""
    from .models import weights_available

    try:
        ok = weights_available(encoder_name, "imagenet")
    except ValueError:  # no ImageNet weights exist for this encoder
        ok = False
    return ["random", "imagenet"] if ok else ["random"]


def mean_metric(records, init: str, n: int = 1, metric: str = "iou") -> float:
    """Mean of ``metric`` over the seeds of one (init, N) point; NaN when it did not run."""
    v = [float(r[metric]) for r in records if r["init"] == init and int(r["n"]) == int(n)]
    return float(np.mean(v)) if v else float("nan")


def track_results(records, baseline: str, baselines_ran, **extra) -> dict:
    """What the results file keeps per track: the records, their summary, ``gain_n1`` and which baseline ran."""
    gains = relative_gain(records, init="isl", baseline=baseline)
    return {"records": records_to_json(records), "summary": summarize(records), "baseline": baseline,
            "baselines_ran": list(baselines_ran), "gain_n1": gains.get(1),
            "gains": {str(k): v for k, v in gains.items()}, **_jsonable(extra)}


def n1_predictions(records, seed: int, n: int = 1) -> dict:
    """``{init: prediction}`` of the points with this N and seed that kept their test prediction."""
    return {r["init"]: r["prediction"] for r in records
            if int(r["n"]) == int(n) and int(r["seed"]) == int(seed) and "prediction" in r}


_COLORS = {"random": "tab:gray", "imagenet": "tab:blue", "isl": "tab:red", "isl-map2": "tab:purple",
           "isl-cellmask": "tab:purple", "zero-shot": "black"}


def plot_learning_curve(records, ax=None, metric: str = "iou", title=None, labels=None, references=None,
                        ylabel=None, ylim=None):
    """A score against N (log axis) for both chapters: mean over seeds, min-max band, every seed as a dot.

    One colour per init; ``"zero-shot"`` records are drawn dashed (no training happened).

    Parameters
    ----------
    records : list of dict
        From :func:`learning_curve` (chapter 3's ``iou`` records or chapter 4's ``mAP`` ones).
    ax : matplotlib Axes, optional
    metric : str
        The record key drawn (``"iou"``, ``"mAP"``, ``"f1_05"``...).
    title : str, optional
    labels : dict, optional
        Legend label per init (default: the init names).
    references : dict, optional
        ``{name: value}`` drawn as dashed horizontal lines (scores that need no annotated image).
    ylabel : str, optional
        Default: ``"IoU on the test set"`` for ``iou``, else ``"<metric> on the test set"``.
    ylim : pair, optional
        Limits of the score axis (``None`` for either end: matplotlib's choice); default: scaled to the data.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> recs = [{"init": "isl", "n": n, "seed": 0, "mAP": v} for n, v in ((1, 0.2), (4, 0.4))]
    >>> ax = plot_learning_curve(recs, metric="mAP", references={"classical": 0.3})
    >>> [line.get_label() for line in ax.get_lines()]
    ['isl', 'classical']
    """
    import matplotlib.pyplot as plt

    if not isinstance(records, (list, tuple)) or not records:
        raise ValueError(f"records must be a non-empty list of learning-curve records, got {records!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4))
    labels = labels or {}
    rows = summarize(records, metric)
    inits = list(dict.fromkeys(r["init"] for r in rows))
    for k, init in enumerate(inits):
        rs = [r for r in rows if r["init"] == init]
        ns = np.array([r["n"] for r in rs])
        color = _COLORS.get(init, f"C{k}")
        ls = "--" if init == "zero-shot" else "-"
        ax.plot(ns, [r["mean"] for r in rs], ls, marker="o", color=color, label=labels.get(init, init))
        ax.fill_between(ns, [r["min"] for r in rs], [r["max"] for r in rs], color=color, alpha=0.15, lw=0)
        pts = [(r["n"], r[metric]) for r in records if r["init"] == init]
        jitter = np.exp(np.linspace(-0.04, 0.04, 5))
        ax.scatter([n * jitter[i % 5] for i, (n, _) in enumerate(pts)], [v for _, v in pts], s=10,
                   color=color, alpha=0.6, zorder=3)
    for k, (name, value) in enumerate((references or {}).items()):
        ax.axhline(float(value), ls="--", lw=1, color=f"C{len(inits) + k}", label=name)
    ax.set_xscale("log")
    ns_all = sorted({r["n"] for r in rows})
    ax.set_xticks(ns_all)
    ax.set_xticklabels([str(n) for n in ns_all])
    ax.minorticks_off()
    ax.set_xlabel("annotated images N (log scale)")
    ax.set_ylabel(ylabel or f"{'IoU' if metric == 'iou' else metric} on the test set")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_examples(image, truth, predictions: dict, *, titles=None, threshold: float = 0.5, suptitle=None):
    """One row: the input, the ground truth, and each model's segmentation (outlined truth on top).

    Parameters
    ----------
    image : (H, W) array
        Shown in grey (e.g. one label-free plane).
    truth : (H, W) bool array
    predictions : dict
        ``{name: (H, W) probability map}`` (thresholded at ``threshold``).
    titles : dict, optional
        Panel title per name (e.g. with the IoU).
    suptitle : str, optional

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt
    from skimage.segmentation import find_boundaries

    from .metrics import iou

    truth = np.asarray(truth).astype(bool)
    n = 2 + len(predictions)
    fig, axes = plt.subplots(1, n, figsize=(2.8 * n, 3.0))
    lo, hi = np.percentile(image, [1, 99.8])
    axes[0].imshow(image, cmap="gray", vmin=lo, vmax=hi)
    axes[0].set_title("input (one plane)", fontsize=9)
    axes[1].imshow(truth, cmap="gray")
    axes[1].set_title("ground truth", fontsize=9)
    edge = find_boundaries(truth, mode="inner")
    for ax, (name, p) in zip(axes[2:], predictions.items()):
        seg = np.asarray(p, np.float32) > threshold
        rgb = np.zeros(seg.shape + (3,), np.float32)
        rgb[seg & truth] = (1, 1, 1)        # true positive: white
        rgb[seg & ~truth] = (1, 0.2, 0.2)   # false positive: red
        rgb[~seg & truth] = (0.2, 0.5, 1)   # false negative: blue
        rgb[edge] = rgb[edge] * 0.5 + 0.5 * np.array([1, 1, 0])
        ax.imshow(rgb)
        ax.set_title((titles or {}).get(name, f"{name}: IoU {iou(seg, truth):.2f}"), fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


# =============================================================================== chapter 3's page
def shifted_sigmoid(x, shift: float = ISL_SHIFT):
    r"""The logistic function centred at ``shift`` as a plain function: :math:`1 / (1 + e^{-(x - \mathrm{shift})})`.

    The same as :class:`ShiftedSigmoid` (``shifted_sigmoid(x) == ShiftedSigmoid(0.5)(x)``), for
    chapter 3's exercise: it keeps the tensor's shape and dtype and passes gradients through.

    Parameters
    ----------
    x : torch.Tensor
        The network's raw output (for the ISL model: its predicted DAPI, around [0, 1]).
    shift : float
        Centre of the sigmoid; ``0`` gives the plain sigmoid.

    Returns
    -------
    torch.Tensor
        Probabilities in (0, 1), the shape of ``x``.

    Examples
    --------
    >>> [round(float(v), 3) for v in shifted_sigmoid(torch.tensor([0.0, 0.5, 1.0]))]
    [0.378, 0.5, 0.622]
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch tensor, got {type(x).__name__}")
    if isinstance(shift, bool) or not isinstance(shift, (int, float)) or not math.isfinite(shift):
        raise ValueError(f"shift must be a finite number, got {shift!r}")
    return torch.sigmoid(x - float(shift))


def summary_table(records, metric: str = "iou", digits: int = 3, labels=None) -> tuple:
    """:func:`format_table` as ``(rows, columns)`` for :func:`islteach.viz.show_table`.

    One row per N, one column per init holding ``mean ± sd (min–max)`` over its seeds.

    Parameters
    ----------
    records : list of dict
        From :func:`learning_curve`.
    metric : str
    digits : int
    labels : dict, optional
        Column title per init (default: the init names).

    Returns
    -------
    rows : list of lists
    columns : list of str

    Examples
    --------
    >>> recs = [{"init": "a", "n": 1, "iou": 0.4}, {"init": "a", "n": 1, "iou": 0.6}]
    >>> summary_table(recs)
    ([['1', '0.500 ± 0.141 (0.400–0.600)']], ['N', 'a'])
    """
    rows = summarize(records, metric)
    labels = labels or {}
    inits = list(dict.fromkeys(r["init"] for r in rows))
    ns = sorted({r["n"] for r in rows})
    d = int(digits)
    cell = {(r["init"], r["n"]): f"{r['mean']:.{d}f} ± {r['std']:.{d}f} ({r['min']:.{d}f}–{r['max']:.{d}f})"
            for r in rows}
    table = [[str(n)] + [cell.get((i, n), "–") for i in inits] for n in ns]
    return table, ["N"] + [str(labels.get(i, i)) for i in inits]


def gain_table(records, init: str = "isl", baseline: str = "random", metric: str = "iou") -> tuple:
    """:func:`gain_rows` as ``(rows, columns)`` for :func:`islteach.viz.show_table`: per N, both means, our gain, the paper's.

    Examples
    --------
    >>> recs = [{"init": "random", "n": 1, "iou": 0.5}, {"init": "isl", "n": 1, "iou": 0.6}]
    >>> gain_table(recs)
    ([[1, '0.500', '0.600', '+20.0 %', '+31.3 %']], ['N', 'random', 'isl', 'relative gain', 'paper (Bonte et al.)'])
    """
    rows = []
    for r in gain_rows(records, init=init, baseline=baseline, metric=metric):
        paper = "–" if r["paper_gain"] is None else f"{100 * r['paper_gain']:+.1f} %"
        rows.append([r["n"], f"{r['baseline_mean']:.3f}", f"{r['init_mean']:.3f}", f"{100 * r['gain']:+.1f} %", paper])
    return rows, ["N", baseline, init, "relative gain", "paper (Bonte et al.)"]


def legend_below(fig, axes, fontsize: int = 8):
    """Replace the legends of ``axes`` by one legend under the figure (no legend over the curves).

    Entries with the same label are shown once, in order of first appearance. The figure grows
    by the legend's height and the layout keeps room for a suptitle above.

    Returns
    -------
    matplotlib Legend
    """
    entries: dict = {}
    for ax in np.ravel(axes):
        handles, labels = ax.get_legend_handles_labels()
        for h, lab in zip(handles, labels):
            entries.setdefault(lab, h)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    ncol = min(len(entries), 4) or 1
    rows = math.ceil(len(entries) / ncol)
    legend = fig.legend(list(entries.values()), list(entries), loc="lower center", ncol=ncol, fontsize=fontsize,
                        frameon=False)
    _room_below(fig, below_in=0.1 + 0.22 * rows)
    return legend


def _room_below(fig, below_in: float):
    """Grow ``fig`` by ``below_in`` inches and lay it out with that room free at the bottom.

    ``tight_layout`` keeps the suptitle (if any) clear of the panel titles by itself.
    """
    w, h = fig.get_size_inches()
    fig.set_size_inches(w, h + below_in)
    fig.tight_layout(rect=(0, below_in / (h + below_in), 1, 1))


def add_error_key(fig):
    """Add the colour key of :func:`plot_examples` under its figure.

    White: correct (true positive), red: false positive, blue: missed nucleus (false
    negative), yellow: outline of the true nuclei. The figure grows by the key's height.

    Returns
    -------
    matplotlib Legend
    """
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=(1, 1, 1), edgecolor="0.5", label="correct (nucleus found)"),
               Patch(facecolor=(1, 0.2, 0.2), label="false positive"),
               Patch(facecolor=(0.2, 0.5, 1), label="missed (false negative)"),
               Patch(facecolor="none", edgecolor=(1, 1, 0), lw=2, label="outline of the true nuclei")]
    legend = fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)
    _room_below(fig, below_in=0.35)
    return legend
