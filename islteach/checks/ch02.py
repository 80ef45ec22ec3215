"""Checks of chapter 2's code exercises (Cellpose ground truth). See :mod:`islteach.checks`.

- ``ex-02-iou-matrix``: :func:`islteach.groundtruth.iou_matrix`, the IoU of every pair of a
  true and a predicted object;
- ``ex-02-match-at``: :func:`islteach.groundtruth.match_at`, TP / FP / FN and F1 at one IoU
  threshold.

The cases are small label images whose answers are known exactly (rectangles and strips whose
IoUs are simple fractions), plus the StarDist sample (125 nuclei with label values up to 183)
against a copy whose nuclei are one pixel smaller, compared with the package, when that sample
is on disk (it is never downloaded by a check).
"""
from __future__ import annotations

import functools

import numpy as np

from . import Case, close, register


# ----------------------------------------------------------------------------- small label images
def _one_shifted_square():
    """A 4x4 square and the same square shifted by 2 columns: 8 shared pixels of 24."""
    t = np.zeros((6, 8), np.int32)
    p = np.zeros_like(t)
    t[1:5, 0:4] = 1
    p[1:5, 2:6] = 1
    return t, p


def _two_and_three():
    """Two true objects, three predicted ones, with exact IoUs (rows: true, columns: predicted)."""
    t = np.zeros((4, 12), np.int32)
    p = np.zeros_like(t)
    t[:, 0:4] = 1    # 16 px
    t[:, 6:12] = 2   # 24 px
    p[:, 0:4] = 2    # = true 1 (IoU 1)
    p[:, 6:9] = 1    # half of true 2 (IoU 12/24)
    p[:, 9:12] = 3   # the other half (IoU 12/24)
    want = np.array([[0.0, 1.0, 0.0],
                     [0.5, 0.0, 0.5]])
    return t, p, want


def _with_gap():
    """True labels 1 and 3 (no 2), predicted 1 and 2: the matrix is 3 x 2 with a zero row for label 2."""
    t = np.zeros((4, 10), np.int32)
    p = np.zeros_like(t)
    t[:, 0:4] = 1
    t[:, 6:10] = 3
    p[:, 0:2] = 1     # IoU 8/16 with true 1
    p[:, 6:10] = 2    # = true 3
    want = np.array([[0.5, 0.0],
                     [0.0, 0.0],
                     [0.0, 1.0]])
    return t, p, want


def _halves():
    """One 6x10 nucleus cut into two equal halves: each half has IoU 0.5 exactly."""
    t = np.zeros((10, 20), np.int32)
    p = np.zeros_like(t)
    t[2:8, 2:12] = 1
    p[2:8, 2:7] = 1
    p[2:8, 7:12] = 2
    return t, p


def _strips(rows: int = 3):
    """Strips where taking the best pair first loses a match at IoU 0.3.

    True A = [0, 16), B = [17, 22); predicted Q = [0, 5), P = [6, 22) (columns). IoU(A, P) =
    10/22, IoU(A, Q) = 5/16, IoU(B, P) = 5/16: at 0.3 the largest one-to-one matching is
    A-Q and B-P (2 pairs), while A-P first leaves B and Q without partner.
    """
    t = np.zeros((rows, 24), np.int32)
    p = np.zeros_like(t)
    t[:, 0:16] = 1
    t[:, 17:22] = 2
    p[:, 0:5] = 1
    p[:, 6:22] = 2
    return t, p


