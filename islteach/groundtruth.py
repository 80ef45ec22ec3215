"""Ground truth for nucleus segmentation: make instance labels, correct them, convert them.

Bonte et al. made their training labels by running Cellpose on the fluorescence channel and
correcting the result by hand; Zaki et al. did the same semi-automatically (preliminary labels
from a classical pipeline or a model, then corrected) and measured what such labels cost
{cite}`bonte2022,zaki2020,stringer2021`. This module holds the pieces of that workflow.

Make labels
    :func:`cellpose_labels` runs a Cellpose 3 model: a pretrained one (``"nuclei"``,
    ``"cyto3"``) or one you trained (a path). Pretrained weights are downloaded once into
    Cellpose's model folder; without internet :func:`ensure_pretrained` fails within seconds
    with a :class:`CellposeWeightsUnavailable` error that says how to go on offline.
    :func:`train_cellpose` trains a Cellpose network **from scratch** with Cellpose's own
    ``train.train_seg`` (no download needed) and returns the model file's path.
    :func:`classical_labels` is the no-deep-learning reference: smoothing, Otsu threshold,
    distance-transform watershed.

Correct labels
    :func:`delete_labels`, :func:`merge_labels`, :func:`split_label_by_line`,
    :func:`split_label_by_seeds`, :func:`relabel`; :func:`islteach.metrics.error_objects` lists the objects
    behind each error type (false positives / negatives, merges, splits) so you know what to fix.

Convert labels
    :func:`labels_to_mask` (semantic mask) and :func:`labels_to_distance` (the distance maps of
    chapter 4, from :mod:`islteach.postprocess`).

Measure labels (chapter 2's exercises)
    :func:`iou_matrix` (the IoU of every true/predicted pair of objects) and :func:`match_at`
    (TP, FP, FN and F1 at one IoU threshold, from :func:`islteach.metrics.matching`).

Share labels between chapters
    :func:`save_labels` / :func:`load_saved_labels` keep label images with the method that
    made them under ``results_dir()/"labels"``; :func:`isl_nuclei_labels` returns the ISL
    field's nucleus labels for chapters 3 and 4 (loading what chapter 2 saved, or remaking them
    with chapter 2's recipe, :func:`default_cellpose_model`).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import threading
import time
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from .provenance import get_device

__all__ = [
    "PRETRAINED_MODELS",
    "CellposeWeightsUnavailable",
    "cellpose_model_dir",
    "pretrained_available",
    "ensure_pretrained",
    "load_cellpose",
    "cellpose_labels",
    "train_cellpose",
    "cellpose_from_scratch",
    "cellpose_model_info",
    "describe_model",
    "classical_labels",
    "delete_labels",
    "merge_labels",
    "split_label_by_line",
    "split_label_by_seeds",
    "relabel",
    "labels_to_mask",
    "labels_to_distance",
    "iou_matrix",
    "match_at",
    "save_labels",
    "load_saved_labels",
    "default_cellpose_model",
    "isl_nuclei_labels",
]

#: Pretrained Cellpose 3 models this module knows, with the weight file each one needs.
PRETRAINED_MODELS = {"nuclei": "nucleitorch_0", "cyto3": "cyto3"}

#: Name of the chapter 2 results (used for the labels it saves).
CHAPTER = "02_cellpose_ground_truth"
ISL_LABELS = "isl_nuclei"
BBBC039_TEST_LABELS = "bbbc039_test_cellpose"
SCRATCH_MODEL = "cellpose_scratch_bbbc039"


class CellposeWeightsUnavailable(RuntimeError):
    """Pretrained Cellpose weights are neither on disk nor downloadable (e.g. no internet)."""


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------
def _check_image(image, name="image", ndim=(2,)):
    arr = np.asarray(image)
    if arr.dtype == bool or arr.dtype.kind not in "uif":
        raise TypeError(f"{name} must be a real-valued image array, got dtype {arr.dtype}")
    if arr.ndim not in ndim:
        want = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(f"{name} must be a {want} array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def _check_labels(labels, name="labels"):
    from .metrics import check_labels

    return check_labels(labels, name, ndims=(2,))


def _check_ids(labels, ids, name="ids"):
    if np.isscalar(ids):
        ids = [ids]
    ids = [int(i) for i in ids]
    present = set(np.unique(labels).tolist()) - {0}
    missing = [i for i in ids if i not in present]
    if any(i <= 0 for i in ids):
        raise ValueError(f"{name} must be positive object labels (0 is background), got {ids}")
    if missing:
        raise ValueError(f"{name} {missing} are not objects of the label image")
    return ids




@contextlib.contextmanager
def _quiet(verbose: bool):
    """Silence Cellpose's progress bars and warnings unless ``verbose``."""
    if verbose:
        yield
        return
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


# ---------------------------------------------------------------------------------------------
# pretrained weights: local cache first, then one short download attempt
# ---------------------------------------------------------------------------------------------
def cellpose_model_dir() -> Path:
    """Where Cellpose keeps its weights: ``$CELLPOSE_LOCAL_MODELS_PATH`` or ``~/.cellpose/models``."""
    env = os.environ.get("CELLPOSE_LOCAL_MODELS_PATH")
    return Path(env) if env else Path.home() / ".cellpose" / "models"


def _weight_file(model: str) -> Path:
    if model not in PRETRAINED_MODELS:
        raise ValueError(f"model must be one of {sorted(PRETRAINED_MODELS)} or a path, got {model!r}")
    return cellpose_model_dir() / PRETRAINED_MODELS[model]


def pretrained_available(model: str = "nuclei") -> bool:
    """True when the weights of pretrained ``model`` are already on disk (no network access)."""
    f = _weight_file(model)
    return f.is_file() and f.stat().st_size > 0


def _offline_message(model: str, reason: str) -> str:
    return (
        f"Pretrained Cellpose weights {model!r} are not available: {reason}. "
        f"They are looked for in {cellpose_model_dir()} (set CELLPOSE_LOCAL_MODELS_PATH to use another "
        f"folder) and downloaded from the Cellpose server when there is internet. To go on offline: "
        f"train a Cellpose network from scratch on annotated images with "
        f"islteach.groundtruth.train_cellpose(images, labels) and pass the returned path as model=, "
        f"or use the classical pipeline islteach.groundtruth.classical_labels(image); or copy the "
        f"file {PRETRAINED_MODELS[model]!r} into that folder from a machine with internet."
    )


