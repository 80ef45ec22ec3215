"""From network outputs to instances, and back: the papers' targets and post-processing.

Targets (made from instance labels, what the networks of chapter 4 learn)
    :func:`distance_map` (``mode="bonte"``: distance to the object's border in pixels, growing
    towards each centre, Bonte et al.; ``mode="normalized"``: the same divided by each object's
    maximum, 1 at the centre and close to 0 at the border, Zaki et al.) and
    :func:`blurred_border` (the object borders blurred with a Gaussian, sigma 1 in Zaki et al.).

Post-processing (from predicted maps to instance labels)
    :func:`hmax_watershed` (Bonte et al.: h-maxima of the distance as markers, :func:`hmax_seeds`,
    watershed inside the semantic mask), :func:`seeded_watershed` (Zaki et al.'s FPN2-WS: seeds =
    distance above 0.6, watershed on the border image), :func:`merge_instances` (Costa et al.: a
    smaller instance joins a bigger one that covers at least half of it).

Many images at once
    :func:`map_images` runs one post-processing function over a list of images in threads (the
    scikit-image and SciPy steps release Python's GIL, so two cores post-process two images at
    once; the results are those of the plain loop, in the same order).

Label utilities
    :func:`relabel_sequential` and :func:`remove_small_objects` (plain NumPy, independent of the
    scikit-image version, whose ``remove_small_objects`` changed its arguments in 0.26).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .metrics import check_labels

__all__ = [
    "map_images",
    "distance_map",
    "blurred_border",
    "hmax",
    "hmax_watershed",
    "hmax_seeds",
    "seeded_watershed",
    "merge_instances",
    "relabel_sequential",
    "remove_small_objects",
]


# ---------------------------------------------------------------------------------------------
# many images at once
def map_images(fn, items, *, workers: int | None = None) -> list:
    """``[fn(item) for item in items]``, computed in threads: the same results, in the same order.

    Post-processing (h-maxima, watershed, labelling, matching) spends its time in scikit-image
    and SciPy code that releases Python's global interpreter lock, so threads run it on
    several cores at once. Measured on this book's 2-core CPU (``benchmarks/README.md``):
    Bonte et al.'s h-maxima watershed 1.8x, the classical pipeline 1.7x faster with 2 threads.
    Use it for CPU work on NumPy arrays, not for a PyTorch model (whose operations already use
    every core).

    Parameters
    ----------
    fn : callable
        Applied to each item; it must not modify shared state.
    items : iterable
    workers : int, optional
        Threads; default ``os.cpu_count()``. ``1`` runs the plain loop.

    Returns
    -------
    list
        ``fn(item)`` for each item, in order. The first exception raised by ``fn`` propagates.

    Examples
    --------
    >>> map_images(lambda a: int(a.sum()), [np.ones(3), np.zeros(2)])
    [3, 0]
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    if workers is None:
        workers = os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    items = list(items)
    workers = min(int(workers), len(items))
    if workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


# ---------------------------------------------------------------------------------------------
# label utilities
# ---------------------------------------------------------------------------------------------
def relabel_sequential(labels) -> np.ndarray:
    """Labels renumbered 1..n (in the order of their old values), 0 kept as background.

    Parameters
    ----------
    labels : array_like of int

    Returns
    -------
    ndarray of int32

    Examples
    --------
    >>> relabel_sequential(np.array([[0, 5, 5], [9, 0, 2]]))
    array([[0, 2, 2],
           [3, 0, 1]], dtype=int32)
    """
    lab = check_labels(labels, "labels", ndims=None)
    if lab.size == 0:
        return lab.astype(np.int32)
    top = int(lab.max())
    if top <= 4 * lab.size + 1024:
        present = np.bincount(lab.ravel().astype(np.intp, copy=False), minlength=top + 1) > 0
        present[0] = False
        lut = np.zeros(top + 1, np.int32)
        lut[present] = np.arange(1, int(present.sum()) + 1, dtype=np.int32)
        return lut[lab]
    values, inv = np.unique(lab, return_inverse=True)
    new = np.arange(values.size, dtype=np.int32) + (0 if values[0] == 0 else 1)
    return new[inv].reshape(lab.shape)


