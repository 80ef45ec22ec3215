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
    (``merges``, ``splits``). :func:`matching_dataset` aggregates over images, both by summing
    the counts (``summed``) and by averaging per-image figures (``image_mean``).

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
    "perturb_labels",
    "PERTURBATIONS",
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


def _labels_and_max(labels, name: str, ndims=(2, 3)):
    """Validate a label array and return it with its largest label (one pass over the pixels)."""
    arr = np.asarray(labels)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        hint = " (label a binary mask first, e.g. skimage.measure.label(mask))" if arr.dtype == bool else ""
        raise ValueError(f"{name} must be a non-negative integer label array, got dtype {arr.dtype}{hint}")
    if ndims is not None and arr.ndim not in ndims:
        raise ValueError(f"{name} must be a 2-D label image (or a 3-D label volume), got shape {arr.shape}")
    if arr.ndim == 0:
        raise ValueError(f"{name} must be a label array, got a scalar")
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
    out = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    if both_empty:
        out[den == 0] = 1.0
    return out


def _record(thresholds, n_true, n_pred, tp, matched_iou_sum, merges, splits) -> Matching:
    tp = np.asarray(tp)
    fp = n_pred - tp
    fn = n_true - tp
    both_empty = bool(np.all(np.asarray(n_true) == 0) and np.all(np.asarray(n_pred) == 0))
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
def _overlap_pairs(y_true: np.ndarray, y_pred: np.ndarray, nt: int | None = None, npr: int | None = None):
    """One pass over the pixels: the non-zero entries of the label-overlap matrix.

    Returns ``rows, cols, counts`` (label in y_true, label in y_pred, shared pixels) for every
    pair of labels that shares at least one pixel, background (label 0) included on either side
    but the background/background pair left out (it is not needed for any area).
    """
    if nt is None:
        nt = int(y_true.max()) if y_true.size else 0
    if npr is None:
        npr = int(y_pred.max()) if y_pred.size else 0
    k = npr + 1
    size = (nt + 1) * k
    if size >= 2**62:  # astronomically large label values: compress them to 0..n first (0 stays 0)
        ut, it = np.unique(np.concatenate([np.zeros(1, y_true.dtype), y_true.ravel()]), return_inverse=True)
        up, ip = np.unique(np.concatenate([np.zeros(1, y_pred.dtype), y_pred.ravel()]), return_inverse=True)
        rows, cols, n = _overlap_pairs(it[1:].reshape(y_true.shape), ip[1:].reshape(y_pred.shape))
        return ut[rows], up[cols], n
    # pair index true * k + pred in the narrowest integer type that holds it (less memory traffic)
    dtype = np.uint16 if size <= 2**16 else np.int32 if size < 2**31 else np.int64
    idx = np.multiply(y_true, k, dtype=dtype, casting="unsafe").ravel()
    idx += y_pred.astype(dtype, copy=False).ravel()  # a same-type add is much faster than a casting one
    idx = idx[idx != 0]  # background in both: not needed, and usually most of the pixels
    if size <= max(4 * idx.size, 1 << 16):
        counts = np.bincount(idx, minlength=size)
        flat = np.flatnonzero(counts)
        n = counts[flat]
    else:  # sparse labels (huge ids): a dense matrix would be mostly zeros
        flat, n = np.unique(idx, return_counts=True)
    rows, cols = np.divmod(flat.astype(np.int64, copy=False), k)
    return rows, cols, n