def ensure_pretrained(model: str = "nuclei", timeout: float = 10.0) -> Path:
    """Return the local weight file of pretrained ``model``, downloading it if needed.

    The local cache is checked first. Otherwise one download is tried, with ``timeout``
    seconds for name resolution and connection (and per read), so a machine without
    internet fails in seconds instead of hanging.

    Parameters
    ----------
    model : {"nuclei", "cyto3"}
    timeout : float
        Seconds allowed for connecting (and for each read) before giving up.

    Returns
    -------
    pathlib.Path
        The weight file.

    Raises
    ------
    CellposeWeightsUnavailable
        When the weights are not on disk and cannot be downloaded; the message says how to
        proceed offline (:func:`train_cellpose` or :func:`classical_labels`).
    """
    target = _weight_file(model)
    if pretrained_available(model):
        return target
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
    from cellpose import models as cp_models

    url = f"{cp_models._MODEL_URL}/{PRETRAINED_MODELS[model]}"
    host = urllib.parse.urlparse(url).hostname
    # name resolution ignores socket timeouts: run it in a thread we can stop waiting for
    result = {}

    def resolve():
        try:
            socket.getaddrinfo(host, 443)
            result["ok"] = True
        except OSError as e:  # gaierror is an OSError
            result["error"] = e

    t = threading.Thread(target=resolve, daemon=True)
    t.start()
    t.join(timeout)
    if not result.get("ok"):
        reason = f"cannot resolve {host} ({result.get('error', f'no answer within {timeout:g} s')})"
        raise CellposeWeightsUnavailable(_offline_message(model, reason))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        from .provenance import atomic_path

        with urllib.request.urlopen(url, timeout=timeout) as r, atomic_path(target) as tmp:
            with open(tmp, "wb") as f:
                while True:
                    block = r.read(1 << 20)
                    if not block:
                        break
                    f.write(block)
    except (OSError, ValueError) as e:  # URLError, HTTPError, timeouts are OSErrors
        raise CellposeWeightsUnavailable(_offline_message(model, f"download of {url} failed ({e})")) from None
    return target


# ---------------------------------------------------------------------------------------------
# running Cellpose
# ---------------------------------------------------------------------------------------------
_MODEL_CACHE: dict = {}


def load_cellpose(model="nuclei", device=None, timeout: float = 10.0):
    """A ``cellpose.models.CellposeModel`` for a pretrained name or a trained model's path.

    Parameters
    ----------
    model : {"nuclei", "cyto3"} or path-like or CellposeModel
        Pretrained model name, the path returned by :func:`train_cellpose` (or any Cellpose 3
        model file), or an already loaded model (returned as is).
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.
    timeout : float
        Seconds for the download attempt of pretrained weights (see :func:`ensure_pretrained`).

    Returns
    -------
    cellpose.models.CellposeModel
    """
    from cellpose import models as cp_models

    if isinstance(model, cp_models.CellposeModel):
        return model
    dev = get_device(device)
    if isinstance(model, str) and model in PRETRAINED_MODELS:
        ensure_pretrained(model, timeout=timeout)
        key = (model, str(dev))
        kwargs = {"model_type": model}
    elif isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(
                f"model must be one of {sorted(PRETRAINED_MODELS)} or the path of a Cellpose model file; "
                f"{str(path)!r} does not exist"
            )
        key = (str(path.resolve()), path.stat().st_mtime_ns, str(dev))
        kwargs = {"pretrained_model": str(path)}
    else:
        raise TypeError(f"model must be a model name, a path or a CellposeModel, got {type(model).__name__}")
    if key not in _MODEL_CACHE:
        with _quiet(False):
            _MODEL_CACHE[key] = cp_models.CellposeModel(gpu=dev.type == "cuda", device=dev, **kwargs)
    return _MODEL_CACHE[key]


def cellpose_labels(image, model="nuclei", diameter=None, *, flow_threshold: float = 0.4,
                    cellprob_threshold: float = 0.0, min_size: int = 15, resample: bool = True,
                    percentile=(1.0, 99.0), batch_size: int = 8, device=None, timeout: float = 10.0,
                    verbose: bool = False):
    """Nucleus (or cell) instance labels of a grayscale fluorescence image with Cellpose 3.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (N, H, W)
        One image or a stack of images (each normalised by Cellpose to its 1st-99th percentile).
    model : {"nuclei", "cyto3"} or path-like or CellposeModel
        A pretrained model (weights downloaded once; without internet this raises
        :class:`CellposeWeightsUnavailable` within seconds) or a model from :func:`train_cellpose`.
    diameter : float, optional
        Typical object diameter in pixels; the image is rescaled so objects get the model's
        training size. Default: the model's own (17 for ``nuclei``, the mean diameter of the
        training labels for a trained model).
    flow_threshold, cellprob_threshold, min_size, resample, batch_size
        Passed to ``CellposeModel.eval``. ``resample=False`` runs the mask dynamics at the
        rescaled size (faster, coarser borders).
    percentile : (low, high)
        Intensity percentiles mapped to 0 and 1 before the network (Cellpose's default is
        (1, 99)). Raise ``high`` (e.g. 99.8) for sparse fields where nuclei cover less than a
        few percent of the image, so that they are not all pushed above 1.
    device : str or torch.device, optional
        Default: CUDA when available.
    timeout : float
        Seconds for the weight download attempt.
    verbose : bool
        Show Cellpose's own progress output.

    Returns
    -------
    ndarray of int32
        Labels with the shape of ``image`` (0 = background, 1..n per image).

    Examples
    --------
    >>> path = train_cellpose(images, labels, n_epochs=20)  # doctest: +SKIP
    >>> lab = cellpose_labels(image, model=path)  # doctest: +SKIP
    """
    arr = _check_image(image, ndim=(2, 3))
    if diameter is not None and not (np.isscalar(diameter) and float(diameter) > 0):
        raise ValueError(f"diameter must be a positive number of pixels or None, got {diameter!r}")
    lo, hi = (float(v) for v in percentile)
    if not 0 <= lo < hi <= 100:
        raise ValueError(f"percentile must be (low, high) with 0 <= low < high <= 100, got {percentile!r}")
    net = load_cellpose(model, device=device, timeout=timeout)
    stack = arr[None] if arr.ndim == 2 else arr
    out = np.zeros(stack.shape, np.int32)
    with _quiet(verbose):
        for i, im in enumerate(stack):
            masks = net.eval(
                np.asarray(im, np.float32), channels=[0, 0], diameter=diameter,
                flow_threshold=flow_threshold, cellprob_threshold=cellprob_threshold,
                min_size=min_size, resample=resample, batch_size=batch_size,
                normalize={"normalize": True, "percentile": [lo, hi]},
            )[0]
            out[i] = masks
    return out[0] if arr.ndim == 2 else out