def remove_small_objects(labels, min_size: int) -> np.ndarray:
    """Delete objects with fewer than ``min_size`` pixels and renumber the rest 1..n.

    Parameters
    ----------
    labels : array_like of int
        Instance labels.
    min_size : int
        Smallest object size (pixels) that is kept.

    Returns
    -------
    ndarray of int32

    Examples
    --------
    >>> lab = np.array([[1, 1, 1, 0, 2], [1, 1, 0, 0, 0]])
    >>> remove_small_objects(lab, min_size=2)
    array([[1, 1, 1, 0, 0],
           [1, 1, 0, 0, 0]], dtype=int32)
    """
    lab = relabel_sequential(check_labels(labels, "labels"))
    if min_size < 0:
        raise ValueError(f"min_size must be >= 0, got {min_size!r}")
    if min_size <= 1 or lab.size == 0:
        return lab
    sizes = np.bincount(lab.ravel())
    keep = sizes >= min_size
    keep[0] = False
    lut = np.zeros(sizes.size, np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lut[lab]


def _check_float_image(x, name: str, ndim=2) -> np.ndarray:
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        raise ValueError(f"{name} must be a real-valued image, got dtype {arr.dtype}")
    ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if arr.ndim not in ndims:
        raise ValueError(f"{name} must be {' or '.join(f'{d}-D' for d in ndims)}, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must not contain NaN or infinite values")
    return arr


def _check_mask(x, name: str, shape, like: str = "distance") -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype != bool:
        if np.issubdtype(arr.dtype, np.number) and np.all((arr == 0) | (arr == 1)):
            arr = arr.astype(bool)
        else:
            raise ValueError(f"{name} must be a boolean mask (or 0/1 values), got dtype {arr.dtype}; "
                             "threshold probabilities first (e.g. prob > 0.5)")
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} must have the shape of {like} {tuple(shape)}, got {arr.shape}")
    return arr


# ---------------------------------------------------------------------------------------------
# targets
# ---------------------------------------------------------------------------------------------
def distance_map(labels, mode: str = "bonte") -> np.ndarray:
    """Per-object Euclidean distance transform of instance labels (0 in the background).

    Every object is measured on its own: a pixel's value is its distance to the nearest pixel
    *not in the same object* (background, another object, or outside the image), so touching
    objects each get their own peak. Pixels on an object's edge have distance 1.

    Parameters
    ----------
    labels : array_like of int, 2-D or 3-D
        Instance labels.
    mode : {"bonte", "normalized"}
        ``"bonte"``: the distance in pixels, growing towards each object's centre (the distance
        map of Bonte et al.). ``"normalized"``: the distance divided by the object's maximum, so
        1 at each centre and 1/max (close to 0) on the border: Zaki et al.'s normalised
        distance transform.

    Returns
    -------
    ndarray of float32, same shape as ``labels``

    Examples
    --------
    >>> lab = np.zeros((7, 12), int); lab[1:6, 1:6] = 1; lab[1:6, 6:11] = 2  # touching squares
    >>> d = distance_map(lab)
    >>> d[3, 1:11].tolist()  # two peaks, not one
    [1.0, 2.0, 3.0, 2.0, 1.0, 1.0, 2.0, 3.0, 2.0, 1.0]
    >>> [round(float(v), 2) for v in distance_map(lab, "normalized")[3, 1:6]]
    [0.33, 0.67, 1.0, 0.67, 0.33]
    """
    if mode not in ("bonte", "normalized"):
        raise ValueError(f"mode must be 'bonte' or 'normalized', got {mode!r}")
    lab = check_labels(labels, "labels")
    out = np.zeros(lab.shape, np.float32)
    if lab.size == 0:
        return out
    if int(lab.max()) > 4 * lab.size + 1024:
        lab = relabel_sequential(lab)
    for i, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None:
            continue
        obj = lab[sl] == i
        # pad by one pixel so that the image border counts as the object's border
        d = ndi.distance_transform_edt(np.pad(obj, 1))[(slice(1, -1),) * obj.ndim]
        d = d[obj]
        if mode == "normalized":
            d = d / d.max()
        out[sl][obj] = d
    return out