def _three_discs():
    """Three separate discs in a 40x60 image (ids 1, 2, 3)."""
    yy, xx = np.mgrid[:40, :60]
    t = np.zeros((40, 60), np.int32)
    for k, (cy, cx, r) in enumerate(((12, 12, 7), (25, 35, 8), (12, 50, 6)), start=1):
        t[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = k
    return t


def _field(seed: int = 0):
    """A 128x128 field of non-overlapping discs and a realistic 'prediction' of it.

    The prediction erodes some discs by a pixel, shifts others, drops one, merges two
    neighbours and adds a false detection; label values are shuffled.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:128, :128]
    t = np.zeros((128, 128), np.int32)
    k = 0
    for _ in range(200):
        cy, cx, r = rng.integers(8, 120), rng.integers(8, 120), rng.integers(4, 9)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        if np.any(t[disc]) or k >= 25:
            continue
        k += 1
        t[disc] = k
    from scipy import ndimage as ndi

    p = np.zeros_like(t)
    for i in range(1, k + 1):
        obj = t == i
        kind = i % 5
        if kind == 1:
            obj = ndi.binary_erosion(obj)
        elif kind == 2:
            obj = np.roll(obj, (1, 2), axis=(0, 1))
        elif i == 3:
            continue  # a missed nucleus
        p[obj & (p == 0)] = i
    p[p == 5] = 4  # one prediction covering two true nuclei (not touching: still one label)
    p[(yy - 2) ** 2 + (xx - 2) ** 2 <= 4] = 99  # a false detection in a corner
    ids = np.unique(p[p > 0])
    new = np.zeros(int(p.max()) + 1, np.int32)
    new[ids] = rng.permutation(len(ids)) + 1
    return t, new[p]


@functools.lru_cache(maxsize=1)
def _stardist():
    """The StarDist sample's labels and a copy with every nucleus one pixel smaller, if on disk."""
    try:
        from ..data import data_dir, load_stardist_sample

        if not (data_dir() / "stardist-sample" / "mask2d.tif").is_file():
            return None
        _, t = load_stardist_sample()
    except Exception:  # not available here: the check runs on the synthetic cases only
        return None
    from skimage.segmentation import find_boundaries

    p = t.copy()
    p[find_boundaries(t, mode="inner")] = 0
    return t, p


def _result_ok(out, want):
    """``out`` (the learner's dict) has the integer counts and the F1 of ``want``."""
    if not isinstance(out, dict) or not {"tp", "fp", "fn", "f1"} <= set(out):
        return False
    return all(close(out[k], want[k]) for k in ("tp", "fp", "fn", "f1"))


# ----------------------------------------------------------------------------- ex-02-iou-matrix
@register("ex-02-iou-matrix", name="iou_matrix", reference="islteach.groundtruth.iou_matrix",
          hint="count the pixels each (true label, predicted label) pair shares, e.g. with np.bincount "
               "on one index per pixel; the union is area_true + area_pred - intersection")
def check_iou_matrix(iou_matrix):
    t, p = _one_shifted_square()
    out = np.asarray(iou_matrix(t, p), dtype=float)
    yield Case("a square and a copy shifted by half its width: one entry, 8/24 = 1/3",
               close(out, [[1 / 3]]),
               "IoU = shared pixels / pixels in either object; the union counts the shared pixels once "
               "(|A| + |B| - |A ∩ B|). Leave the background (label 0) out: the matrix is 1 x 1 here")

    # (the case's labels and answer, its name, its hint, the hint for a wrong shape: None for the same)
    for make, name, hint, shape_hint in (
        (_two_and_three, "2 true and 3 predicted objects: shape (2, 3), rows are the true objects",
         "the shape is right but some values are not: one true object exactly covered by a "
         "prediction has IoU 1, a half of it IoU 0.5",
         "expected shape (2, 3), got {shape}: rows are the true objects (y_true), columns the "
         "predicted ones, and entry [i - 1, j - 1] belongs to true label i and predicted label j"),
        (_with_gap, "true labels 1 and 3 (no 2): shape (3, 2), a row of zeros for the missing label 2",
         "index the rows by label value, not by rank: label 3 is row 2, and a label value that "
         "does not occur gets a row of zeros (don't renumber the objects)", None),
    ):
        t, p, want = make()
        out = np.asarray(iou_matrix(t, p), dtype=float)
        wrong_shape = shape_hint is not None and out.shape != want.shape
        yield Case(name, close(out, want), shape_hint.format(shape=out.shape) if wrong_shape else hint)

    t = _three_discs()
    out = np.asarray(iou_matrix(t, np.zeros_like(t)), dtype=float)
    yield Case("a prediction with no object: shape (3, 0)", out.shape == (3, 0),
               f"got shape {out.shape}: with no predicted object the matrix has one row per true "
               "object and no column")

    from ..groundtruth import iou_matrix as reference

    t, p = _field()
    out = np.asarray(iou_matrix(t, p), dtype=float)
    yield Case("25 discs against an eroded, shifted, merged and shuffled copy: every entry right",
               close(out, reference(t, p), atol=1e-9),
               "small cases pass but a realistic one does not: check objects that touch several "
               "partners, label values that are not consecutive, and pairs that do not overlap (IoU 0)")

    sd = _stardist()
    if sd is not None:
        t, p = sd
        out = np.asarray(iou_matrix(t, p), dtype=float)
        yield Case("StarDist sample (125 nuclei, labels up to 183) vs its nuclei one pixel smaller",
                   close(out, reference(t, p), atol=1e-9),
                   "the sample's label values have gaps (up to 183 for 125 nuclei): the matrix is "
                   "183 x 183 with zero rows and columns for the unused values")


# ----------------------------------------------------------------------------- ex-02-match-at
@register("ex-02-match-at", name="match_at", reference="islteach.groundtruth.match_at",
          hint="start from the IoU matrix (islteach.groundtruth.iou_matrix), keep the pairs with IoU >= "
               "threshold, match each object at most once; then FP = predicted - TP, FN = true - TP")
def check_match_at(match_at):
    t = _three_discs()
    out = match_at(t, t, 0.9)
    yield Case("three discs against themselves at IoU 0.9: TP 3, FP 0, FN 0, F1 1",
               _result_ok(out, {"tp": 3, "fp": 0, "fn": 0, "f1": 1.0}),
               "return a dict with the keys 'tp', 'fp', 'fn' and 'f1'; identical labels match every object"
               if not isinstance(out, dict) or not {"tp", "fp", "fn", "f1"} <= set(out) else
               "identical labels: every object matches its copy (IoU 1)")

    p = t.copy()
    p[t == 2] = 0                       # nucleus 2 missed
    p[30:36, 2:8] = 7                   # a detection where there is no nucleus
    out = match_at(t, p, 0.5)
    yield Case("one nucleus missed, one false detection: TP 2, FP 1, FN 1, F1 2/3",
               _result_ok(out, {"tp": 2, "fp": 1, "fn": 1, "f1": 2 / 3}),
               "FP counts the predictions without a partner, FN the true objects without one, and "
               "F1 = 2 TP / (2 TP + FP + FN); count the objects that occur, not the largest label "
               "(the false detection here is label 7 of 3 predicted objects)")

    t, p = _one_shifted_square()  # IoU 1/3
    ok_low = _result_ok(match_at(t, p, 0.3), {"tp": 1, "fp": 0, "fn": 0, "f1": 1.0})
    ok_high = _result_ok(match_at(t, p, 0.5), {"tp": 0, "fp": 1, "fn": 1, "f1": 0.0})
    yield Case("a pair with IoU 1/3: a match at threshold 0.3, at 0.5 one FP and one FN",
               ok_low and ok_high,
               "a pair matches only when its IoU reaches the threshold; below it the prediction is a "
               "false positive and the true object a false negative" if not ok_high else
               "at threshold 0.3 a pair with IoU 1/3 is a match")

    t = np.zeros((4, 8), np.int32)
    t[:, 0:4] = 1
    p = np.zeros_like(t)
    p[:, 0:2] = 1  # half of the object: IoU 0.5 exactly
    yield Case("a pair with IoU exactly 0.5 at threshold 0.5: a match",
               _result_ok(match_at(t, p, 0.5), {"tp": 1, "fp": 0, "fn": 0, "f1": 1.0}),
               "a pair matches when its IoU is at least the threshold (>=, not >)")

    t, p = _halves()
    out = match_at(t, p, 0.5)
    yield Case("a nucleus cut into two halves (IoU 0.5 each) at 0.5: TP 1, FP 1, FN 0",
               _result_ok(out, {"tp": 1, "fp": 1, "fn": 0, "f1": 2 / 3}),
               "each object is matched at most once: only one half can be the nucleus's partner, the "
               "other half is a false positive")

    t, p = _strips()
    out = match_at(t, p, 0.3)
    yield Case("two strips and two predictions at IoU 0.3: the best one-to-one matching has TP 2",
               _result_ok(out, {"tp": 2, "fp": 0, "fn": 0, "f1": 1.0}),
               "below IoU 0.5 an object can have two partners above the threshold, and taking the pair "
               "with the largest IoU first can cost a match: find the largest one-to-one set of pairs "
               "(scipy.optimize.linear_sum_assignment on the thresholded matrix)")

    z = np.zeros_like(_three_discs())
    ok_none = _result_ok(match_at(_three_discs(), z, 0.5), {"tp": 0, "fp": 0, "fn": 3, "f1": 0.0})
    ok_empty = _result_ok(match_at(z, z, 0.5), {"tp": 0, "fp": 0, "fn": 0, "f1": 1.0})
    yield Case("no prediction: TP 0, FN 3, F1 0; both images empty: F1 1",
               ok_none and ok_empty,
               "with nothing predicted every true object is a false negative" if not ok_none else
               "nothing to find and nothing found is a perfect result: F1 is 1 when both images are "
               "empty (avoid dividing 0 by 0)")

    from ..groundtruth import match_at as reference

    t, p = _field()
    ok = all(_result_ok(match_at(t, p, th), reference(t, p, th)) for th in (0.5, 0.7, 0.9))
    yield Case("25 discs against an eroded, shifted, merged copy at IoU 0.5, 0.7 and 0.9",
               ok, "the small cases pass but a realistic one does not: check merged objects (one "
                   "prediction over two nuclei) and pairs whose IoU lies just below the threshold")

    sd = _stardist()
    if sd is not None:
        t, p = sd
        ok = all(_result_ok(match_at(t, p, th), reference(t, p, th)) for th in (0.5, 0.7, 0.9))
        yield Case("StarDist sample vs its nuclei one pixel smaller at IoU 0.5, 0.7 and 0.9",
                   ok, "the sample's label values have gaps (125 nuclei, values up to 183): count only "
                       "the label values that occur as objects, not y_true.max()")