# ---------------------------------------------------------------------------------------------
# training Cellpose from scratch
# ---------------------------------------------------------------------------------------------
def cellpose_from_scratch(images, labels, *, device, diam_mean, n_epochs, nimg_per_epoch, batch_size,
                          crop_size, lr, weight_decay, save_dir, min_train_masks, model_name, verbose=False):
    """The core of :func:`train_cellpose`: a randomly initialised Cellpose network and Cellpose's ``train_seg``.

    No checks and no seeding (:func:`train_cellpose` does both); ``images`` are float32
    (H, W) arrays and ``labels`` instance labels of the same shapes.

    Returns
    -------
    net : cellpose.models.CellposeModel
    path : str
        The saved model file.
    train_losses : array
        Training loss per epoch.
    """
    from cellpose import models as cp_models
    from cellpose import train as cp_train

    with _quiet(verbose):
        net = cp_models.CellposeModel(gpu=device.type == "cuda", device=device, pretrained_model=False,
                                      model_type=None, diam_mean=float(diam_mean), nchan=2)
        path, train_losses, _ = cp_train.train_seg(
            net.net, train_data=images, train_labels=[np.asarray(y, np.int32) for y in labels],
            channels=[0, 0], normalize=True, n_epochs=int(n_epochs), nimg_per_epoch=nimg_per_epoch,
            batch_size=int(batch_size), bsize=int(crop_size), learning_rate=float(lr),
            weight_decay=float(weight_decay), save_path=str(save_dir), save_every=10**9,
            min_train_masks=int(min_train_masks), model_name=model_name,
        )
    return net, path, train_losses