def blurred_border(labels, sigma: float = 1.0, mode: str = "inner") -> np.ndarray:
    """Object borders blurred with a Gaussian: Zaki et al.'s second FPN2-WS target.

    Parameters
    ----------
    labels : array_like of int, 2-D
        Instance labels.
    sigma : float
        Standard deviation of the Gaussian in pixels (1 in the paper).
    mode : {"inner", "outer", "thick"}
        Which pixels form the border (``skimage.segmentation.find_boundaries``): ``"inner"``
        (default) marks each object's own edge pixels, so two touching nuclei are separated by
        two border pixels, one of each.

    Returns
    -------
    ndarray of float32 in [0, 1]
        A 1-pixel border line blurred with sigma 1 peaks at about 0.4; where two objects touch,
        about 0.65.

    Examples
    --------
    >>> lab = np.zeros((9, 9), int); lab[2:7, 2:7] = 1
    >>> b = blurred_border(lab)
    >>> bool(b[4, 4] < b[4, 2]), bool(0 < b.max() <= 1)  # low in the centre, high on the border
    (True, True)
    """
    from skimage.segmentation import find_boundaries

    if not sigma >= 0:
        raise ValueError(f"sigma must be >= 0, got {sigma!r}")
    lab = check_labels(labels, "labels")
    border = find_boundaries(lab, mode=mode, background=0).astype(np.float64)
    if sigma > 0:
        border = ndi.gaussian_filter(border, sigma)
    return np.clip(border, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# post-processing
# ---------------------------------------------------------------------------------------------
def hmax(f, h: float, connectivity: int | None = None) -> np.ndarray:
    """The h-maxima transform HMAX_h(f): morphological reconstruction by dilation of f - h under f.

    It lowers every peak of ``f`` by ``h`` and removes the peaks less than ``h`` high (relative
    to the saddle that joins them to a higher one).

    Parameters
    ----------
    f : array_like of float
        Image (e.g. a predicted distance map).
    h : float
        Minimum height of a peak to be kept (in the units of ``f``).
    connectivity : {1, 2, None}
        Neighbourhood of the reconstruction (1: 4-connected in 2-D, 2: 8-connected; None: the
        full neighbourhood, skimage's default). Use the connectivity the maxima are then found
        and labelled with: reconstructing 8-connected and labelling 4-connected maxima turns
        every diagonal ridge of a distance map into a chain of separate seeds.

    Returns
    -------
    ndarray of float64

    Examples
    --------
    >>> f = np.array([[0, 3, 1, 5, 0]], float)  # two peaks, 3 and 5, saddle 1
    >>> hmax(f, 1).tolist()  # both peaks (height 2 above the saddle) survive, lowered by 1
    [[0.0, 2.0, 1.0, 4.0, 0.0]]
    >>> hmax(f, 3).tolist()  # the small peak is gone
    [[0.0, 1.0, 1.0, 2.0, 0.0]]
    """
    from skimage.morphology import reconstruction

    if not h >= 0:
        raise ValueError(f"h must be >= 0, got {h!r}")
    f = _check_float_image(f, "f", ndim=(2, 3))
    if f.size == 0:
        return f.copy()
    if connectivity is None:
        return reconstruction(f - h, f, method="dilation")
    if connectivity not in range(1, f.ndim + 1):
        raise ValueError(f"connectivity must be None or 1..{f.ndim}, got {connectivity!r}")
    footprint = ndi.generate_binary_structure(f.ndim, connectivity)
    return reconstruction(f - h, f, method="dilation", footprint=footprint)


def hmax_watershed(distance, mask, h: float, min_size: int = 16, connectivity: int = 1) -> np.ndarray:
    """Bonte et al.'s post-processing: h-maxima markers, watershed of the semantic mask.

    1. ``HMAX_h(distance)`` (:func:`hmax`) removes the peaks lower than ``h``;
    2. its regional maxima (connected plateaus higher than all their neighbours), inside the
       mask, are the markers, one per object (:func:`hmax_seeds`);
    3. a watershed of ``-distance`` from these markers, restricted to ``mask``, splits the mask
       into objects;
    4. objects smaller than ``min_size`` pixels are removed and labels renumbered 1..n.

    Parameters
    ----------
    distance : (H, W) array_like of float
        Predicted distance map (higher towards each centre).
    mask : (H, W) array_like of bool
        Predicted foreground (threshold the semantic output first).
    h : float
        Minimum peak height, in the units of ``distance`` (Bonte et al.: h = 10 on their scale).
    min_size : int
        Objects smaller than this (pixels) are removed.
    connectivity : {1, 2}
        Neighbourhood for maxima and watershed (1: 4-connected, 2: 8-connected).

    Returns
    -------
    (H, W) ndarray of int32

    Examples
    --------
    >>> yy, xx = np.mgrid[:40, :70]
    >>> two = ((yy - 20) ** 2 + (xx - 20) ** 2 <= 15 ** 2) | ((yy - 20) ** 2 + (xx - 46) ** 2 <= 15 ** 2)
    >>> d = ndi.distance_transform_edt(two)  # one blob, two peaks
    >>> int(hmax_watershed(d, two, h=2).max()), int(hmax_watershed(d, two, h=10).max())
    (2, 1)
    """
    from skimage.segmentation import watershed

    d = _check_float_image(distance, "distance")
    m = _check_mask(mask, "mask", d.shape)
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 or 2, got {connectivity!r}")
    if not m.any():
        return np.zeros(d.shape, np.int32)
    markers = _hmax_seeds(d, m, h, connectivity)  # hmax_seeds(d, m, h, connectivity), arguments checked above
    lab = watershed(-d, markers, mask=m, connectivity=connectivity)
    return remove_small_objects(lab, min_size)


def hmax_seeds(distance, mask, h: float, connectivity: int = 1) -> np.ndarray:
    """The seeds of Bonte et al.'s watershed: connected h-maxima of the distance inside the mask.

    The seeding step of :func:`hmax_watershed` (which :func:`islteach.distance_maps.bonte_instances`
    calls), as a function of its own: a watershed from these seeds inside ``mask`` gives that
    function's labels (before small objects are removed). Chapter 4's exercise ``ex-04-hmaxima-seeds``
    asks for it; :mod:`islteach.distance_maps` exports it too.

    1. outside ``mask`` the distance is set below every value inside it, so that it cannot
       create maxima or join two of them (every connected part of the mask keeps a seed);
    2. ``HMAX_h`` (:func:`hmax`) flattens the peaks less than ``h`` above the saddle that joins
       them to a higher one;
    3. its regional maxima inside ``mask``, numbered by connected component, are the seeds.

    Parameters
    ----------
    distance : (H, W) array_like of float
        Distance map, higher towards each centre (predicted or true).
    mask : (H, W) array_like of bool
        Foreground.
    h : float
        Minimum peak height (>= 0), in the units of ``distance``.
    connectivity : {1, 2}
        Neighbourhood of the maxima and of their components (1: 4-connected).

    Returns
    -------
    (H, W) ndarray of int32
        Seed labels 1..n, 0 elsewhere.

    Examples
    --------
    >>> from scipy import ndimage as ndi
    >>> yy, xx = np.mgrid[:40, :70]
    >>> two = ((yy - 20) ** 2 + (xx - 20) ** 2 <= 15 ** 2) | ((yy - 20) ** 2 + (xx - 46) ** 2 <= 15 ** 2)
    >>> d = ndi.distance_transform_edt(two)  # one blob, two peaks
    >>> int(hmax_seeds(d, two, h=2).max()), int(hmax_seeds(d, two, h=10).max())
    (2, 1)
    """
    d = np.asarray(distance)
    if d.ndim != 2 or d.dtype.kind not in "uifb":
        raise ValueError(f"distance must be a real (H, W) array, got {d.dtype} {d.shape}")
    d = d.astype(np.float64)
    if not np.all(np.isfinite(d)):
        raise ValueError("distance must not contain NaN or infinite values")
    m = np.asarray(mask)
    if m.shape != d.shape or not (m.dtype == bool or (m.dtype.kind in "ui" and np.isin(m, (0, 1)).all())):
        raise ValueError(f"mask must be a boolean (or 0/1) array of shape {d.shape}, got {m.dtype} {m.shape}")
    m = m.astype(bool)
    if isinstance(h, bool) or not isinstance(h, (int, float, np.integer, np.floating)) or not h >= 0:
        raise ValueError(f"h must be a number >= 0, got {h!r}")
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 or 2, got {connectivity!r}")
    return _hmax_seeds(d, m, h, connectivity)


def _hmax_seeds(d: np.ndarray, m: np.ndarray, h, connectivity: int) -> np.ndarray:
    """:func:`hmax_seeds` of a checked float distance ``d`` and boolean mask ``m`` (what
    :func:`hmax_watershed` floods from; each checks its arguments its own way)."""
    from skimage.morphology import local_maxima

    if not m.any():
        return np.zeros(d.shape, np.int32)
    # outside the mask the distance does not matter: keep it from creating or merging maxima
    d = np.where(m, d, min(float(d[m].min()), 0.0) - abs(h) - 1.0)
    peaks = local_maxima(hmax(d, h, connectivity=connectivity), connectivity=connectivity,
                         allow_borders=True) & m
    seeds, _ = ndi.label(peaks, structure=ndi.generate_binary_structure(2, connectivity))
    return seeds.astype(np.int32)


def seeded_watershed(
    distance,
    border,
    threshold: float = 0.6,
    mask=None,
    mask_threshold: float = 0.02,
    min_size: int = 16,
    connectivity: int = 1,
) -> np.ndarray:
    """Zaki et al.'s FPN2-WS post-processing: seeds from the distance, watershed on the border.

    1. seeds = connected components of ``distance > threshold`` (0.6 in the paper);
    2. the watershed of the ``border`` image floods from the seeds, so objects meet where the
       predicted border is high;
    3. flooding stays inside the foreground ``mask`` (default: ``distance > mask_threshold``);
    4. objects smaller than ``min_size`` pixels are removed and labels renumbered 1..n.

    Parameters
    ----------
    distance : (H, W) array_like of float
        Predicted normalised distance (1 at centres, near 0 at borders, 0 in the background).
    border : (H, W) array_like of float
        Predicted blurred border (high on object borders).
    threshold : float
        Seed threshold on ``distance``.
    mask : (H, W) array_like of bool, optional
        Foreground. Default ``distance > mask_threshold``.
    mask_threshold : float
        Foreground threshold on ``distance`` when ``mask`` is not given. The target of an edge
        pixel is 1 / (object radius), about 0.03-0.1 for BBBC039 nuclei, so keep it low; seeds
        are needed to make an object, so low background noise only grows real objects a little.
    min_size : int
        Objects smaller than this (pixels) are removed.
    connectivity : {1, 2}

    Returns
    -------
    (H, W) ndarray of int32

    Examples
    --------
    >>> lab = np.zeros((20, 40), int); lab[4:16, 4:20] = 1; lab[4:16, 20:36] = 2  # touching
    >>> out = seeded_watershed(distance_map(lab, "normalized"), blurred_border(lab))
    >>> int(out.max()), bool(((out > 0) == (lab > 0)).all())
    (2, True)
    """
    from skimage.segmentation import watershed

    d = _check_float_image(distance, "distance")
    b = _check_float_image(border, "border")
    if b.shape != d.shape:
        raise ValueError(f"border must have the shape of distance {d.shape}, got {b.shape}")
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 or 2, got {connectivity!r}")
    m = d > mask_threshold if mask is None else _check_mask(mask, "mask", d.shape)
    structure = ndi.generate_binary_structure(2, connectivity)
    seeds, n = ndi.label((d > threshold) & m, structure=structure)
    if n == 0:
        return np.zeros(d.shape, np.int32)
    lab = watershed(b, seeds, mask=m, connectivity=connectivity)
    return remove_small_objects(lab, min_size)


def merge_instances(instances, min_overlap: float = 0.5, threshold: float = 0.5, return_groups: bool = False):
    """Costa et al.'s post-processing: a smaller instance joins a bigger one that covers half of it.

    The shape-prior model of chapter 5 predicts one mask per instance and the masks may
    overlap, so the input is a **stack** of per-instance masks. Going from the smallest
    instance ``m`` to the biggest, ``m`` joins the bigger instance ``b`` with the largest
    ``|b & m| / |m|`` when that ratio is at least ``min_overlap`` (ties in area: the lower index
    counts as bigger). Joins are transitive: if c joins b and b joins a, all three form one group.

    Parameters
    ----------
    instances : array_like, shape (K, H, W) or (H, W)
        (K, H, W): per-instance masks, bool (or 0/1) or probabilities in [0, 1] (thresholded at
        ``threshold``); K may be 0. (H, W) integer labels are accepted too, but their objects
        cannot overlap, so nothing merges (they are only renumbered).
    min_overlap : float
        Smallest fraction of the smaller instance covered by the bigger one (0.5 in the paper).
    threshold : float
        Probability threshold for probability stacks.
    return_groups : bool
        Also return the group of each input instance.

    Returns
    -------
    labels : (H, W) ndarray of int32
        Each group painted with label ``group + 1``. Where instances of different groups
        overlap, the pixel goes to the instance with the highest probability (masks: the bigger
        instance). A group can lose all its pixels that way (or be empty), leaving a gap in the
        labels; :func:`islteach.metrics.matching` counts only labels present.
    groups : (K,) ndarray of int64, only with ``return_groups=True``
        Group id 0..G-1 of every input instance, numbered in order of first appearance.
        For (H, W) labels: the group of each label 1..max (in order).

    Examples
    --------
    >>> m = np.zeros((3, 10, 10), bool)
    >>> m[0, 1:9, 1:9] = True        # a big nucleus
    >>> m[1, 2:6, 2:6] = True        # a duplicate inside it
    >>> m[2, 7:10, 7:10] = True      # a separate small one (4 of its 9 pixels overlap the big one)
    >>> lab, groups = merge_instances(m, return_groups=True)
    >>> groups.tolist(), int(lab.max())
    ([0, 0, 1], 2)
    """
    if not 0 < min_overlap <= 1:
        raise ValueError(f"min_overlap must be in (0, 1], got {min_overlap!r}")
    arr = np.asarray(instances)
    if arr.ndim == 2:
        lab = check_labels(arr, "instances")
        out = relabel_sequential(lab)
        if not return_groups:
            return out
        top = int(lab.max()) if lab.size else 0
        present = np.zeros(top + 1, bool)
        present[np.unique(lab)] = True
        groups = np.cumsum(present)[1:] - 1
        return out, groups.astype(np.int64)
    if arr.ndim != 3:
        raise ValueError(f"instances must be a (K, H, W) stack of masks or (H, W) labels, got shape {arr.shape}")
    if arr.dtype == bool:
        masks = arr
        score = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.number) and not np.iscomplexobj(arr):
        if arr.size and (np.nanmin(arr) < 0 or np.nanmax(arr) > 1 or np.isnan(arr).any()):
            raise ValueError("instances must hold masks (bool, 0/1) or probabilities in [0, 1]; "
                             f"got values in [{np.nanmin(arr)}, {np.nanmax(arr)}]")
        score = arr.astype(np.float32)
        masks = score >= threshold if not np.all((arr == 0) | (arr == 1)) else arr.astype(bool)
    else:
        raise ValueError(f"instances must be bool, 0/1 or probabilities, got dtype {arr.dtype}")
    K, H, W = masks.shape
    if K == 0:
        out = np.zeros((H, W), np.int32)
        return (out, np.zeros(0, np.int64)) if return_groups else out
    flat = masks.reshape(K, -1)
    area = flat.sum(1).astype(np.int64)
    fl = flat.astype(np.float32)
    inter = np.rint(fl @ fl.T).astype(np.int64)
    rank = np.empty(K, np.int64)
    order = np.lexsort((np.arange(K), -area))  # biggest first; equal areas: lower index first
    rank[order] = np.arange(K)
    parent = np.arange(K)
    for m in order[::-1]:  # smallest first
        if area[m] == 0:
            continue
        bigger = rank < rank[m]
        if not bigger.any():
            continue
        ratio = np.where(bigger, inter[:, m] / area[m], -1.0)
        best = float(ratio.max())
        if best >= min_overlap:
            # the largest ratio; among equal ratios the biggest instance
            cand = np.flatnonzero(ratio == best)
            parent[m] = cand[np.argmin(rank[cand])]

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    roots = np.array([root(i) for i in range(K)])
    _, first, inv = np.unique(roots, return_index=True, return_inverse=True)
    # group ids in order of first appearance
    renum = np.empty(first.size, np.int64)
    renum[np.argsort(first)] = np.arange(first.size)
    groups = renum[inv]
    # paint: per pixel the instance with the highest score, the bigger one on ties
    s = np.where(masks, score, -1.0)[order]
    win = order[np.argmax(s, axis=0)]
    labels = np.where(masks.any(0), groups[win] + 1, 0).astype(np.int32)
    return (labels, groups) if return_groups else labels