def _pairs_iou(y_true: np.ndarray, y_pred: np.ndarray, nt: int | None = None, npr: int | None = None):
    """IoU of every overlapping (true, pred) pair of objects, plus the object counts."""
    rows, cols, n = _overlap_pairs(y_true, y_pred, nt, npr)
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
    _, ri, rn = np.unique(rk, return_inverse=True, return_counts=True)
    _, ci, cn = np.unique(ck, return_inverse=True, return_counts=True)
    # in a connected group of two or more pairs every pair touches an object of degree >= 2
    lone = (rn[ri] == 1) & (cn[ci] == 1)
    chosen[keep[lone]] = True
    n, total = int(lone.sum()), float(vk[lone].sum())
    rest = np.flatnonzero(~lone)
    if rest.size:
        ur, rj = np.unique(ri[rest], return_inverse=True)
        uc, cj = np.unique(ci[rest], return_inverse=True)
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
    if min(thresholds) >= 0.5 and np.count_nonzero(v == 0.5) < 2:
        conflict = -1.0
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
    order = np.argsort(-ious, kind="stable")
    v = ious[order]
    rs, cs = r[order], c[order]
    # above this IoU every object has at most one partner, so all pairs >= t form a matching
    # (always true for t > 0.5: two disjoint objects cannot both have IoU > 0.5 with a third)
    conflict = max(_largest_runner_up(rs, v), _largest_runner_up(cs, v))
    asc = v[::-1]
    csum = np.cumsum(v)
    for i, t in enumerate(thresholds):
        if t > conflict:
            k = v.size - int(np.searchsorted(asc, t, side="left"))
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


def _check_pair(y_true, y_pred):
    yt, nt = _labels_and_max(y_true, "y_true")
    yp, npr = _labels_and_max(y_pred, "y_pred")
    if yt.shape != yp.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {yt.shape} and {yp.shape}")
    return yt, yp, nt, npr


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
    the overlap matrix comes from one ``np.bincount`` pass over the pixels, IoU is computed with
    the same integer arithmetic, and at every threshold the matching has the largest possible
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
    yt, yp, nt, npr = _check_pair(y_true, y_pred)
    r, c, ious, n_true, n_pred = _pairs_iou(yt, yp, nt, npr)
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
    yt, yp, nt, npr = _check_pair(y_true, y_pred)
    r, c, ious, _, _ = _pairs_iou(yt, yp, nt, npr)
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
        per = tuple(matching(a, b, ths) for a, b in zip(ys_true, ys_pred))
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


# ---------------------------------------------------------------------------------------------
# realistic errors, to test metrics and to show what each error does to the scores
# ---------------------------------------------------------------------------------------------
PERTURBATIONS = ("keep", "erode", "dilate", "shift", "merge", "split", "drop")