def train_cellpose(images, labels, *, n_epochs: int = 100, nimg_per_epoch: int | None = None,
                   batch_size: int = 8, crop_size: int = 224, diam_mean: float = 17.0,
                   lr: float = 0.005, weight_decay: float = 1e-5, save_dir=None,
                   model_name: str = "cellpose_scratch", seed: int = 0, device=None,
                   min_train_masks: int = 1, verbose: bool = False) -> Path:
    """Train a Cellpose network from scratch (random weights) with Cellpose's ``train_seg``.

    Nothing is downloaded: the network starts from random weights, so this works offline.
    Cellpose's own recipe is used (flows computed from the labels, random rotation / scaling /
    flips of ``crop_size`` crops, AdamW with a 10-epoch warm-up).

    Parameters
    ----------
    images : sequence of 2-D arrays or ndarray (N, H, W)
        Grayscale fluorescence images.
    labels : sequence of 2-D int arrays or ndarray (N, H, W)
        Instance labels of the images (0 = background).
    n_epochs : int
        Epochs of ``train_seg``; one epoch shows ``nimg_per_epoch`` crops. Above 100 epochs
        Cellpose halves the learning rate in the last 50.
    nimg_per_epoch : int, optional
        Crops per epoch (default: the number of images).
    batch_size, crop_size : int
        Crops per optimisation step and crop side in pixels (a multiple of 16; Cellpose's
        ``bsize``).
    diam_mean : float
        The object diameter (pixels) the network sees: images are rescaled so that the mean
        label diameter becomes ``diam_mean``. Smaller values mean smaller images and faster
        training and inference, with coarser borders. The pretrained ``nuclei`` model uses 17.
    lr, weight_decay : float
        AdamW settings (``lr`` is Cellpose's ``learning_rate``).
    save_dir : path-like, optional
        The model is written to ``save_dir/"models"/model_name``. Default:
        :func:`islteach.provenance.results_dir`.
    model_name : str
    seed : int
        Seeds the weight initialisation (Cellpose seeds its crops per epoch).
    device : str or torch.device, optional
        Default: CUDA when available.
    min_train_masks : int
        Images with fewer objects are skipped by Cellpose.
    verbose : bool
        Show Cellpose's own log and progress output.

    Returns
    -------
    pathlib.Path
        The model file, usable as ``cellpose_labels(image, model=path)``. A JSON file next to
        it (``path + ".json"``, read with :func:`cellpose_model_info`) records the training
        settings (under Cellpose's names: ``bsize`` for ``crop_size``, ``learning_rate`` for
        ``lr``), the loss per epoch and the training time.
    """
    import torch

    imgs = [np.asarray(_check_image(x, "images[i]"), np.float32) for x in images]
    labs = [_check_labels(y, "labels[i]") for y in labels]
    if len(imgs) == 0:
        raise ValueError("images must hold at least one image")
    if len(imgs) != len(labs):
        raise ValueError(f"images and labels must have the same length, got {len(imgs)} and {len(labs)}")
    for i, (x, y) in enumerate(zip(imgs, labs)):
        if x.shape != y.shape:
            raise ValueError(f"images[{i}] and labels[{i}] must have the same shape, got {x.shape} and {y.shape}")
    for name, v in (("n_epochs", n_epochs), ("batch_size", batch_size), ("crop_size", crop_size)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if crop_size % 16:
        raise ValueError(f"crop_size must be a multiple of 16, got {crop_size}")
    if not diam_mean > 0:
        raise ValueError(f"diam_mean must be > 0 pixels, got {diam_mean!r}")
    n_objects = [int(len(np.unique(y)) - (1 if (y == 0).any() else 0)) for y in labs]
    if max(n_objects) < min_train_masks:
        raise ValueError(f"labels need at least min_train_masks={min_train_masks} objects in some image")

    from .provenance import results_dir

    save_dir = Path(save_dir) if save_dir is not None else results_dir()
    save_dir.mkdir(parents=True, exist_ok=True)
    dev = get_device(device)
    torch.manual_seed(int(seed))
    np.random.seed(int(seed))
    t0 = time.perf_counter()
    net, path, train_losses = cellpose_from_scratch(
        imgs, labs, device=dev, diam_mean=diam_mean, n_epochs=n_epochs, nimg_per_epoch=nimg_per_epoch,
        batch_size=batch_size, crop_size=crop_size, lr=lr, weight_decay=weight_decay, save_dir=save_dir,
        min_train_masks=min_train_masks, model_name=model_name, verbose=verbose)
    elapsed = time.perf_counter() - t0
    path = Path(path)
    info = {
        "init": "random (trained from scratch, no pretrained weights)",
        "trained_with": "cellpose.train.train_seg",
        "n_images": len(imgs),
        "n_objects": int(sum(n_objects)),
        "n_epochs": int(n_epochs),
        "nimg_per_epoch": int(nimg_per_epoch or len(imgs)),
        "batch_size": int(batch_size),
        "bsize": int(crop_size),
        "diam_mean": float(diam_mean),
        "diam_labels": float(net.net.diam_labels.item()),
        "learning_rate": float(lr),
        "weight_decay": float(weight_decay),
        "seed": int(seed),
        "device": str(dev),
        "train_seconds": round(elapsed, 1),
        "train_losses": [float(v) for v in train_losses],
    }
    Path(str(path) + ".json").write_text(json.dumps(info, indent=1))
    return path


def cellpose_model_info(path) -> dict:
    """The training record :func:`train_cellpose` wrote next to a model (``{}`` when none)."""
    f = Path(str(path) + ".json")
    return json.loads(f.read_text()) if f.is_file() else {}


def describe_model(model) -> str:
    """A short human-readable name of a Cellpose model, for figure titles and results files.

    Examples
    --------
    >>> describe_model("nuclei")
    "Cellpose 'nuclei' (pretrained)"
    """
    if isinstance(model, str) and model in PRETRAINED_MODELS:
        return f"Cellpose {model!r} (pretrained)"
    info = cellpose_model_info(model) if isinstance(model, (str, os.PathLike)) else {}
    if info:
        return (f"Cellpose from scratch ({info['n_images']} images, {info['n_epochs']} epochs "
                f"x {info['nimg_per_epoch']} crops)")
    return f"Cellpose model {Path(str(model)).name}"


# ---------------------------------------------------------------------------------------------
# classical pipeline
# ---------------------------------------------------------------------------------------------
def classical_labels(image, *, sigma: float = 1.0, threshold=None, h: float = 1.0,
                     min_size: int = 30, distance_sigma: float = 1.0) -> np.ndarray:
    """Nucleus labels without deep learning: smoothing, Otsu threshold, distance watershed.

    1. percentile-normalise the image and smooth it with a Gaussian (``sigma``);
    2. threshold it (Otsu's threshold unless ``threshold`` is given), fill holes, drop
       objects smaller than ``min_size`` pixels;
    3. distance transform of the foreground, smoothed (``distance_sigma``); its h-maxima
       (maxima at least ``h`` pixels above their surroundings) are the seeds, one per nucleus;
    4. watershed of the negated distance from the seeds inside the foreground, so touching
       nuclei are cut at their neck.

    Parameters
    ----------
    image : ndarray (H, W)
        Grayscale fluorescence image (bright nuclei on a dark background).
    sigma : float
        Gaussian smoothing in pixels before thresholding (0: none).
    threshold : float, optional
        Threshold on the normalised, smoothed image (about 0..1); default Otsu's.
    h : float
        Seed height in pixels of distance: larger values merge more, smaller split more.
    min_size : int
        Smallest object kept, in pixels.
    distance_sigma : float
        Smoothing of the distance map before seeds are taken.

    Returns
    -------
    ndarray of int32
        Instance labels 1..n (0 = background).

    Examples
    --------
    >>> from islteach.synth import make_field
    >>> f = make_field(128, seed=0)
    >>> lab = classical_labels(f["dapi"])
    >>> int(lab.max()) > 0
    True
    """
    from skimage import filters, morphology, segmentation

    from .data import normalize_percentile

    img = _check_image(image)
    if sigma < 0 or distance_sigma < 0 or h < 0:
        raise ValueError(f"sigma, distance_sigma and h must be >= 0, got {sigma}, {distance_sigma}, {h}")
    x = normalize_percentile(img, 1.0, 99.8, clip=True)
    if sigma > 0:
        x = ndi.gaussian_filter(x, sigma)
    if threshold is None:
        if float(x.max()) == float(x.min()):
            return np.zeros(img.shape, np.int32)
        threshold = filters.threshold_otsu(x)
    fg = ndi.binary_fill_holes(x > threshold)
    fg = _remove_small(fg, min_size)
    if not fg.any():
        return np.zeros(img.shape, np.int32)
    dist = ndi.distance_transform_edt(fg)
    if distance_sigma > 0:
        dist = ndi.gaussian_filter(dist, distance_sigma)
    seeds = morphology.h_maxima(dist, h) if h > 0 else morphology.local_maxima(dist)
    markers, _ = ndi.label(seeds & fg)
    lab = segmentation.watershed(-dist, markers, mask=fg)
    return relabel(lab, min_size=min_size)


def _remove_small(mask, min_size):
    lab, n = ndi.label(mask)
    if n == 0 or min_size <= 1:
        return mask
    sizes = np.bincount(lab.ravel())
    keep = sizes >= min_size
    keep[0] = False
    return keep[lab]


# ---------------------------------------------------------------------------------------------
# correction tools
# ---------------------------------------------------------------------------------------------
def relabel(labels, *, min_size: int = 0, split_disconnected: bool = False) -> np.ndarray:
    """Consecutive labels 1..n, optionally dropping small objects and separating pieces.

    Parameters
    ----------
    labels : ndarray of int (H, W)
    min_size : int
        Objects (or pieces) with fewer pixels are set to background.
    split_disconnected : bool
        Give each 8-connected piece of an object its own label.

    Returns
    -------
    ndarray of int32
        Labels numbered 1..n, keeping the order of the old label values.

    Examples
    --------
    >>> relabel(np.array([[0, 7, 7, 0, 3]])).tolist()
    [[0, 2, 2, 0, 1]]
    """
    lab = _check_labels(labels).astype(np.int64)
    if lab.size == 0:
        return lab.astype(np.int32)
    if split_disconnected and lab.max() > 0:
        out = np.zeros_like(lab)
        nxt = 0
        for i, sl in enumerate(ndi.find_objects(lab), start=1):
            if sl is None:
                continue
            comp, n = ndi.label(lab[sl] == i, structure=np.ones((3, 3)))
            sel = comp > 0
            out[sl][sel] = comp[sel] + nxt
            nxt += n
        lab = out
    if min_size > 0 and lab.max() > 0:
        sizes = np.bincount(lab.ravel())
        small = sizes < min_size
        small[0] = False
        lab[small[lab]] = 0
    values = np.unique(lab)
    values = values[values > 0]
    lut = np.zeros(int(lab.max()) + 1, np.int32)
    lut[values] = np.arange(1, len(values) + 1, dtype=np.int32)
    return lut[lab]


def delete_labels(labels, ids) -> np.ndarray:
    """Remove objects (set them to background), e.g. false detections.

    Parameters
    ----------
    labels : ndarray of int (H, W)
    ids : int or sequence of int
        Labels of the objects to delete.

    Returns
    -------
    ndarray
        A copy without those objects (other labels unchanged; call :func:`relabel` to renumber).

    Examples
    --------
    >>> delete_labels(np.array([[1, 1, 0, 2]]), 2).tolist()
    [[1, 1, 0, 0]]
    """
    lab = _check_labels(labels)
    ids = _check_ids(lab, ids)
    out = lab.copy()
    out[np.isin(out, ids)] = 0
    return out


def merge_labels(labels, ids, *, fill_gap: int = 0) -> np.ndarray:
    """Merge objects into one (the smallest of their labels), e.g. a nucleus cut in two.

    Parameters
    ----------
    labels : ndarray of int (H, W)
    ids : sequence of int
        At least two object labels.
    fill_gap : int
        When > 0, background pixels in the closing (disk of this radius) of the merged object
        are added to it, so a thin background gap between the parts disappears.

    Returns
    -------
    ndarray
        A copy with the objects merged.

    Examples
    --------
    >>> merge_labels(np.array([[1, 1, 2, 2, 3]]), [2, 1]).tolist()
    [[1, 1, 1, 1, 3]]
    """
    lab = _check_labels(labels)
    ids = _check_ids(lab, ids)
    if len(set(ids)) < 2:
        raise ValueError(f"ids must name at least two different objects, got {ids}")
    out = lab.copy()
    target = min(ids)
    sel = np.isin(out, ids)
    out[sel] = target
    if fill_gap > 0:
        from skimage.morphology import disk

        closed = ndi.binary_closing(sel, structure=disk(int(fill_gap)), border_value=0)
        out[closed & (out == 0)] = target
    return out


def _split_mask(lab, label_id, pieces_mask_labels):
    """Write the pieces (labels 1..k within the object) into ``lab``; piece 1 keeps label_id."""
    out = lab.copy()
    k = int(pieces_mask_labels.max())
    nxt = int(lab.max()) + 1
    for p in range(2, k + 1):
        out[pieces_mask_labels == p] = nxt
        nxt += 1
    return out


def split_label_by_seeds(labels, label_id: int, seeds) -> np.ndarray:
    """Split one object into as many pieces as seeds (each pixel to its nearest seed inside the object).

    Parameters
    ----------
    labels : ndarray of int (H, W)
    label_id : int
        The object to split, e.g. two touching nuclei merged by the segmentation.
    seeds : sequence of (row, col)
        At least two points inside the object, one per nucleus it should become.

    Returns
    -------
    ndarray
        A copy in which the piece of the first seed keeps ``label_id`` and the others get new
        labels ``labels.max() + 1, ...``.

    Examples
    --------
    >>> lab = np.zeros((5, 12), int); lab[1:4, 1:11] = 1
    >>> out = split_label_by_seeds(lab, 1, [(2, 2), (2, 9)])
    >>> sorted(np.unique(out).tolist())
    [0, 1, 2]
    """
    from skimage.segmentation import watershed

    lab = _check_labels(labels)
    (label_id,) = _check_ids(lab, [label_id], "label_id")
    pts = np.asarray(seeds, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 2:
        raise ValueError(f"seeds must be at least two (row, col) points, got {np.asarray(seeds).tolist()}")
    obj = lab == label_id
    markers = np.zeros(lab.shape, np.int32)
    for k, (r, c) in enumerate(np.round(pts).astype(int), start=1):
        if not (0 <= r < lab.shape[0] and 0 <= c < lab.shape[1]) or not obj[r, c]:
            raise ValueError(f"seed {(int(r), int(c))} is not inside object {label_id}")
        if markers[r, c]:
            raise ValueError(f"two seeds fall on the same pixel {(int(r), int(c))}")
        markers[r, c] = k
    # flood from the seeds at equal speed inside the object: every pixel goes to the seed nearest
    # to it along paths inside the object (a watershed of the distance transform would let the
    # seed at the object's deepest point swallow the other one when there is no neck)
    pieces = watershed(np.zeros(lab.shape, np.float32), markers, mask=obj)
    return _split_mask(lab, label_id, pieces)


def split_label_by_line(labels, label_id: int, start, end, *, width: int = 1) -> np.ndarray:
    """Cut one object in two (or more) along a straight line, like a knife tool.

    The line from ``start`` to ``end`` (drawn ``width`` pixels thick) is removed from the
    object, the remaining pieces become separate objects, and the line's own pixels are then
    given back to the nearest piece, so no area is lost.

    Parameters
    ----------
    labels : ndarray of int (H, W)
    label_id : int
    start, end : (row, col)
        End points of the cut; put them outside the object so the line crosses it completely.
    width : int
        Line thickness in pixels used to cut (1 is enough for 4-connected pieces; use 2 for a
        diagonal cut to separate 8-connected pieces).

    Returns
    -------
    ndarray
        A copy; the largest piece keeps ``label_id``, the others get new labels.

    Raises
    ------
    ValueError
        If the line does not cut the object into at least two pieces.

    Examples
    --------
    >>> lab = np.zeros((5, 12), int); lab[1:4, 1:11] = 1
    >>> out = split_label_by_line(lab, 1, (0, 6), (4, 6))
    >>> np.unique(out[1:4, 1:6]).tolist(), np.unique(out[1:4, 7:11]).tolist()
    ([1], [2])
    """
    from skimage.draw import line

    lab = _check_labels(labels)
    (label_id,) = _check_ids(lab, [label_id], "label_id")
    if not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    (r0, c0), (r1, c1) = (np.round(np.asarray(p, float)).astype(int) for p in (start, end))
    rr, cc = line(r0, c0, r1, c1)
    cut = np.zeros(lab.shape, bool)
    inside = (rr >= 0) & (rr < lab.shape[0]) & (cc >= 0) & (cc < lab.shape[1])
    cut[rr[inside], cc[inside]] = True
    if width > 1:
        cut = ndi.binary_dilation(cut, iterations=width - 1)
    obj = lab == label_id
    pieces, n = ndi.label(obj & ~cut)  # 4-connectivity: a 1-pixel diagonal line separates
    if n < 2:
        raise ValueError(
            f"the line from {tuple(start)} to {tuple(end)} does not cut object {label_id} in two; "
            "put its end points outside the object (or increase width)"
        )
    # largest piece first, so it keeps the label
    sizes = np.bincount(pieces.ravel())[1:]
    order = np.argsort(-sizes, kind="stable") + 1
    lut = np.zeros(n + 1, np.int32)
    lut[order] = np.arange(1, n + 1)
    pieces = lut[pieces]
    # give the cut pixels of the object back to the nearest piece
    on_line = obj & (pieces == 0)
    if on_line.any():
        _, (ir, ic) = ndi.distance_transform_edt(pieces == 0, return_indices=True)
        pieces[on_line] = pieces[ir[on_line], ic[on_line]]
    return _split_mask(lab, label_id, pieces)


# ---------------------------------------------------------------------------------------------
# conversions
# ---------------------------------------------------------------------------------------------
def labels_to_mask(labels, *, separate: bool = False) -> np.ndarray:
    """Semantic (foreground) mask of instance labels.

    Parameters
    ----------
    labels : ndarray of int (H, W)
    separate : bool
        Also set to background the pixels where two different objects touch, so that touching
        nuclei stay apart in the mask.

    Returns
    -------
    ndarray of bool

    Examples
    --------
    >>> labels_to_mask(np.array([[0, 1, 2, 0]])).tolist()
    [[False, True, True, False]]
    """
    lab = _check_labels(labels)
    mask = lab > 0
    if separate:
        from skimage.segmentation import find_boundaries

        mask &= ~(find_boundaries(lab, mode="inner", background=0) & _touching(lab))
    return mask


def _touching(lab):
    """Pixels of an object that have a neighbour belonging to another object."""
    out = np.zeros(lab.shape, bool)
    for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)):
        sh = np.zeros_like(lab)
        src = lab[max(dr, 0):lab.shape[0] + min(dr, 0), max(dc, 0):lab.shape[1] + min(dc, 0)]
        sh[max(-dr, 0):lab.shape[0] + min(-dr, 0), max(-dc, 0):lab.shape[1] + min(-dc, 0)] = src
        out |= (lab > 0) & (sh > 0) & (sh != lab)
    return out


