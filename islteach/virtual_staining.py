"""The In Silico Labeling pretext task: predict fluorescence from label-free planes.

This module holds chapter 1's recipe in one place, so that chapter 1 trains with it
and chapters 3 and 4 can rebuild the same model when chapter 1's file is missing
(:func:`get_isl_model`).

The recipe (Bonte et al. {cite}`bonte2022`, after Christiansen et al.
{cite}`christiansen2018`): a U-Net (:func:`islteach.models.unet`) maps a few
label-free planes (phase contrast or bright field at several focal depths) to one
fluorescence channel, trained with the L1 loss and Adam on random crops. For the
ISL Finkbeiner field the bottom-right quadrant (:data:`islteach.data.ISL_TEST_REGION`)
is never trained on, and a small validation block (:data:`ISL_VAL_REGION`) is kept
out of training as well, to draw the validation curve without touching the test area.

Functions
---------
isl_arrays, sephace_arrays
    Normalised inputs and targets plus training / validation / test masks.
normalisation_stats, apply_normalisation, normalise_planes
    Per-channel percentile normalisation measured inside a mask (the training area).
train_virtual_staining
    The training recipe on any (inputs, target, masks) arrays
    (:func:`islteach.train.train_image_to_image` with a training mask).
train_isl_model, get_isl_model
    The chapter 1 model for the ISL field (train, or load what chapter 1 saved).
pixel_linear_baseline
    A per-pixel linear model on the same planes: what needs no spatial context.
region_pcc, tile_pccs, tile_fraction_above
    Pearson correlation over a region and per tile; the share of bright pixels per tile.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import data as _data
from .provenance import shown_path

__all__ = [
    "ISL_VAL_REGION", "SEPHACE_VAL_REGION", "ISL_TARGETS", "normalisation_stats", "apply_normalisation",
    "isl_arrays", "sephace_arrays", "bin_image", "train_virtual_staining", "train_isl_model", "get_isl_model",
    "isl_model_path", "ISL_RECIPE_KEYS", "pixel_linear_baseline", "region_pcc", "tile_pccs", "predict_region",
    "normalise_planes", "tile_fraction_above",
]

#: Validation block of the ISL field (above the test quadrant), excluded from training. Chosen
#: with nuclei in it (about 4 % of its pixels above half-bright DAPI; the block to its right has
#: almost none, which makes a correlation meaningless).
ISL_VAL_REGION = (slice(256, 512), slice(512, 768))
#: Validation block of SEPhACE field 1 (field 2 is the test field).
SEPHACE_VAL_REGION = (slice(768, 1024), slice(1088, 1344))
#: Fluorescence channels of the ISL field.
ISL_TARGETS = ("dapi", "map2", "nfh")
#: Percentiles mapped to 0 and 1 by the normalisation.
PMIN, PMAX = 1.0, 99.8


# --------------------------------------------------------------------------- arrays
def normalisation_stats(stack, mask=None, pmin: float = PMIN, pmax: float = PMAX) -> dict:
    """Per-channel percentiles of ``stack`` (C, H, W) inside ``mask`` (default: everywhere).

    Computing them on the training area only keeps the test area out of every
    fitted quantity, even the intensity scale.

    Returns
    -------
    dict
        ``{"pmin", "pmax", "lo": [C floats], "hi": [C floats]}`` (JSON-friendly).
    """
    stack = np.asarray(stack)
    if stack.ndim == 2:
        stack = stack[None]
    if stack.ndim != 3 or stack.dtype.kind not in "uif":
        raise ValueError(f"stack must be a real (C, H, W) or (H, W) array, got {stack.shape} {stack.dtype}")
    if mask is None:
        vals = stack.reshape(stack.shape[0], -1)
    else:
        mask = np.asarray(mask)
        if mask.shape != stack.shape[-2:] or mask.dtype != bool:
            raise ValueError(f"mask must be a bool array of shape {stack.shape[-2:]}, got {mask.shape} {mask.dtype}")
        vals = stack[:, mask]
    lo, hi = np.percentile(vals, [pmin, pmax], axis=1)
    return {"pmin": pmin, "pmax": pmax, "lo": [float(v) for v in lo], "hi": [float(v) for v in hi]}


def apply_normalisation(stack, stats: dict) -> np.ndarray:
    """Map ``stats['lo']`` / ``stats['hi']`` of each channel to 0 / 1 (float32, (C, H, W))."""
    stack = np.asarray(stack, dtype=np.float32)
    if stack.ndim == 2:
        stack = stack[None]
    lo = np.asarray(stats["lo"], np.float32)[:, None, None]
    hi = np.asarray(stats["hi"], np.float32)[:, None, None]
    if len(lo) != stack.shape[0]:
        raise ValueError(f"stats are for {len(lo)} channels, stack has {stack.shape[0]}")
    return ((stack - lo) / np.maximum(hi - lo, 1e-12)).astype(np.float32)


def normalise_planes(stack, mask=None, pmin: float = PMIN, pmax: float = PMAX) -> np.ndarray:
    """Map the ``pmin`` / ``pmax`` percentiles of each channel, measured inside ``mask``, to 0 / 1.

    :func:`normalisation_stats` followed by :func:`apply_normalisation`: what
    :func:`isl_arrays` does to the phase planes and the target (with ``mask`` = the training
    area). Values outside the percentile range are kept (not clipped).

    Parameters
    ----------
    stack : (C, H, W) or (H, W) array
    mask : (H, W) bool array, optional
        Pixels whose values set the percentiles (default: all).
    pmin, pmax : float
        Percentiles in [0, 100].

    Returns
    -------
    numpy.ndarray
        float32, (C, H, W).

    Examples
    --------
    >>> x = np.arange(100.0).reshape(1, 10, 10)
    >>> y = normalise_planes(x, pmin=0, pmax=100)
    >>> float(y.min()), float(y.max())
    (0.0, 1.0)
    """
    return apply_normalisation(stack, normalisation_stats(stack, mask, pmin=pmin, pmax=pmax))


def _check_planes(planes, n):
    if planes is None or isinstance(planes, (str, bytes)):
        raise TypeError(f"planes must be a list of plane indices, got {planes!r}")
    planes = [int(p) for p in planes]
    if not planes or any(p < 0 or p >= n for p in planes) or len(set(planes)) != len(planes):
        raise ValueError(f"planes must be distinct indices in [0, {n - 1}], got {planes}")
    return planes


def isl_arrays(planes, target: str = "dapi") -> dict:
    """The ISL Finkbeiner field as normalised network inputs and target, with its split.

    Parameters
    ----------
    planes : sequence of int
        Phase-contrast z-planes (0..12) that become the input channels.
    target : {"dapi", "map2", "nfh"}

    Returns
    -------
    dict
        ``x`` (C, 1024, 1024) and ``y`` (1, 1024, 1024) float32, normalised with
        percentiles of the training area; ``train``, ``val``, ``test`` (1024, 1024) bool
        masks (disjoint; ``test`` is :data:`islteach.data.ISL_TEST_REGION`);
        ``test_region``, ``val_region`` (slice pairs); ``normalisation`` (stats of
        inputs and target); ``planes``, ``target``.
    """
    if target not in ISL_TARGETS:
        raise ValueError(f"target must be one of {ISL_TARGETS}, got {target!r}")
    d = _data.load_isl_finkbeiner()
    planes = _check_planes(planes, d["phase"].shape[0])
    shape = d["dapi"].shape
    train, test = _data.spatial_split(shape, _data.ISL_TEST_REGION)
    val = _data.region_mask(shape, ISL_VAL_REGION)
    train &= ~val
    xs = normalisation_stats(d["phase"][planes], train)
    ys = normalisation_stats(d[target], train)
    return {
        "x": apply_normalisation(d["phase"][planes], xs),
        "y": apply_normalisation(d[target], ys),
        "train": train, "val": val, "test": test,
        "test_region": _data.ISL_TEST_REGION, "val_region": ISL_VAL_REGION,
        "normalisation": {"input": xs, "target": ys},
        "planes": planes, "target": target, "dataset": "isl-finkbeiner-b",
    }


def bin_image(image, factor: int) -> np.ndarray:
    """Mean over non-overlapping ``factor x factor`` blocks of the last two axes (pixel binning).

    Rows and columns that do not fill a whole block at the bottom and right edges are dropped.
    Boolean images are binned with *all*: a binned pixel is True only when its whole block is.

    Examples
    --------
    >>> bin_image(np.arange(16.0).reshape(4, 4), 2).tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    >>> bin_image(np.array([[True, True], [True, False]]), 2).tolist()
    [[False]]
    """
    a = np.asarray(image)
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"factor must be an int >= 1, got {factor!r}")
    if a.ndim < 2 or min(a.shape[-2:]) < factor:
        raise ValueError(f"image must be at least 2-D with both sides >= factor ({factor}), got shape {a.shape}")
    if factor == 1:
        return a
    h, w = (a.shape[-2] // factor) * factor, (a.shape[-1] // factor) * factor
    blocks = a[..., :h, :w].reshape(a.shape[:-2] + (h // factor, factor, w // factor, factor))
    if a.dtype == bool:
        return blocks.all(axis=(-3, -1))
    return blocks.mean(axis=(-3, -1), dtype=np.float64).astype(np.float32 if a.dtype != np.float64 else a.dtype)


def sephace_arrays(planes, binning: int = 1) -> dict:
    """SEPhACE bright-field planes -> DAPI: field 1 for training, field 2 for testing.

    Each field is normalised with its own percentiles (they come from different
    acquisitions); no statistic of field 2's DAPI is used for field 1.

    Parameters
    ----------
    planes : sequence of int
        Bright-field planes (0 to 5, sorted by focus) feeding the input channels.
    binning : int
        Bin the images ``binning x binning`` (:func:`bin_image`) before normalising them:
        SEPhACE's nuclei are about 80 pixels wide at full resolution, so a 2x2 binning keeps
        them 40 pixels wide and lets a training crop hold several of them. The validation
        region is binned with the images.

    Returns
    -------
    dict
        ``x_train`` (C, 1024 // binning, 1344 // binning), ``y_train`` (1, ...), ``x_test``,
        ``y_test``, ``train`` and ``val`` masks of field 1, ``val_region``, ``focus_um`` of the
        chosen planes, ``normalisation``, ``planes``, ``binning``.
    """
    f1, f2 = _data.load_sephace(1), _data.load_sephace(2)
    planes = _check_planes(planes, f1["brightfield"].shape[0])
    if isinstance(binning, bool) or not isinstance(binning, (int, np.integer)) or not 1 <= binning <= 8:
        raise ValueError(f"binning must be an int in [1, 8], got {binning!r}")
    x1, y1 = bin_image(f1["brightfield"][planes], binning), bin_image(f1["dapi"], binning)
    x2, y2 = bin_image(f2["brightfield"][planes], binning), bin_image(f2["dapi"], binning)
    val_region = tuple(slice(r.start // binning, r.stop // binning) for r in SEPHACE_VAL_REGION)
    val = _data.region_mask(y1.shape[-2:], val_region)
    train = ~val
    n1 = {"input": normalisation_stats(x1, train), "target": normalisation_stats(y1, train)}
    n2 = {"input": normalisation_stats(x2), "target": normalisation_stats(y2)}
    return {
        "x_train": apply_normalisation(x1, n1["input"]),
        "y_train": apply_normalisation(y1, n1["target"]),
        "x_test": apply_normalisation(x2, n2["input"]),
        "y_test": apply_normalisation(y2, n2["target"]),
        "train": train, "val": val, "val_region": val_region,
        "focus_um": f1["focus_um"][planes].tolist(),
        "normalisation": {"field1": n1, "field2": n2},
        "planes": planes, "binning": int(binning), "target": "dapi", "dataset": "sephace",
    }


# --------------------------------------------------------------------------- metrics
def region_pcc(pred, target, mask=None) -> float:
    """Pearson correlation of ``pred`` and ``target`` over the pixels in ``mask`` (all by default)."""
    from .metrics import pcc

    pred, target = np.squeeze(np.asarray(pred)), np.squeeze(np.asarray(target))
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {pred.shape} and {target.shape}")
    return pcc(pred, target, mask=mask)


def tile_pccs(pred, target, tile: int = 128) -> np.ndarray:
    """PCC of every non-overlapping ``tile x tile`` tile of a (H, W) region, as an (H//tile, W//tile) grid.

    Examples
    --------
    >>> t = np.random.default_rng(0).random((256, 256))
    >>> tile_pccs(t, 2 * t, tile=128).round(3).tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """
    from .metrics import pcc

    pred, target = np.squeeze(np.asarray(pred)), np.squeeze(np.asarray(target))
    if pred.shape != target.shape or pred.ndim != 2:
        raise ValueError(f"pred and target must be (H, W) arrays of one shape, got {pred.shape}, {target.shape}")
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or not 2 <= tile <= min(pred.shape):
        raise ValueError(f"tile must be an int in [2, {min(pred.shape)}], got {tile!r}")
    ny, nx = pred.shape[0] // tile, pred.shape[1] // tile
    out = np.empty((ny, nx))
    for i in range(ny):
        for j in range(nx):
            sl = (slice(i * tile, (i + 1) * tile), slice(j * tile, (j + 1) * tile))
            out[i, j] = pcc(pred[sl], target[sl])
    return out


def tile_fraction_above(image, threshold: float = 0.5, tile: int = 128) -> np.ndarray:
    """Share of the pixels above ``threshold`` in every ``tile x tile`` tile, on the grid of :func:`tile_pccs`.

    On a normalised DAPI image (0 to 1) with ``threshold=0.5`` it is the share of bright
    nucleus pixels per tile: tiles with none are mostly background.

    Examples
    --------
    >>> img = np.zeros((256, 256)); img[:128, :64] = 1.0
    >>> tile_fraction_above(img, 0.5, tile=128).tolist()
    [[0.5, 0.0], [0.0, 0.0]]
    """
    image = np.squeeze(np.asarray(image, dtype=np.float64))
    if image.ndim != 2:
        raise ValueError(f"image must be a (H, W) array, got shape {image.shape}")
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or not 2 <= tile <= min(image.shape):
        raise ValueError(f"tile must be an int in [2, {min(image.shape)}], got {tile!r}")
    ny, nx = image.shape[0] // tile, image.shape[1] // tile
    blocks = image[:ny * tile, :nx * tile].reshape(ny, tile, nx, tile)
    return (blocks > threshold).mean(axis=(1, 3))


def pixel_linear_baseline(x, y, train_mask, eval_x=None) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares per-pixel linear model ``y ~ w . x + b`` fitted on the training pixels.

    It sees exactly the planes the U-Net sees, one pixel at a time: what it cannot
    explain needs spatial context, which is what the U-Net adds.

    Parameters
    ----------
    x : (C, H, W) array
        Normalised inputs.
    y : (H, W) or (1, H, W) array
        Normalised target.
    train_mask : (H, W) bool
        Pixels used for the fit.
    eval_x : (C, H', W') array, optional
        Inputs to predict (default ``x``).

    Returns
    -------
    prediction : (H', W') float32
    coef : (C + 1,) float64
        Weights of the C planes, then the intercept.

    Examples
    --------
    >>> x = np.random.default_rng(0).random((2, 16, 16))
    >>> pred, coef = pixel_linear_baseline(x, 3 * x[0] - x[1] + 0.5, np.ones((16, 16), bool))
    >>> coef.round(6).tolist()
    [3.0, -1.0, 0.5]
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.squeeze(np.asarray(y, dtype=np.float64))
    if x.ndim != 3:
        raise ValueError(f"x must be (C, H, W), got shape {x.shape}")
    if y.shape != x.shape[1:]:
        raise ValueError(f"y must be (H, W) matching x, got {y.shape} for x {x.shape}")
    train_mask = np.asarray(train_mask)
    if train_mask.shape != y.shape or train_mask.dtype != bool:
        raise ValueError(f"train_mask must be a bool array of shape {y.shape}")
    a = np.concatenate([x[:, train_mask].T, np.ones((int(train_mask.sum()), 1))], axis=1)
    coef, *_ = np.linalg.lstsq(a, y[train_mask], rcond=None)
    ex = x if eval_x is None else np.asarray(eval_x, dtype=np.float64)
    pred = np.tensordot(coef[:-1], ex, axes=1) + coef[-1]
    return pred.astype(np.float32), coef


def predict_region(model, x, region=None, tile: int = 256, overlap: int = 32, tta: bool = False) -> np.ndarray:
    """Tiled prediction of ``x`` (C, H, W), or of ``x[:, region]`` only; returns (H', W') float32.

    Only the region's own input pixels are used, so nothing outside a held-out
    region influences its prediction. ``tta``: average over the eight orientations
    (:func:`islteach.train.predict_tiled`).
    """
    from .train import predict_tiled

    if region is not None:
        x = x[(slice(None),) + tuple(region)]
    return predict_tiled(model, x, tile=tile, overlap=overlap, tta=tta)[0]


# --------------------------------------------------------------------------- training
#: The arguments of chapter 1's recipe that :func:`train_isl_model` and :func:`get_isl_model` take
#: from the profile's ``ch1`` section (besides ``steps``, which depends on the target, and ``seed``).
ISL_RECIPE_KEYS = ("planes", "encoder_name", "encoder_weights", "crop_size", "batch_size", "lr", "n_crops",
                   "val_every", "checkpoint_every", "tile", "overlap")


def train_virtual_staining(x, y, train_mask, *, encoder_name, encoder_weights="imagenet", steps, crop_size,
                           batch_size, lr, n_crops=2000, val=None, val_every=50, seed=0,
                           checkpoint_dir=None, checkpoint_every=100, progress=True, device=None):
    """Chapter 1's training recipe on one field: :func:`islteach.train.train_image_to_image`.

    A U-Net, the L1 loss, Adam with a cosine schedule (20 warm-up steps at most), random
    crops inside ``train_mask`` with random flips and rotations.

    Parameters
    ----------
    x : (C, H, W) float32
        Normalised label-free planes.
    y : (1, H, W) float32
        Normalised fluorescence.
    train_mask : (H, W) bool
        Where training crops may lie (entirely).
    encoder_name, encoder_weights : str
        Passed to :func:`islteach.models.unet`.
    steps, crop_size, batch_size, lr, n_crops : int / float
        Optimisation steps, crop side, crops per step, learning rate, number of
        distinct crop positions drawn in the training area.
    val : (x_val, y_val) arrays, optional
        A validation block; its PCC is recorded every ``val_every`` steps.
    seed : int
        Seeds the initial weights too.
    checkpoint_dir : path-like, optional
        See :func:`islteach.train.fit` (resume after an interruption).

    Returns
    -------
    model : torch.nn.Module
    history : islteach.train.History
        ``history.val`` holds the validation PCC.
    """
    from .train import train_image_to_image

    return train_image_to_image(
        x, y, allowed=train_mask, encoder_name=encoder_name, encoder_weights=encoder_weights, steps=steps,
        crop_size=crop_size, batch_size=batch_size, lr=lr, n_crops=n_crops, val=val, val_every=val_every,
        warmup=20, seed=seed, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
        progress=progress, device=device)


def _profile_name(profile) -> str | None:
    if profile is not None and not isinstance(profile, str):
        raise ValueError(f"profile must be a profile name (str) or None, got {type(profile).__name__}")
    return profile


def isl_model_path(target: str = "dapi", profile: str | None = None) -> Path:
    """Where chapter 1 saves the ISL model for ``target``: ``results_dir(profile)/"models"/"isl_<target>.pt"``."""
    from .provenance import results_dir

    return results_dir(_profile_name(profile)) / "models" / f"isl_{target}.pt"


def train_isl_model(target: str = "dapi", *, planes, encoder_name: str, encoder_weights, steps: int,
                    crop_size: int, batch_size: int, lr: float, n_crops: int, val_every: int,
                    checkpoint_every: int, tile: int = 256, overlap: int = 32, seed: int = 0,
                    profile: str | None = None, progress: bool = True, save: bool = True,
                    checkpoint: bool = True, device=None):
    """Train chapter 1's ISL model for ``target`` with the given recipe, evaluate it, and save it.

    The chapters pass the recipe from their profile, e.g.
    ``train_isl_model("dapi", steps=P.ch1.steps, seed=P.seed, profile=P.name, **recipe)``
    with ``recipe = {k: P.ch1[k] for k in ISL_RECIPE_KEYS}``.

    Parameters
    ----------
    target : {"dapi", "map2", "nfh"}
    planes : sequence of int
        Phase planes used as input channels.
    encoder_name, encoder_weights, steps, crop_size, batch_size, lr, n_crops, val_every, checkpoint_every
        The training recipe (:func:`train_virtual_staining`).
    tile, overlap : int
        Tiled prediction of the test region (:func:`islteach.train.predict_tiled`).
    seed : int
    profile : str, optional
        Profile name: only chooses the results directory (:func:`isl_model_path`, checkpoints).
    progress, save, checkpoint : bool
        Progress bar; save the model to :func:`isl_model_path`; keep resumable
        checkpoints (:func:`islteach.train.checkpoint_dir_for`).
    device : optional

    Returns
    -------
    model : torch.nn.Module
    metadata : dict
        Everything :func:`islteach.models.save_model` stored (planes, normalisation,
        steps, test PCC, data hashes ...).
    history : islteach.train.History
    """
    from .models import save_model
    from .provenance import results_dir, sha256_file
    from .train import checkpoint_dir_for

    profile = _profile_name(profile)
    planes = list(planes)
    a = isl_arrays(planes, target)
    ckdir = None
    if checkpoint:
        tag = (f"isl_{target}_{encoder_name}_z{'-'.join(map(str, planes))}_s{steps}"
               f"_c{crop_size}_b{batch_size}_lr{lr:g}_seed{seed}")
        ckdir = checkpoint_dir_for(tag, profile=profile)
    t0 = time.perf_counter()
    vy, vx = a["val_region"]
    model, history = train_virtual_staining(
        a["x"], a["y"], a["train"], encoder_name=encoder_name, encoder_weights=encoder_weights,
        steps=steps, crop_size=crop_size, batch_size=batch_size, lr=lr, n_crops=n_crops,
        val=(a["x"][:, vy, vx], a["y"][:, vy, vx]), val_every=val_every, seed=seed,
        checkpoint_dir=ckdir, checkpoint_every=checkpoint_every, progress=progress, device=device)
    train_s = time.perf_counter() - t0
    pred = predict_region(model, a["x"], a["test_region"], tile=tile, overlap=overlap)
    test_pcc = region_pcc(pred, a["y"][(0,) + tuple(a["test_region"])])
    files = _data.fetch("isl-finkbeiner-b", progressbar=False)
    meta = {
        "task": "isl", "dataset": "isl-finkbeiner-b", "target": target, "planes": planes,
        "input": "phase contrast z-planes", "normalisation": a["normalisation"],
        "test_region": [[s.start, s.stop] for s in a["test_region"]],
        "val_region": [[s.start, s.stop] for s in a["val_region"]],
        "profile": results_dir(profile).name, "seed": seed, "steps": int(steps), "crop_size": crop_size,
        "batch_size": batch_size, "lr": lr, "loss": "l1", "init": model.islteach_init,
        "train_seconds": round(history.seconds, 1), "wall_seconds_this_call": round(train_s, 1),
        "pcc_test_region": test_pcc, "val_pcc_last": history.val[-1] if history.val else None,
        "data_sha256": {Path(f).name[-60:]: sha256_file(f) for f in files},
    }
    if save:
        path = save_model(model, isl_model_path(target, profile), **meta)
        print(f"Saved the ISL {target} model to {shown_path(path)}")
    return model, meta, history


def get_isl_model(target: str = "dapi", *, profile: str | None = None, min_steps: int | None = None,
                  device=None, steps: int | None = None, planes=None, encoder_name: str | None = None,
                  encoder_weights="imagenet", crop_size: int | None = None, batch_size: int | None = None,
                  lr: float | None = None, n_crops: int | None = None, val_every: int | None = None,
                  checkpoint_every: int | None = None, tile: int = 256, overlap: int = 32, seed: int = 0):
    """The chapter 1 ISL model for ``target``: load it, or retrain it with chapter 1's recipe.

    Parameters
    ----------
    target : {"dapi", "map2", "nfh"}
        ``"dapi"`` is the nucleus pretext; ``"map2"`` / ``"nfh"`` serve as control pretexts.
    profile : str, optional
        Profile name: where to look for the saved model (:func:`isl_model_path`).
    min_steps : int, optional
        Retrain when the saved model was trained for fewer steps (e.g. to give a
        control pretext the same training length as the DAPI one).
    device : optional
    steps, planes, encoder_name, encoder_weights, crop_size, batch_size, lr, n_crops, val_every, \
checkpoint_every, tile, overlap, seed
        Chapter 1's recipe (see :func:`train_isl_model`), used only when the model has to be
        retrained; the chapters pass ``steps=P.ch1.steps`` (or ``P.ch1.steps_map2``),
        ``seed=P.seed`` and ``{k: P.ch1[k] for k in ISL_RECIPE_KEYS}``. Training runs for
        ``max(steps, min_steps)`` steps.

    Returns
    -------
    model : torch.nn.Module (eval mode)
    metadata : dict
        As saved by :func:`train_isl_model` (``planes``, ``normalisation``, ``steps``,
        ``pcc_test_region``, ``init`` ...).
    """
    from .models import load_model

    if target not in ISL_TARGETS:
        raise ValueError(f"target must be one of {ISL_TARGETS}, got {target!r}")
    profile = _profile_name(profile)
    path = isl_model_path(target, profile)
    if path.exists():
        try:
            model, meta = load_model(path, device=device)
        except Exception as e:  # corrupt or incompatible file
            print(f"Could not load {shown_path(path)} ({type(e).__name__}: {e}); retraining.")
        else:
            if min_steps is None or int(meta.get("steps", 0)) >= int(min_steps):
                print(f"Loaded the chapter 1 ISL {target} model from {shown_path(path)} "
                      f"({meta.get('steps')} steps, {meta['config']['encoder_name']}, "
                      f"test-region PCC {meta.get('pcc_test_region', float('nan')):.3f}).")
                return model, meta
            print(f"The saved ISL {target} model has {meta.get('steps')} steps < min_steps={min_steps}; retraining.")
    else:
        print(f"No chapter 1 ISL {target} model at {shown_path(path)}: training it now with chapter 1's recipe "
              f"(profile {path.parent.parent.name}).")
    recipe = {"steps": steps, "planes": planes, "encoder_name": encoder_name, "crop_size": crop_size,
              "batch_size": batch_size, "lr": lr, "n_crops": n_crops, "val_every": val_every,
              "checkpoint_every": checkpoint_every}
    missing = [k for k, v in recipe.items() if v is None]
    if missing:
        raise ValueError(f"get_isl_model must retrain the {target} model and needs chapter 1's recipe: "
                         f"pass {missing} (e.g. from P.ch1)")
    if min_steps is not None:
        recipe["steps"] = max(int(steps), int(min_steps))
    model, meta, _ = train_isl_model(target, profile=profile, encoder_weights=encoder_weights, tile=tile,
                                     overlap=overlap, seed=seed, device=device, **recipe)
    model.eval()
    return model, meta
