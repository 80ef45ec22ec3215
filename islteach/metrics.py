"""How good is a segmentation? Pixel and object metrics of the papers, from one honest core.

Pixel level
    :func:`pcc` (Pearson correlation, chapter 1) and :func:`iou` (Jaccard index of two binary
    masks, 1 when both are empty, chapter 3).

Object level
    :func:`matching` computes the label-overlap matrix of two instance label images **once**
    (one pass over the pixels) and derives every figure for every IoU threshold from it, returned
    as a :class:`Matching` record: ``tp``, ``fp``, ``fn``, ``precision`` = TP/(TP+FP),
    ``recall`` = TP/(TP+FN), ``f1`` = 2TP/(2TP+FP+FN) (Zaki et al.), ``ap`` = TP/(TP+FP+FN)
    (the "precision" of Bonte et al. and of the Data Science Bowl 2018, also Cellpose's
    "average precision"), the mean IoU of the matched pairs, and the error types of Zaki et al.
    (``merges``, ``splits``), and the panoptic quality (``pq``). :func:`matching_dataset`
    aggregates over images, both by summing the counts (``summed``) and by averaging per-image
    figures (``image_mean``).

Results files
    :func:`score_record` is the one scoring record of chapters 2, 4 and 5 (pooled F1 per
    threshold, image-mean AP and mAP, PQ, error counts), in plain Python types.
    :func:`error_objects` and :func:`best_iou_per_object` name the objects behind the counts.

Conventions (the same as ``cellpose.metrics.average_precision``, checked in the tests)
    * A ground-truth object and a predicted object *match* when their IoU is **>= t**.
    * The matching is one-to-one and has the largest possible number of pairs with IoU >= t
      (Cellpose solves it with ``linear_sum_assignment``). For t > 0.5 a pair with IoU >= t is
      unique anyway; below 0.5 an object may overlap several others and the assignment matters.
    * Thresholds are exact decimals: use :data:`THRESHOLDS` or :func:`iou_thresholds`. The
      common ``np.arange(0.5, 1, 0.05)`` contains ``0.6000000000000001`` instead of ``0.6``,
      and a pair whose IoU is exactly 3/5 (hundreds of BBBC039 nuclei against a slightly
      perturbed copy) then stops matching. :func:`matching` warns about such thresholds.
    * Objects are the labels *present* in the image. (Cellpose counts ``labels.max()`` objects,
      so a label image with gaps, e.g. after deleting objects, gets phantom false negatives
      there; relabel with :func:`islteach.postprocess.relabel_sequential` to compare.)
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, fields

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = [
    "THRESHOLDS",
    "iou_thresholds",
    "pcc",
    "iou",
    "Matching",
    "DatasetMatching",
    "matching",
    "matching_dataset",
    "mean_ap",
    "match_pairs",
    "check_labels",
    "score_record",
    "error_objects",
    "best_iou_per_object",
]


def iou_thresholds(start: float = 0.5, stop: float = 0.95, step: float = 0.05) -> tuple[float, ...]:
    """IoU thresholds ``start, start + step, ..., stop`` (inclusive) as exact decimals.

    Each value is the float nearest to its decimal (``0.6``, never ``0.6000000000000001``).

    Parameters
    ----------
    start, stop, step : float
        First and last threshold (both included) and the spacing, all in (0, 1].

    Returns
    -------
    tuple of float

    Examples
    --------
    >>> iou_thresholds()  # Bonte et al. / Data Science Bowl mAP thresholds
    (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    >>> iou_thresholds(0.1, 1.0, 0.1)  # Costa et al.'s mean F1
    (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    """
    if not step > 0:
        raise ValueError(f"step must be > 0, got {step!r}")
    n = int(math.floor((stop - start) / step + 1e-9)) + 1
    if n < 1:
        raise ValueError(f"stop ({stop!r}) must be >= start ({start!r})")
    return tuple(round(start + i * step, 10) for i in range(n))


#: The ten IoU thresholds 0.50, 0.55, ..., 0.95 of the mAP (Bonte et al., Data Science Bowl).
THRESHOLDS: tuple[float, ...] = iou_thresholds(0.5, 0.95, 0.05)


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------
def check_labels(labels, name: str = "labels", ndims=(2, 3)) -> np.ndarray:
    """Return ``labels`` as an ndarray, or raise if it is not a non-negative integer label image.

    Parameters
    ----------
    labels : array_like, 2-D or 3-D
        Instance labels: 0 is background, each positive integer one object.
    name : str
        The argument's name, used in the error message.
    ndims : tuple of int or None
        Allowed numbers of dimensions (None: any).

    Returns
    -------
    numpy.ndarray
        The same data (no copy when ``labels`` already is an ndarray).

    Raises
    ------
    ValueError
        If the array is not integer-typed (bool and float are refused: label a binary mask with
        ``skimage.measure.label`` first), contains negative values, or is not 2-D or 3-D.

    Examples
    --------
    >>> import numpy as np
    >>> check_labels(np.array([[0, 1], [2, 2]])).shape
    (2, 2)
    >>> check_labels(np.array([0.0, 1.0]), "y_pred")
    Traceback (most recent call last):
    ...
    ValueError: y_pred must be a non-negative integer label array, got dtype float64
    """
    return _labels_and_max(labels, name, ndims)[0]


def _check_label_type(labels, name: str, ndims=(2, 3)) -> np.ndarray:
    """The dtype and dimension checks of :func:`check_labels` (no pass over the pixels)."""
    arr = np.asarray(labels)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        hint = " (label a binary mask first, e.g. skimage.measure.label(mask))" if arr.dtype == bool else ""
        raise ValueError(f"{name} must be a non-negative integer label array, got dtype {arr.dtype}{hint}")
    if ndims is not None and arr.ndim not in ndims:
        raise ValueError(f"{name} must be {_ndims_text(ndims)}, got shape {arr.shape}")
    if arr.ndim == 0:
        raise ValueError(f"{name} must be a label array, got a scalar")
    return arr


def _ndims_text(ndims) -> str:
    ndims = tuple(ndims)
    if ndims == (2, 3):
        return "a 2-D label image (or a 3-D label volume)"
    return "a " + " or ".join(f"{d}-D" for d in ndims) + " label array"


def _labels_and_max(labels, name: str, ndims=(2, 3)):
    """Validate a label array and return it with its largest label (one pass over the pixels)."""
    arr = _check_label_type(labels, name, ndims)
    if arr.size == 0:
        return arr, 0
    if np.issubdtype(arr.dtype, np.signedinteger):
        # seen as unsigned, a negative value is larger than any non-negative one:
        # the sign check and the maximum cost one reduction
        u = np.ascontiguousarray(arr).view(np.dtype(f"u{arr.dtype.itemsize}"))
        top = int(u.max())
        if top > np.iinfo(arr.dtype).max:
            raise ValueError(f"{name} must be a non-negative integer label array, got a minimum of {arr.min()}")
        return arr, top
    return arr, int(arr.max())


def _check_thresholds(thresholds) -> tuple[float, ...]:
    if np.isscalar(thresholds):
        thresholds = [thresholds]
    ths = tuple(float(t) for t in thresholds)
    if len(ths) == 0:
        raise ValueError("thresholds must contain at least one IoU threshold")
    for t in ths:
        if not (0.0 < t <= 1.0):
            raise ValueError(f"thresholds must lie in (0, 1] (a match needs IoU >= t), got {t!r}")
        if float(f"{t:.10g}") != t:
            warnings.warn(
                f"IoU threshold {t!r} is not an exact decimal (did you mean {float(f'{t:.10g}')!r}?); "
                "pairs with IoU exactly at the intended threshold will not match. "
                "Use islteach.metrics.THRESHOLDS or iou_thresholds().",
                stacklevel=3,
            )
    return ths


def _check_ndim(arr: np.ndarray, name: str) -> None:
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must be a 2-D image (or a 3-D stack), got shape {arr.shape}")


def _check_binary(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == bool:
        _check_ndim(arr, name)
        return arr
    if np.issubdtype(arr.dtype, np.number) and not np.iscomplexobj(arr):
        if arr.size == 0 or np.all((arr == 0) | (arr == 1)):
            _check_ndim(arr, name)
            return arr.astype(bool)
    raise ValueError(
        f"{name} must be a binary mask (bool or only 0/1 values), got dtype {arr.dtype}"
        " with other values (threshold probabilities or use labels > 0 first)"
    )


# ---------------------------------------------------------------------------------------------
# pixel level
# ---------------------------------------------------------------------------------------------
def pcc(x, y, mask=None) -> float:
    """Pearson correlation coefficient between two images (chapter 1's metric, per image).

    Parameters
    ----------
    x, y : array_like
        Real-valued, finite images of the same shape (2-D, or a 3-D stack scored as one),
        e.g. predicted and real fluorescence.
    mask : array_like of bool, optional
        Score only these pixels (same shape as ``x``).

    Returns
    -------
    float
        The correlation of all (masked) pixels, in [-1, 1]. When either image is constant the
        correlation is undefined; we return 0.0 (a constant prediction carries no information
        about the target), so a collapsed model scores 0 instead of spreading NaN.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(4, 4)
    >>> round(pcc(x, 2 * x + 1), 6)
    1.0
    """
    a = np.asarray(x)
    b = np.asarray(y)
    for arr, name in ((a, "x"), (b, "y")):
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
            raise ValueError(f"{name} must be a real-valued image, got dtype {arr.dtype}")
        _check_ndim(arr, name)
    if a.shape != b.shape:
        raise ValueError(f"x and y must have the same shape, got {a.shape} and {b.shape}")
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    for arr, name in ((a, "x"), (b, "y")):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must not contain NaN or infinite values")
    if mask is not None:
        m = _check_binary(mask, "mask")
        if m.shape != a.shape:
            raise ValueError(f"mask must have the shape of x {a.shape}, got {m.shape}")
        a, b = a[m], b[m]
    a = a.ravel()
    b = b.ravel()
    if a.size < 2:
        raise ValueError(f"x and y need at least 2 (masked) pixels, got {a.size}")
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    if den == 0.0:
        return 0.0
    return float(np.clip((a @ b) / den, -1.0, 1.0))


def iou(x, y) -> float:
    """Jaccard index |x & y| / |x | y| of two binary masks; 1 when both are empty (Bonte et al.).

    Parameters
    ----------
    x, y : array_like of bool (or 0/1 values)
        Binary masks of the same shape.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((4, 4), bool); a[:2] = True
    >>> b = np.zeros((4, 4), bool); b[1:3] = True
    >>> iou(a, b)  # 4 shared pixels of 12
    0.3333333333333333
    >>> iou(np.zeros((2, 2), bool), np.zeros((2, 2), bool))
    1.0
    """
    a = _check_binary(x, "x")
    b = _check_binary(y, "y")
    if a.shape != b.shape:
        raise ValueError(f"x and y must have the same shape, got {a.shape} and {b.shape}")
    union = int(np.count_nonzero(a | b))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(a & b)) / union


# ---------------------------------------------------------------------------------------------
# object level: the records
# ---------------------------------------------------------------------------------------------
_PER_THRESHOLD = ("tp", "fp", "fn", "precision", "recall", "f1", "ap", "mean_matched_iou")


@dataclass(frozen=True)
class Matching:
    """Object-level comparison of a predicted with a true label image, per IoU threshold.

    Arrays have one entry per threshold, in the order of ``thresholds``.

    Attributes
    ----------
    thresholds : tuple of float
        The IoU thresholds t (a match needs IoU >= t).
    n_true, n_pred : int
        Number of ground-truth and predicted objects.
    tp, fp, fn : ndarray
        Matched pairs; unmatched predictions; unmatched ground-truth objects.
    precision : ndarray
        TP / (TP + FP): the fraction of predicted objects that are right.
    recall : ndarray
        TP / (TP + FN): the fraction of true objects that were found.
    f1 : ndarray
        2 TP / (2 TP + FP + FN), the F1 score of Zaki et al. and Costa et al.
    ap : ndarray
        TP / (TP + FP + FN). Bonte et al. call it "precision"; the Data Science Bowl 2018 and
        Cellpose call it "average precision". Its mean over :data:`THRESHOLDS` is :attr:`mean_ap`.
    mean_matched_iou : ndarray
        Mean IoU of the matched pairs (``nan`` when nothing matched).
    matched_iou_sum : ndarray
        Sum of the IoUs of the matched pairs (lets datasets pool the mean).
    merges : int
        Predicted objects overlapping more than one true object with IoU >= 0.1 (Zaki et al.).
    splits : int
        True objects overlapping more than one predicted object with IoU >= 0.1 (Zaki et al.).

    Notes
    -----
    A ratio whose denominator is zero is 1 when both images are empty (nothing to find and
    nothing found is a perfect result, like :func:`iou`) and 0 otherwise (stardist's convention;
    Cellpose returns ``nan`` for two empty images).
    """

    thresholds: tuple
    n_true: int
    n_pred: int
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    ap: np.ndarray
    mean_matched_iou: np.ndarray
    matched_iou_sum: np.ndarray
    merges: int | float = 0
    splits: int | float = 0

    def _index(self, t: float) -> int:
        for i, s in enumerate(self.thresholds):
            if abs(s - float(t)) < 1e-9:
                return i
        raise KeyError(f"threshold {t!r} is not among this record's thresholds {self.thresholds}")

    def at(self, threshold: float) -> dict:
        """All per-threshold figures at one threshold, as a dict (e.g. ``m.at(0.7)["f1"]``)."""
        i = self._index(threshold)
        out = {"threshold": self.thresholds[i], "n_true": self.n_true, "n_pred": self.n_pred}
        for name in _PER_THRESHOLD:
            v = getattr(self, name)[i]
            out[name] = v.item() if hasattr(v, "item") else v
        out["merges"] = self.merges
        out["splits"] = self.splits
        return out

    def mean(self, name: str = "f1") -> float:
        """Mean of a per-threshold figure over all of this record's thresholds.

        With ``thresholds=iou_thresholds(0.1, 1.0, 0.1)``, ``m.mean("f1")`` is Costa et al.'s
        mean F1.
        """
        if name not in _PER_THRESHOLD:
            raise ValueError(f"name must be one of {_PER_THRESHOLD}, got {name!r}")
        return float(np.mean(getattr(self, name)))

    @property
    def mean_ap(self) -> float:
        """Mean of ``ap`` over the thresholds 0.50, 0.55, ..., 0.95 (Bonte et al.'s mAP)."""
        try:
            idx = [self._index(t) for t in THRESHOLDS]
        except KeyError:
            raise ValueError(
                "mean_ap needs the thresholds 0.50:0.05:0.95 (islteach.metrics.THRESHOLDS); "
                f"this record has {self.thresholds}. Use .mean('ap') for the mean over its own thresholds."
            ) from None
        return float(np.mean(np.asarray(self.ap)[idx]))

    @property
    def pq(self) -> np.ndarray:
        """Panoptic quality per threshold: sum of matched IoUs / (TP + FP/2 + FN/2).

        At IoU 0.5 this is Kirillov et al.'s PQ as stardist's ``panoptic_quality`` computes it
        (= mean matched IoU x F1), except that here a pair matches at IoU >= t and two empty
        images score 1. Meaningful for single images and ``DatasetMatching.summed`` (pooled).
        """
        tp = np.asarray(self.tp, dtype=np.float64)
        den = tp + np.asarray(self.fp, dtype=np.float64) / 2 + np.asarray(self.fn, dtype=np.float64) / 2
        both_empty = bool(np.all(np.asarray(self.n_true) == 0) and np.all(np.asarray(self.n_pred) == 0))
        return _ratio(self.matched_iou_sum, den, both_empty)

    def to_dict(self) -> dict:
        """Plain Python types (lists for per-threshold figures), ready for ``save_results``."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                v = v.tolist()
            elif isinstance(v, tuple):
                v = list(v)
            elif isinstance(v, np.generic):
                v = v.item()
            out[f.name] = v
        return out

    def table(self, digits: int = 3) -> str:
        """A plain-text table, one row per threshold."""
        head = ["t", "tp", "fp", "fn", "precision", "recall", "f1", "ap", "mean_iou"]
        rows = [head]
        for i, t in enumerate(self.thresholds):
            rows.append(
                [f"{t:g}"]
                + [f"{self.tp[i]:g}", f"{self.fp[i]:g}", f"{self.fn[i]:g}"]
                + [f"{getattr(self, k)[i]:.{digits}f}" for k in ("precision", "recall", "f1", "ap", "mean_matched_iou")]
            )
        widths = [max(len(r[j]) for r in rows) for j in range(len(head))]
        lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
        lines.append(f"objects: {self.n_true} true, {self.n_pred} predicted; merges {self.merges}, splits {self.splits}")
        return "\n".join(lines)


def _ratio(num, den, both_empty: bool) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    zero = den == 0
    if not zero.any():
        return num / den
    out = np.divide(num, den, out=np.zeros_like(num), where=~zero)
    if both_empty:
        out[zero] = 1.0
    return out


def _record(thresholds, n_true, n_pred, tp, matched_iou_sum, merges, splits) -> Matching:
    tp = np.asarray(tp)
    fp = n_pred - tp
    fn = n_true - tp
    both_empty = n_true == 0 and n_pred == 0
    matched_iou_sum = np.asarray(matched_iou_sum, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mmi = np.where(tp > 0, matched_iou_sum / np.maximum(tp, 1), np.nan)
    return Matching(
        thresholds=tuple(thresholds),
        n_true=n_true,
        n_pred=n_pred,
        tp=tp,
        fp=fp,
        fn=fn,
        precision=_ratio(tp, tp + fp, both_empty),
        recall=_ratio(tp, tp + fn, both_empty),
        f1=_ratio(2 * tp, 2 * tp + fp + fn, both_empty),
        ap=_ratio(tp, tp + fp + fn, both_empty),
        mean_matched_iou=mmi,
        matched_iou_sum=matched_iou_sum,
        merges=merges,
        splits=splits,
    )


# ---------------------------------------------------------------------------------------------
# object level: the core
# ---------------------------------------------------------------------------------------------
def _make_runs_loop(k: int):
    """Maximal runs of equal (a[i], b[i]) pairs of two flat arrays, read 8 bytes (``k`` pixels) at a time.

    A plain loop for numba: one read of each pixel, no temporary arrays. ``a8, b8`` are int64
    views of the first ``k * a8.size`` pixels of ``a`` and ``b`` (same itemsize, at least one
    word). Once the current run covers a whole word, every following
    word equal to it (most words: background and object interiors) costs one comparison per
    array; only the others, and the last pixels, are looked at pixel by pixel. Returns the
    number of runs m
    (``ra[:m], rb[:m], rl[:m]`` hold them) and the smallest and largest value of ``a`` and of
    ``b``, tracked at the run changes only. ``k`` is a constant of the compiled loop (numba
    unrolls the pixel loop; one compiled loop per k).
    """

    def loop(a, b, a8, b8, ra, rb, rl):  # pragma: no cover - compiled by numba (tested through _runs)
        n = a.size
        cx = a[0]
        cy = b[0]
        lo_a = hi_a = cx
        lo_b = hi_b = cy
        start = 0
        m = 0
        nw = a8.size
        whole = False  # does the current run cover the word (wa, wb)?
        wa = a8[0]
        wb = b8[0]
        for w in range(nw):
            if whole and a8[w] == wa and b8[w] == wb:
                continue
            for i in range(w * k, w * k + k):
                x = a[i]
                y = b[i]
                if (x != cx) | (y != cy):
                    ra[m] = cx
                    rb[m] = cy
                    rl[m] = i - start
                    m += 1
                    cx = x
                    cy = y
                    start = i
                    lo_a = min(lo_a, x)
                    hi_a = max(hi_a, x)
                    lo_b = min(lo_b, y)
                    hi_b = max(hi_b, y)
            whole = start <= w * k
            wa = a8[w]
            wb = b8[w]
        for i in range(nw * k, n):  # the last n % k pixels, one at a time (as above)
            x = a[i]
            y = b[i]
            if (x != cx) | (y != cy):
                ra[m] = cx
                rb[m] = cy
                rl[m] = i - start
                m += 1
                cx = x
                cy = y
                start = i
                lo_a = min(lo_a, x)
                hi_a = max(hi_a, x)
                lo_b = min(lo_b, y)
                hi_b = max(hi_b, y)
        ra[m] = cx
        rb[m] = cy
        rl[m] = n - start
        return m + 1, lo_a, hi_a, lo_b, hi_b

    return loop


def _dense_pairs_loop(ra, rb, rl, k, size):  # pragma: no cover - compiled by numba
    """Pixels per (a, b) pair from runs, via a dense matrix of ``size`` pair indices a * k + b.

    Returns rows, cols, counts of the non-empty pairs in pair-index order, the (0, 0) pair
    left out.
    """
    counts = np.zeros(size, np.int64)
    for j in range(ra.size):
        counts[ra[j] * k + rb[j]] += rl[j]
    counts[0] = 0
    nz = 0
    for q in range(size):
        if counts[q] != 0:
            nz += 1
    rows = np.empty(nz, np.int64)
    cols = np.empty(nz, np.int64)
    n = np.empty(nz, np.int64)
    j = 0
    for q in range(size):
        if counts[q] != 0:
            rows[j] = q // k
            cols[j] = q % k
            n[j] = counts[q]
            j += 1
    return rows, cols, n


_JIT = None


def _jit():
    """The numba-compiled loops, or None when numba is missing (numpy fallbacks then)."""
    global _JIT
    if _JIT is None:
        try:
            import numba

            _JIT = (numba.njit(nogil=True, cache=True)(_dense_pairs_loop),
                    {k: numba.njit(nogil=True, cache=True)(_make_runs_loop(k)) for k in (1, 2, 4, 8)})
        except Exception:  # numba missing or unusable
            _JIT = False
    return _JIT or None


def _runs(a: np.ndarray, b: np.ndarray):
    """Run-length encoding of the pixel pairs of two flat label arrays of the same length >= 1.

    Every pixel belongs to exactly one run of consecutive pixels with the same (true, pred)
    labels, so counting pixels per pair of labels only needs the runs. Returns ``values_a,
    values_b, lengths`` and ``(min a, max a, min b, max b)``. With numba (a dependency of
    Cellpose) one compiled pass over the pixels; without it the same runs from numpy (change
    points of either array, slower).
    """
    jit = _jit()
    k = 8 // a.itemsize if a.itemsize == b.itemsize <= 8 else 0  # pixels per 8-byte word
    nw = a.size // k if k else 0
    if jit is not None and nw > 0:  # (mixed dtypes, or fewer pixels than a word: numpy below)
        ra = np.empty(a.size, a.dtype)
        rb = np.empty(b.size, b.dtype)
        rl = np.empty(a.size, np.int64)
        try:
            m, lo_a, hi_a, lo_b, hi_b = jit[1][k](a, b, a[: nw * k].view(np.int64), b[: nw * k].view(np.int64),
                                                  ra, rb, rl)
        except Exception:  # a dtype numba cannot compile for: the numpy fallback
            pass
        else:
            return ra[:m], rb[:m], rl[:m], (int(lo_a), int(hi_a), int(lo_b), int(hi_b))
    va, vb, lengths = _runs_numpy(a, b)
    return va, vb, lengths, (int(va.min()), int(va.max()), int(vb.min()), int(vb.max()))


def _runs_numpy(a: np.ndarray, b: np.ndarray):
    """:func:`_runs` in numpy (change points of either array)."""
    change = np.empty(a.size, bool)
    change[0] = True
    np.not_equal(a[1:], a[:-1], out=change[1:])
    change[1:] |= b[1:] != b[:-1]
    starts = np.flatnonzero(change)
    return a[starts], b[starts], np.diff(starts, append=a.size)


def _check_low(low: int, name: str) -> None:
    if low < 0:
        raise ValueError(f"{name} must be a non-negative integer label array, got a minimum of {low}")


def _overlap_pairs(y_true: np.ndarray, y_pred: np.ndarray):
    """One pass over the pixels: the non-zero entries of the label-overlap matrix.

    Returns ``rows, cols, counts`` (label in y_true, label in y_pred, shared pixels) for every
    pair of labels that shares at least one pixel, background (label 0) included on either side
    but the background/background pair left out (it is not needed for any area).

    The pixels are first run-length encoded (:func:`_runs`: label images are piecewise
    constant, so a 520 x 696 BBBC039 pair has about 10,000 runs for 360,000 pixels); the
    negative-label check and the largest labels come with the runs, and the run lengths are
    summed per pair index ``true * (max pred + 1) + pred``. Raises ValueError (naming
    ``y_true`` or ``y_pred``) for a negative label.
    """
    empty = np.zeros(0, np.int64)
    if y_true.size == 0:
        return empty, empty, empty
    ra, rb, rl, (lo_t, nt, lo_p, npr) = _runs(np.ascontiguousarray(y_true).ravel(), np.ascontiguousarray(y_pred).ravel())
    _check_low(lo_t, "y_true")
    _check_low(lo_p, "y_pred")
    k = npr + 1
    size = (nt + 1) * k
    if size >= 2**62:  # astronomically large label values: compress them to 0..n first (0 stays 0)
        ut, it = np.unique(np.concatenate([np.zeros(1, ra.dtype), ra]), return_inverse=True)
        up, ip = np.unique(np.concatenate([np.zeros(1, rb.dtype), rb]), return_inverse=True)
        ra, rb = it[1:], ip[1:]
        k = int(ip.max()) + 1
        size = (int(it.max()) + 1) * k
    else:
        ut = up = None
    ra = ra.astype(np.int64, copy=False)
    rb = rb.astype(np.int64, copy=False)
    jit = _jit()
    if size <= max(4 * ra.size, 1 << 16):
        if jit is not None:
            rows, cols, n = jit[0](ra, rb, rl, k, size)
        else:
            counts = np.bincount(ra * k + rb, weights=rl, minlength=size)
            counts[0] = 0  # background in both
            flat = np.flatnonzero(counts)
            n = counts[flat].astype(np.int64)
            rows, cols = np.divmod(flat, k)
    else:  # sparse labels (huge ids): a dense matrix would be mostly zeros
        flat, inv = np.unique(ra * k + rb, return_inverse=True)
        n = np.bincount(inv.ravel(), weights=rl).astype(np.int64)
        if flat[0] == 0:  # background in both
            flat, n = flat[1:], n[1:]
        rows, cols = np.divmod(flat, k)
    if ut is not None:
        rows, cols = ut[rows], up[cols]
    return rows, cols, n


def _pairs_iou(y_true: np.ndarray, y_pred: np.ndarray):
    """IoU of every overlapping (true, pred) pair of objects, plus the object counts."""
    rows, cols, n = _overlap_pairs(y_true, y_pred)
    if rows.size and max(int(rows[-1]), int(cols.max())) <= 4 * rows.size + 1024:
        # small label values: areas by label value directly
        area_t = np.bincount(rows, weights=n)
        area_p = np.bincount(cols, weights=n)
        n_true = int(np.count_nonzero(area_t[1:]))
        n_pred = int(np.count_nonzero(area_p[1:]))
        both = (rows != 0) & (cols != 0)
        r, c = rows[both], cols[both]
        inter = n[both].astype(np.int64)
        union = area_t[r].astype(np.int64) + area_p[c].astype(np.int64) - inter
    else:
        t_ids, t_inv = np.unique(rows, return_inverse=True)
        p_ids, p_inv = np.unique(cols, return_inverse=True)
        area_t = np.bincount(t_inv, weights=n).astype(np.int64)
        area_p = np.bincount(p_inv, weights=n).astype(np.int64)
        n_true = int(np.count_nonzero(t_ids))
        n_pred = int(np.count_nonzero(p_ids))
        both = (rows != 0) & (cols != 0)
        r, c = rows[both], cols[both]
        inter = n[both].astype(np.int64)
        union = area_t[t_inv[both]] + area_p[p_inv[both]] - inter
    # one correctly rounded division of two integers: bit-identical to Cellpose's IoU
    ious = inter / union
    return r, c, ious, n_true, n_pred


def _degree(ids: np.ndarray) -> np.ndarray:
    """For each entry of ``ids``, how often its value occurs in ``ids``."""
    if int(ids.max()) <= 4 * ids.size + 1024:  # small label values: count by value
        return np.bincount(ids)[ids]
    _, inv, cnt = np.unique(ids, return_inverse=True, return_counts=True)
    return cnt[inv.ravel()]


def _max_matching(r, c, ious, t):
    """Largest one-to-one set of pairs with IoU >= t; among those, the largest total IoU.

    Same optimum as Cellpose's ``linear_sum_assignment`` on ``-(iou >= t) - iou / (2 n_min)``
    (the count of matches first, then the IoU). Pairs whose two objects have no other candidate
    partner are matched directly; only the rest (objects with two or more candidates) goes
    through ``linear_sum_assignment``.
    Returns (number of pairs, sum of their IoU, boolean mask of the chosen input pairs).
    """
    keep = np.flatnonzero(ious >= t)
    chosen = np.zeros(ious.size, bool)
    if keep.size == 0:
        return 0, 0.0, chosen
    rk, ck, vk = r[keep], c[keep], ious[keep]
    # in a connected group of two or more pairs every pair touches an object of degree >= 2
    lone = (_degree(rk) == 1) & (_degree(ck) == 1)
    chosen[keep[lone]] = True
    n, total = int(lone.sum()), float(vk[lone].sum())
    rest = np.flatnonzero(~lone)
    if rest.size:
        ur, rj = np.unique(rk[rest], return_inverse=True)
        uc, cj = np.unique(ck[rest], return_inverse=True)
        w = np.zeros((ur.size, uc.size))
        w[rj, cj] = vk[rest]
        pair = np.full((ur.size, uc.size), -1)
        pair[rj, cj] = keep[rest]
        kmin = min(ur.size, uc.size)
        a, b = linear_sum_assignment(-(w > 0).astype(np.float64) - w / (2 * kmin))
        ok = w[a, b] > 0
        chosen[pair[a[ok], b[ok]]] = True
        n += int(ok.sum())
        total += float(w[a[ok], b[ok]].sum())
    return n, total, chosen


def _largest_runner_up(groups, values_desc):
    """Largest value that is not the maximum of its group (values given in descending order)."""
    _, first = np.unique(groups, return_index=True)
    rest = np.ones(values_desc.size, bool)
    rest[first] = False
    return float(values_desc[rest][0]) if rest.any() else -1.0


def _match_counts(r, c, ious, thresholds):
    """TP and matched-IoU sum for every threshold from the overlapping pairs."""
    T = len(thresholds)
    tp = np.zeros(T, dtype=np.int64)
    msum = np.zeros(T, dtype=np.float64)
    if ious.size == 0:
        return tp, msum
    order = np.argsort(-ious, kind="stable")
    v = ious[order]
    # `conflict`: the largest IoU at which some object has two candidate partners. Above it, all
    # pairs with IoU >= t already form a one-to-one matching and are simply counted.
    # Two partners of one object have IoUs summing to at most 1 (the partners are disjoint and
    # each covers IoU * |object| of it), so for t >= 0.5 a conflict needs two pairs at exactly 0.5.
    if min(thresholds) >= 0.5:
        # only a conflict at exactly 0.5 matters: an object in two pairs of IoU 0.5
        half = ious == 0.5
        dup = np.count_nonzero(half) >= 2 and (
            np.unique(r[half]).size < np.count_nonzero(half) or np.unique(c[half]).size < np.count_nonzero(half))
        conflict = 0.5 if dup else -1.0
    else:
        conflict = max(_largest_runner_up(r[order], v), _largest_runner_up(c[order], v))
    csum = np.cumsum(v)
    ths = np.asarray(thresholds, dtype=np.float64)
    # number of pairs with IoU >= t, for every t at once (v is descending, so search -v)
    counts = np.searchsorted(-v, -ths, side="right")
    for i, t in enumerate(thresholds):
        if t > conflict:
            k = int(counts[i])
            tp[i] = k
            msum[i] = csum[k - 1] if k else 0.0
        else:
            tp[i], msum[i], _ = _max_matching(r, c, ious, t)
    return tp, msum


def _error_types(r, c, ious, min_iou=0.1):
    """(merges, splits): objects with more than one partner at IoU >= min_iou (Zaki et al.)."""
    sel = ious >= min_iou
    if not sel.any():
        return 0, 0
    out = []
    for ids in (c[sel], r[sel]):
        if int(ids.max()) <= 4 * ids.size + 1024:
            per = np.bincount(ids)
        else:
            _, per = np.unique(ids, return_counts=True)
        out.append(int(np.count_nonzero(per > 1)))
    return out[0], out[1]


def _check_pair(y_true, y_pred, ndims=(2, 3)):
    """Type, dimension and shape checks of a label pair (negative labels: see _overlap_pairs)."""
    yt = _check_label_type(y_true, "y_true", ndims)
    yp = _check_label_type(y_pred, "y_pred", ndims)
    if yt.shape != yp.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {yt.shape} and {yp.shape}")
    return yt, yp


def matching(y_true, y_pred, thresholds=THRESHOLDS) -> Matching:
    """Match predicted to true objects at every IoU threshold (one overlap matrix for all).

    Parameters
    ----------
    y_true, y_pred : array_like of int
        Ground-truth and predicted instance labels of the same shape (0 = background, each
        positive value one object; labels need not be consecutive).
    thresholds : float or sequence of float, default :data:`THRESHOLDS`
        IoU thresholds in (0, 1]; a pair matches when its IoU is >= t. Use exact decimals
        (:func:`iou_thresholds`); 1.0 is allowed (only pixel-perfect objects match).

    Returns
    -------
    Matching
        Per-threshold ``tp, fp, fn, precision, recall, f1, ap, mean_matched_iou``, plus
        ``merges``, ``splits``, ``n_true``, ``n_pred``; ``.mean_ap``, ``.at(t)``, ``.table()``.

    Notes
    -----
    Counts agree exactly with ``cellpose.metrics.average_precision`` (for labels without gaps):
    the overlap matrix comes from one pass over the pixels (a run-length encoding, compiled with
    numba when available; label images are piecewise constant), IoU is computed with the same
    integer arithmetic, and at every threshold the matching has the largest possible
    number of pairs with IoU >= t. Above IoU 0.5 the pairs cannot conflict and are simply
    counted; only thresholds at which an object has two candidate partners go through
    ``scipy.optimize.linear_sum_assignment``, on that small sub-problem.

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.zeros((10, 20), int); gt[2:8, 2:12] = 1          # one nucleus
    >>> pred = np.zeros_like(gt); pred[2:8, 2:7] = 1; pred[2:8, 7:12] = 2  # cut in two halves
    >>> m = matching(gt, pred, thresholds=[0.5, 0.6])
    >>> m.tp.tolist(), m.fp.tolist(), m.fn.tolist()  # each half has IoU 0.5 exactly
    ([1, 0], [1, 2], [0, 1])
    >>> m.splits, m.merges
    (1, 0)
    """
    ths = _check_thresholds(thresholds)
    yt, yp = _check_pair(y_true, y_pred)
    r, c, ious, n_true, n_pred = _pairs_iou(yt, yp)
    tp, msum = _match_counts(r, c, ious, ths)
    merges, splits = _error_types(r, c, ious)
    return _record(ths, n_true, n_pred, tp, msum, merges, splits)


def match_pairs(y_true, y_pred, threshold: float = 0.5):
    """The matched pairs themselves at one threshold, e.g. to colour TP / FP / FN objects.

    Parameters
    ----------
    y_true, y_pred : array_like of int
        Instance label images of the same shape.
    threshold : float
        IoU threshold (a pair matches when IoU >= threshold).

    Returns
    -------
    true_ids, pred_ids : ndarray of int
        Labels of the matched objects (same length; pair i is ``true_ids[i], pred_ids[i]``).
    ious : ndarray of float
        IoU of each matched pair.

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.array([[1, 1, 0, 2, 2]]); pred = np.array([[3, 3, 3, 0, 0]])
    >>> match_pairs(gt, pred, 0.5)
    (array([1]), array([3]), array([0.66666667]))
    """
    (t,) = _check_thresholds([threshold])
    yt, yp = _check_pair(y_true, y_pred)
    r, c, ious, _, _ = _pairs_iou(yt, yp)
    _, _, chosen = _max_matching(r, c, ious, t)
    o = np.argsort(r[chosen], kind="stable")
    return r[chosen][o], c[chosen][o], ious[chosen][o]


def mean_ap(y_true, y_pred) -> float:
    """Bonte et al.'s mAP: the mean of TP/(TP+FP+FN) over IoU thresholds 0.50:0.05:0.95.

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.zeros((8, 8), int); gt[1:5, 1:5] = 1
    >>> mean_ap(gt, gt)
    1.0
    """
    return matching(y_true, y_pred, THRESHOLDS).mean_ap


# ---------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetMatching:
    """Matching over many images, aggregated two ways.

    Attributes
    ----------
    per_image : tuple of Matching
        One record per image.
    summed : Matching
        Counts (tp, fp, fn, objects, merges, splits) summed over all images, every ratio then
        computed from the sums: each *object* weighs the same ("object-level", stardist's
        ``by_image=False``).
    image_mean : Matching
        Every figure averaged over images (counts become floats): each *image* weighs the same
        (Bonte et al. report mean +/- std over images). ``image_mean.mean_ap`` is the mean of
        the per-image mAPs. ``mean_matched_iou`` is averaged over images where something matched.
    """

    per_image: tuple
    summed: Matching
    image_mean: Matching

    @property
    def thresholds(self) -> tuple:
        return self.summed.thresholds

    def values(self, name: str) -> np.ndarray:
        """Per-image values of a figure, shape (n_images, n_thresholds), e.g. for a std or boxplot."""
        if name not in _PER_THRESHOLD:
            raise ValueError(f"name must be one of {_PER_THRESHOLD}, got {name!r}")
        return np.stack([np.asarray(getattr(m, name), dtype=np.float64) for m in self.per_image])

    def image_std(self, name: str) -> np.ndarray:
        """Standard deviation over images of a per-threshold figure (``ddof=0``)."""
        return np.nanstd(self.values(name), axis=0)

    def to_dict(self) -> dict:
        return {
            "n_images": len(self.per_image),
            "summed": self.summed.to_dict(),
            "image_mean": self.image_mean.to_dict(),
        }


def _matching_named(y_true, y_pred, ths, i: int) -> Matching:
    """:func:`matching` of image i of a dataset; errors name ``ys_true[i]`` / ``ys_pred[i]``."""
    try:
        return matching(y_true, y_pred, ths)
    except ValueError as err:
        msg = re.sub(r"\by_(true|pred)\b", lambda m: f"ys_{m.group(1)}[{i}]", str(err))
        raise ValueError(msg) from err


def matching_dataset(ys_true, ys_pred, thresholds=THRESHOLDS) -> DatasetMatching:
    """:func:`matching` for many image pairs, aggregated by summed counts and by image means.

    Parameters
    ----------
    ys_true, ys_pred : sequence of label arrays, or arrays of shape (N, H, W)
        Ground-truth and predicted label images, paired in order (same number of each).
    thresholds : float or sequence of float, default :data:`THRESHOLDS`

    Returns
    -------
    DatasetMatching
        ``.summed`` (object-level), ``.image_mean`` (image-level), ``.per_image``.

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.zeros((2, 8, 8), int); gt[:, 1:5, 1:5] = 1
    >>> pred = gt.copy(); pred[1] = 0                       # second image: nothing found
    >>> d = matching_dataset(gt, pred, thresholds=[0.5])
    >>> d.summed.f1.tolist(), d.image_mean.f1.tolist()
    ([0.6666666666666666], [0.5])
    """
    ths = _check_thresholds(thresholds)
    ys_true = list(ys_true)
    ys_pred = list(ys_pred)
    if len(ys_true) != len(ys_pred):
        raise ValueError(f"ys_true and ys_pred must hold the same number of images, got {len(ys_true)} and {len(ys_pred)}")
    if len(ys_true) == 0:
        raise ValueError("ys_true and ys_pred must hold at least one image each")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # thresholds were already checked (and warned about) once
        per = tuple(_matching_named(a, b, ths, i) for i, (a, b) in enumerate(zip(ys_true, ys_pred)))
    tp = np.sum([m.tp for m in per], axis=0)
    summed = _record(
        ths,
        int(sum(m.n_true for m in per)),
        int(sum(m.n_pred for m in per)),
        tp,
        np.sum([m.matched_iou_sum for m in per], axis=0),
        int(sum(m.merges for m in per)),
        int(sum(m.splits for m in per)),
    )

    def avg(name):
        return np.mean(np.stack([np.asarray(getattr(m, name), dtype=np.float64) for m in per]), axis=0)

    mmi = np.stack([m.mean_matched_iou for m in per])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan columns stay nan
        mmi_mean = np.nanmean(mmi, axis=0)
    image_mean = Matching(
        thresholds=ths,
        n_true=float(np.mean([m.n_true for m in per])),
        n_pred=float(np.mean([m.n_pred for m in per])),
        tp=avg("tp"),
        fp=avg("fp"),
        fn=avg("fn"),
        precision=avg("precision"),
        recall=avg("recall"),
        f1=avg("f1"),
        ap=avg("ap"),
        mean_matched_iou=mmi_mean,
        matched_iou_sum=avg("matched_iou_sum"),
        merges=float(np.mean([m.merges for m in per])),
        splits=float(np.mean([m.splits for m in per])),
    )
    return DatasetMatching(per_image=per, summed=summed, image_mean=image_mean)


def _as_image_list(ys, name: str) -> list:
    """A label image (2-D array) as a one-image list; a list, tuple or (N, H, W) array as it is."""
    if isinstance(ys, np.ndarray) and ys.ndim == 2:
        return [ys]
    if isinstance(ys, (list, tuple)) or (isinstance(ys, np.ndarray) and ys.ndim == 3):
        return list(ys)
    raise ValueError(
        f"{name} must be a 2-D label image, a list of them or an (N, H, W) array, got "
        f"{type(ys).__name__}{' of shape ' + str(ys.shape) if isinstance(ys, np.ndarray) else ''}"
    )


def _key(t: float) -> str:
    return f"{t:g}"


def score_record(ys_true, ys_pred, thresholds=THRESHOLDS, *, error_iou: float = 0.7) -> dict:
    """The one scoring record of chapters 2, 4 and 5: pooled F1, image-mean AP and mAP, PQ, errors.

    Parameters
    ----------
    ys_true, ys_pred : label image, list of label images, or (N, H, W) array
        Ground-truth and predicted instance labels, paired in order. A single 2-D label image
        is one image.
    thresholds : sequence of float, default :data:`THRESHOLDS`
        IoU thresholds of the ``f1`` and ``ap`` entries (exact decimals, see
        :func:`iou_thresholds`).
    error_iou : float, keyword-only
        IoU at which the ``errors`` entry counts matches (0.7, Zaki et al.'s object level).

    Returns
    -------
    dict
        Plain Python types, ready for a results file (one pass of :func:`matching_dataset`):

        ``thresholds``
            The thresholds, as a list of floats.
        ``f1``
            ``{f"{t:g}": F1}`` with the objects of all images pooled (``summed.f1``).
        ``ap``
            ``{f"{t:g}": TP / (TP + FP + FN)}`` averaged over images (``image_mean.ap``).
        ``mAP``
            Bonte et al.'s mAP over 0.50:0.05:0.95, averaged over images
            (``image_mean.mean_ap``), whatever ``thresholds`` are.
        ``mean_matched_iou``
            Mean IoU of the matched pairs at IoU 0.5, pooled (None when nothing matched).
        ``pq``
            Panoptic quality at IoU 0.5, pooled: sum of matched IoUs / (TP + FP/2 + FN/2)
            (:attr:`Matching.pq`).
        ``errors``
            Pooled counts at ``error_iou``: ``iou``, ``tp``, ``fp``, ``fn``, ``merges``,
            ``splits`` (Zaki et al., overlaps with IoU >= 0.1), ``n_true``, ``n_pred``.

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.zeros((10, 20), int); gt[2:8, 2:12] = 1
    >>> r = score_record(gt, gt, thresholds=[0.5, 0.9])
    >>> r["f1"], r["mAP"], r["pq"], r["errors"]["tp"]
    ({'0.5': 1.0, '0.9': 1.0}, 1.0, 1.0, 1)
    """
    ths = _check_thresholds(thresholds)
    if isinstance(error_iou, bool) or not isinstance(error_iou, (int, float, np.integer, np.floating)) \
            or not 0 < float(error_iou) <= 1:
        raise ValueError(f"error_iou must be an IoU threshold in (0, 1], got {error_iou!r}")
    (error_iou,) = _check_thresholds([error_iou])
    yt = _as_image_list(ys_true, "ys_true")
    yp = _as_image_list(ys_pred, "ys_pred")
    # one matching for every threshold needed (the counts at one threshold do not depend on
    # the others): the requested ones, the mAP's, 0.5 (PQ) and error_iou
    every = tuple(sorted(set(ths) | set(THRESHOLDS) | {0.5, error_iou}))
    d = matching_dataset(yt, yp, every)
    s, im = d.summed, d.image_mean
    i5, ie = s._index(0.5), s._index(error_iou)
    mmi = float(s.mean_matched_iou[i5])
    return {
        "thresholds": [float(t) for t in ths],
        "f1": {_key(t): float(s.f1[s._index(t)]) for t in ths},
        "ap": {_key(t): float(im.ap[im._index(t)]) for t in ths},
        "mAP": float(im.mean_ap),
        "mean_matched_iou": None if math.isnan(mmi) else mmi,
        "pq": float(s.pq[i5]),
        "errors": {
            "iou": float(error_iou),
            "tp": int(s.tp[ie]),
            "fp": int(s.fp[ie]),
            "fn": int(s.fn[ie]),
            "merges": int(s.merges),
            "splits": int(s.splits),
            "n_true": int(s.n_true),
            "n_pred": int(s.n_pred),
        },
    }


# ---------------------------------------------------------------------------------------------
# objects behind the counts: which object makes which error
# ---------------------------------------------------------------------------------------------
def error_objects(y_true, y_pred, threshold: float = 0.7, min_iou: float = 0.1) -> dict:
    """Which objects make which error, to see and fix them (the error types of Zaki et al.).

    Parameters
    ----------
    y_true, y_pred : ndarray of int (H, W)
        Reference and candidate labels.
    threshold : float
        IoU at which a pair counts as a match (IoU >= threshold; for threshold > 0.5 a match
        is unique). Use :func:`matching` for the counts at many thresholds.
    min_iou : float
        Overlap (IoU) that counts for merges and splits (0.1, as in Zaki et al.).

    Returns
    -------
    dict
        ``"matches"``: list of (true id, pred id, IoU); ``"false_positives"``: predicted ids
        without a match; ``"false_negatives"``: true ids without a match; ``"merges"``: {pred id:
        [true ids]} for predicted objects overlapping several true ones with IoU >= ``min_iou``;
        ``"splits"``: {true id: [pred ids]} likewise.

    Examples
    --------
    >>> gt = np.array([[1, 1, 0, 2, 2]]); pred = np.array([[5, 5, 5, 5, 5]])
    >>> e = error_objects(gt, pred, 0.5)
    >>> e["merges"], e["false_negatives"], e["false_positives"]
    ({5: [1, 2]}, [1, 2], [5])
    """
    yt, yp = _check_pair(y_true, y_pred, ndims=(2,))
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)) \
            or not 0 < threshold <= 1:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold!r}")
    rows, cols, _ = _overlap_pairs(yt, yp)
    true_ids = np.unique(rows[rows > 0])  # every object overlaps something (at least background)
    pred_ids = np.unique(cols[cols > 0])
    r, c, iou, _, _ = _pairs_iou(yt, yp)
    if threshold > 0.5:
        sel = iou >= threshold
        matches = [(int(a), int(b), float(v)) for a, b, v in zip(r[sel], c[sel], iou[sel])]
    else:
        _, _, chosen = _max_matching(r, c, iou, float(threshold))
        matches = [(int(a), int(b), float(v)) for a, b, v in zip(r[chosen], c[chosen], iou[chosen])]
    mt = {m[0] for m in matches}
    mp = {m[1] for m in matches}
    sel = iou >= min_iou
    merges, splits = {}, {}
    for a, b in zip(r[sel], c[sel]):
        merges.setdefault(int(b), []).append(int(a))
        splits.setdefault(int(a), []).append(int(b))
    return {
        "matches": sorted(matches),
        "false_positives": [int(i) for i in pred_ids if int(i) not in mp],
        "false_negatives": [int(i) for i in true_ids if int(i) not in mt],
        "merges": {k: sorted(v) for k, v in sorted(merges.items()) if len(v) > 1},
        "splits": {k: sorted(v) for k, v in sorted(splits.items()) if len(v) > 1},
    }


def best_iou_per_object(y_true, y_pred) -> dict:
    """For every true object: its area and its best IoU with any predicted object.

    Handy to see how a score depends on object size (small nuclei lose IoU fastest when their
    border is off by one pixel, Zaki et al.).

    Returns
    -------
    dict
        ``ids``, ``area`` (pixels), ``best_iou`` (0 when nothing overlaps): arrays of equal length.

    Examples
    --------
    >>> gt = np.array([[1, 1, 0, 2]]); pred = np.array([[1, 0, 0, 2]])
    >>> best_iou_per_object(gt, pred)["best_iou"].tolist()
    [0.5, 1.0]
    """
    yt, yp = _check_pair(y_true, y_pred, ndims=(2,))
    rows, cols, n = _overlap_pairs(yt, yp)
    obj = rows > 0
    ids, inv = np.unique(rows[obj], return_inverse=True)
    area = np.bincount(inv.ravel(), weights=n[obj], minlength=ids.size).astype(np.int64)
    best = np.zeros(ids.size)
    r, _, iou, _, _ = _pairs_iou(yt, yp)
    if r.size:
        np.maximum.at(best, np.searchsorted(ids, r), iou)
    return {"ids": ids.astype(yt.dtype), "area": area, "best_iou": best}