def labels_to_distance(labels, mode: str = "bonte") -> np.ndarray:
    """Distance map of instance labels, as chapter 4's networks learn it.

    Uses :func:`islteach.postprocess.distance_map` (``mode="bonte"``: distance to the object's
    border in pixels; ``"normalized"``: 0 at the border, 1 at each object's centre, Zaki et al.).

    Returns
    -------
    ndarray of float32
    """
    from .postprocess import distance_map

    return distance_map(_check_labels(labels), mode=mode)


# ---------------------------------------------------------------------------------------------
# measuring labels: the two steps chapter 2's exercises ask for
# ---------------------------------------------------------------------------------------------
def iou_matrix(y_true, y_pred) -> np.ndarray:
    """Intersection over union of every (true object, predicted object) pair.

    Parameters
    ----------
    y_true, y_pred : ndarray of int (H, W)
        Instance labels of the same shape (0 = background; labels need not be consecutive).

    Returns
    -------
    ndarray of float64, shape (y_true.max(), y_pred.max())
        Entry ``[i - 1, j - 1]`` is the IoU of true object ``i`` and predicted object ``j``
        (rows: true objects, columns: predicted ones; background left out). A label value that
        does not occur gives a row or column of zeros.

    Examples
    --------
    >>> t = np.array([[1, 1, 0, 2, 2]]); p = np.array([[3, 3, 3, 0, 0]])
    >>> iou_matrix(t, p).round(3).tolist()
    [[0.0, 0.0, 0.667], [0.0, 0.0, 0.0]]
    """
    yt = _check_labels(y_true, "y_true")
    yp = _check_labels(y_pred, "y_pred")
    if yt.shape != yp.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {yt.shape} and {yp.shape}")
    nt = int(yt.max()) if yt.size else 0
    npr = int(yp.max()) if yp.size else 0
    # the overlap (contingency) table: pixels shared by true label i and predicted label j
    inter = np.bincount(yt.ravel().astype(np.int64) * (npr + 1) + yp.ravel().astype(np.int64),
                        minlength=(nt + 1) * (npr + 1)).reshape(nt + 1, npr + 1)
    area_t = inter.sum(axis=1)[1:, None]
    area_p = inter.sum(axis=0)[None, 1:]
    inter = inter[1:, 1:]
    union = area_t + area_p - inter
    return np.divide(inter, union, out=np.zeros(inter.shape), where=union > 0)