def perturb_labels(
    labels,
    seed: int = 0,
    probs: dict | None = None,
    n_spurious: int = 3,
) -> np.ndarray:
    """A "prediction" made from ground truth with the errors real segmentations make.

    Each object independently is kept, eroded or dilated by 1-2 pixels, shifted by 1-3 pixels,
    merged with a touching neighbour, cut in two along a line through its centre, or dropped;
    ``n_spurious`` small false objects are added in the background. Dilations, shifts and
    spurious objects only take background pixels. The result is relabelled 1..n in random order
    (no gaps), so label values never line up with the ground truth by accident.

    Parameters
    ----------
    labels : array_like of int, 2-D
        Ground-truth instance labels.
    seed : int
        Random seed (the same seed gives the same prediction).
    probs : dict, optional
        Probability of each action in :data:`PERTURBATIONS` (normalised to sum to 1). Default:
        keep 0.3, erode 0.2, dilate 0.2, shift 0.1, merge 0.08, split 0.07, drop 0.05.
    n_spurious : int
        Number of false objects (discs of radius 3-8) added in the background.

    Returns
    -------
    ndarray of int32, same shape as ``labels``

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.zeros((40, 40), int); gt[5:15, 5:15] = 1; gt[20:30, 20:32] = 2
    >>> pred = perturb_labels(gt, seed=1)
    >>> pred.shape, pred.dtype
    ((40, 40), dtype('int32'))
    """
    from scipy import ndimage as ndi

    lab = check_labels(labels, "labels")
    if lab.ndim != 2:
        raise ValueError(f"labels must be 2-D, got shape {lab.shape}")
    p = {"keep": 0.3, "erode": 0.2, "dilate": 0.2, "shift": 0.1, "merge": 0.08, "split": 0.07, "drop": 0.05}
    if probs is not None:
        unknown = set(probs) - set(PERTURBATIONS)
        if unknown:
            raise ValueError(f"probs has unknown actions {sorted(unknown)}; known: {PERTURBATIONS}")
        p = {k: float(probs.get(k, 0.0)) for k in PERTURBATIONS}
    w = np.array([p.get(k, 0.0) for k in PERTURBATIONS], dtype=np.float64)
    if w.sum() <= 0 or (w < 0).any():
        raise ValueError("probs must be non-negative and not all zero")
    rng = np.random.default_rng(seed)
    H, W = lab.shape
    out = np.zeros((H, W), np.int64)
    slices = ndi.find_objects(lab)
    ids = [i + 1 for i, s in enumerate(slices) if s is not None]
    actions = dict(zip(ids, rng.choice(len(PERTURBATIONS), size=len(ids), p=w / w.sum())))
    free = lab == 0  # pixels a growing object may take
    next_id = 1
    merged = set()
    m = 3  # margin around each object's box

    def box(i):
        s = slices[i - 1]
        return (slice(max(s[0].start - m, 0), min(s[0].stop + m, H)), slice(max(s[1].start - m, 0), min(s[1].stop + m, W)))

    def paint(bb, mask, value, own=None):
        region = out[bb]
        allowed = (region == 0) & (free[bb] | (own if own is not None else False))
        region[mask & allowed] = value

    for i in ids:
        if i in merged:
            continue
        a = PERTURBATIONS[actions[i]]
        bb = box(i)
        obj = lab[bb] == i
        if a == "drop":
            continue
        if a == "merge":
            ring = ndi.binary_dilation(obj, iterations=2) & ~obj
            nb = np.unique(lab[bb][ring])
            nb = [int(j) for j in nb if j != 0 and j != i and j not in merged]
            if nb:
                j = nb[int(rng.integers(len(nb)))]
                merged.add(j)
                for k, o in ((i, obj), (j, None)):
                    bk = box(k)
                    ok = lab[bk] == k
                    # close the gap between the two so that they really form one object
                    paint(bk, ndi.binary_closing(ok, iterations=1) | ok, next_id, own=ok)
                bridge = ndi.binary_dilation(obj, iterations=2) & ndi.binary_dilation(lab[bb] == j, iterations=2)
                paint(bb, bridge, next_id)
                next_id += 1
                continue
            a = "keep"
        if a == "erode":
            e = ndi.binary_erosion(obj, iterations=int(rng.integers(1, 3)))
            obj = e if e.any() else obj
        elif a == "dilate":
            obj = ndi.binary_dilation(obj, iterations=int(rng.integers(1, 3)))
        elif a == "shift":
            d = rng.integers(1, 4, size=2) * rng.choice([-1, 1], size=2)
            obj = np.roll(obj, tuple(int(x) for x in d), axis=(0, 1))
        if a == "split":
            yy, xx = np.nonzero(obj)
            cy, cx = yy.mean(), xx.mean()
            ang = rng.uniform(0, np.pi)
            gy, gx = np.mgrid[: obj.shape[0], : obj.shape[1]]
            side = (gy - cy) * np.cos(ang) - (gx - cx) * np.sin(ang) > 0
            own = lab[bb] == i
            paint(bb, obj & side, next_id, own=own)
            paint(bb, obj & ~side, next_id + 1, own=own)
            next_id += 2
        else:
            paint(bb, obj, next_id, own=lab[bb] == i)
            next_id += 1
    yy, xx = np.mgrid[-8:9, -8:9]
    for _ in range(int(n_spurious)):
        r = int(rng.integers(3, 9))
        disc = yy**2 + xx**2 <= r * r
        cy, cx = int(rng.integers(8, H - 8)), int(rng.integers(8, W - 8))
        bb = (slice(cy - 8, cy + 9), slice(cx - 8, cx + 9))
        paint(bb, disc, next_id)
        next_id += 1
    # relabel 1..n in random order, no gaps
    present = np.unique(out)
    present = present[present != 0]
    lut = np.zeros(next_id + 1, np.int32)
    lut[present] = rng.permutation(present.size).astype(np.int32) + 1
    return lut[out]