def match_at(y_true, y_pred, threshold: float = 0.5) -> dict:
    """True positives, false positives, false negatives and F1 at one IoU threshold.

    A predicted and a true object match when their IoU is at least ``threshold``; each object
    is matched at most once, and the matching has as many pairs as possible. This is
    :func:`islteach.metrics.matching` at one threshold.

    Parameters
    ----------
    y_true, y_pred : ndarray of int (H, W)
        Instance labels of the same shape.
    threshold : float
        IoU threshold in (0, 1].

    Returns
    -------
    dict
        ``tp``, ``fp``, ``fn`` (int) and ``f1`` = 2 TP / (2 TP + FP + FN) (float; 1 when both
        images are empty).

    Examples
    --------
    >>> t = np.zeros((10, 20), int); t[2:8, 2:12] = 1            # one nucleus
    >>> p = np.zeros_like(t); p[2:8, 2:7] = 1; p[2:8, 7:12] = 2  # cut into two halves (IoU 0.5 each)
    >>> match_at(t, p, 0.5)
    {'tp': 1, 'fp': 1, 'fn': 0, 'f1': 0.6666666666666666}
    """
    from .metrics import matching

    r = matching(y_true, y_pred, [threshold]).at(threshold)
    return {"tp": int(r["tp"]), "fp": int(r["fp"]), "fn": int(r["fn"]), "f1": float(r["f1"])}


# ---------------------------------------------------------------------------------------------
# sharing labels between chapters
# ---------------------------------------------------------------------------------------------
def _check_profile_name(profile):
    """``profile`` as given: ``None`` (the current profile) or a profile name such as ``"quick"``."""
    from .profiles import PROFILE_NAMES

    if profile is not None and (not isinstance(profile, str) or profile not in PROFILE_NAMES):
        raise ValueError(f"profile must be None or a profile name in {PROFILE_NAMES} (it only locates "
                         f"results/<profile>/; pass sizes as keyword arguments), got {profile!r}")
    return profile


def _labels_dir(profile=None) -> Path:
    from .provenance import results_dir

    d = results_dir(_check_profile_name(profile)) / "labels"
    d.mkdir(parents=True, exist_ok=True)
    return d


def save_labels(name: str, labels, method: str, profile=None, **extra) -> Path:
    """Save label image(s) with the method that made them, for other chapters.

    Parameters
    ----------
    name : str
        File stem, e.g. ``"isl_nuclei"``; written to ``results_dir(profile)/"labels"/<name>.npz``.
    labels : ndarray of int, (H, W) or (N, H, W)
    method : str
        Which model or pipeline made the labels (shown by the chapters that load them).
    profile : str, optional
        Profile name that locates ``results/<profile>/`` (default: the current profile, see
        :func:`islteach.provenance.results_dir`).
    **extra
        More arrays or JSON-able values to keep (e.g. ``indices=`` of the images).

    Returns
    -------
    pathlib.Path
    """
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"name must be a plain file stem, got {name!r}")
    if not isinstance(method, str) or not method:
        raise ValueError(f"method must be a non-empty string, got {method!r}")
    lab = np.asarray(labels)
    if lab.dtype.kind not in "ui" or lab.ndim not in (2, 3):
        raise ValueError(f"labels must be a 2-D or 3-D integer array, got {lab.dtype} {lab.shape}")
    path = _labels_dir(profile) / f"{name}.npz"
    arrays = {k: np.asarray(v) for k, v in extra.items() if isinstance(v, np.ndarray)}
    meta = {k: v for k, v in extra.items() if not isinstance(v, np.ndarray)}
    from .provenance import atomic_path

    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, labels=lab.astype(np.int32), method=np.array(method),
                            meta=np.array(json.dumps(meta)), **arrays)
    return path


def load_saved_labels(name: str, profile=None) -> dict:
    """Labels saved by :func:`save_labels` (e.g. by chapter 2).

    Chapter 2 saves ``"isl_nuclei"`` (the ISL field's nuclei, (1024, 1024)) and
    ``"bbbc039_test_cellpose"`` (Cellpose labels of the BBBC039 test images it evaluated,
    (N, 520, 696), with ``indices`` into ``load_bbbc039("test")``).

    Parameters
    ----------
    name : str
        File stem given to :func:`save_labels`.
    profile : str, optional
        Profile name that locates ``results/<profile>/`` (default: the current profile).

    Returns
    -------
    dict
        ``labels`` (int32 array), ``method`` (str), ``meta`` (dict) and any extra arrays.

    Raises
    ------
    FileNotFoundError
        When nothing was saved under that name for this profile.
    """
    path = _labels_dir(profile) / f"{name}.npz"
    if not path.is_file():
        raise FileNotFoundError(
            f"no saved labels {name!r} at {path}; run chapter 2 (02_cellpose_ground_truth) first"
        )
    with np.load(path, allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    out["method"] = str(out["method"])
    out["meta"] = json.loads(str(out["meta"]))
    return out


#: Keyword arguments :func:`train_scratch_bbbc039` needs (chapter 2 takes them from ``P.ch2``).
SCRATCH_TRAIN_KEYS = ("train_images", "n_epochs", "nimg_per_epoch", "batch_size", "crop_size",
                      "diam_mean", "lr", "seed")


def default_cellpose_model(*, profile=None, train_kwargs=None, train_if_missing: bool = True,
                           prefer_pretrained: bool = True, timeout: float = 10.0, verbose: bool = True):
    """Chapter 2's Cellpose model: pretrained ``nuclei`` if it can be had, else the from-scratch one.

    1. ``"nuclei"`` when its weights are on disk or downloadable (Colab);
    2. else the model chapter 2 trained from scratch on the BBBC039 training split
       (``results_dir(profile)/"models"/cellpose_scratch_bbbc039``);
    3. else (``train_if_missing``) it trains that model now with
       ``train_scratch_bbbc039(**train_kwargs)``, printing that it does so.

    Parameters
    ----------
    profile : str, optional
        Profile name that locates ``results/<profile>/`` (default: the current profile).
    train_kwargs : dict, optional
        Keyword arguments of :func:`train_scratch_bbbc039` (the keys of
        :data:`SCRATCH_TRAIN_KEYS`, chapter 2's ``P.ch2`` sizes and ``P.seed``); needed only
        when the model has to be trained now.
    train_if_missing : bool
        Train the from-scratch model when neither the pretrained nor a saved one is available.
    prefer_pretrained : bool
        Try the pretrained ``nuclei`` model first.
    timeout : float
        Seconds allowed to reach the pretrained weights' server.
    verbose : bool
        Print which model is used and why.

    Returns
    -------
    model : str or pathlib.Path
        Something :func:`cellpose_labels` accepts.
    description : str
        :func:`describe_model` of it.
    """
    from .provenance import results_dir

    profile = _check_profile_name(profile)
    if train_kwargs is not None and not isinstance(train_kwargs, dict):
        raise ValueError(f"train_kwargs must be a dict of train_scratch_bbbc039 keyword arguments or None, "
                         f"got {type(train_kwargs).__name__}")
    if prefer_pretrained:
        try:
            ensure_pretrained("nuclei", timeout=timeout)
            return "nuclei", describe_model("nuclei")
        except CellposeWeightsUnavailable as e:
            if verbose:
                print(f"Pretrained Cellpose 'nuclei' unavailable ({str(e).split(': ', 1)[1].split('. ')[0]}).")
    path = results_dir(profile) / "models" / SCRATCH_MODEL
    if path.is_file():
        return path, describe_model(path)
    if not train_if_missing:
        raise FileNotFoundError(f"no from-scratch Cellpose model at {path}; run chapter 2 first")
    if train_kwargs is None:
        raise ValueError(f"train_kwargs must give train_scratch_bbbc039's sizes {SCRATCH_TRAIN_KEYS} "
                         f"(chapter 2's P.ch2) to train the missing model at {path}")
    if verbose:
        print(f"No trained Cellpose model at {path}: training one from scratch on the BBBC039 "
              f"training split with chapter 2's recipe and sizes.")
    path = train_scratch_bbbc039(**train_kwargs, profile=profile)
    return path, describe_model(path)


def train_scratch_bbbc039(*, train_images: int, n_epochs: int, nimg_per_epoch: int | None, batch_size: int,
                          crop_size: int, diam_mean: float, lr: float, seed: int = 0,
                          profile=None) -> Path:
    """Chapter 2's from-scratch Cellpose model: :func:`train_cellpose` on BBBC039 ``train``.

    Parameters
    ----------
    train_images : int
        Trains on the first ``train_images`` images of the BBBC039 training split.
    n_epochs, nimg_per_epoch, batch_size, crop_size, diam_mean, lr, seed
        As in :func:`train_cellpose` (chapter 2 passes ``P.ch2``'s values and ``P.seed``).
    profile : str, optional
        Profile name: the model is saved under ``results/<profile>/models/`` (default: the
        current profile).

    Returns
    -------
    pathlib.Path
        The model file, ``results_dir(profile)/"models"/cellpose_scratch_bbbc039``.
    """
    from .data import load_bbbc039
    from .provenance import results_dir

    profile = _check_profile_name(profile)
    if not isinstance(train_images, (int, np.integer)) or train_images < 1:
        raise ValueError(f"train_images must be a positive integer, got {train_images!r}")
    images, labels = load_bbbc039("train")
    n = min(int(train_images), len(images))
    return train_cellpose(
        images[:n], labels[:n], n_epochs=n_epochs, nimg_per_epoch=nimg_per_epoch,
        batch_size=batch_size, crop_size=crop_size, diam_mean=diam_mean,
        lr=lr, save_dir=results_dir(profile), model_name=SCRATCH_MODEL,
        seed=seed,
    )


def isl_nuclei_labels(*, diameter: float | None = None, percentile=None, flow_threshold: float | None = None,
                      train_kwargs=None, profile=None, recompute: bool = False):
    """The ISL field's nucleus labels for chapters 3 and 4, and which method made them.

    Loads ``results_dir(profile)/"labels"/isl_nuclei.npz`` written by chapter 2; when it is
    missing (or ``recompute``), remakes it with chapter 2's recipe: :func:`default_cellpose_model`
    (the pretrained ``nuclei`` model, else the from-scratch model, trained now with
    ``train_kwargs`` if needed) on the DAPI image, and saves it.

    Parameters
    ----------
    diameter : float
        Nucleus diameter (px) given to Cellpose on the ISL DAPI image (``P.ch2.isl_diameter``).
    percentile : (float, float)
        Normalisation percentiles (``P.ch2.isl_percentile``).
    flow_threshold : float
        Cellpose's flow-error cut-off (``P.ch2.flow_threshold``).
    train_kwargs : dict, optional
        Keyword arguments of :func:`train_scratch_bbbc039` (see :func:`default_cellpose_model`).
    profile : str, optional
        Profile name that locates ``results/<profile>/`` (default: the current profile).
    recompute : bool
        Ignore saved labels.

    ``diameter``, ``percentile`` and ``flow_threshold`` are needed only when the labels are made
    (missing or ``recompute``); without them a ValueError says so.

    Returns
    -------
    labels : ndarray of int32, (1024, 1024)
    method : str
        E.g. ``"Cellpose from scratch (...)"`` or ``"Cellpose 'nuclei' (pretrained)"``.
    """
    profile = _check_profile_name(profile)
    if not recompute:
        try:
            saved = load_saved_labels(ISL_LABELS, profile)
            return saved["labels"], saved["method"]
        except FileNotFoundError:
            print(f"No saved ISL nucleus labels in {_labels_dir(profile)}: making them with chapter 2's recipe.")
    for name, v in (("diameter", diameter), ("percentile", percentile), ("flow_threshold", flow_threshold)):
        if v is None:
            raise ValueError(f"{name} must be given (chapter 2's P.ch2 value) to make the ISL nucleus labels")
    from .data import load_isl_finkbeiner

    model, method = default_cellpose_model(profile=profile, train_kwargs=train_kwargs)
    dapi = load_isl_finkbeiner()["dapi"]
    labels = cellpose_labels(dapi, model=model, diameter=diameter, percentile=percentile,
                             flow_threshold=flow_threshold)
    save_labels(ISL_LABELS, labels, method, profile, diameter=diameter)
    return labels, method
