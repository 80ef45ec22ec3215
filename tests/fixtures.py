"""Test fixtures shared by the tests and the benchmarks (not part of the islteach API).

:func:`perturb_labels` makes a realistic "prediction" from ground-truth labels, to test the
metrics of :mod:`islteach.metrics` and to benchmark them (``benchmarks/bench_matching.py``).
Import it as ``from fixtures import perturb_labels`` in a test (pytest puts ``tests/`` on the
path) or as ``from tests.fixtures import perturb_labels`` with the repository root on the path.

:func:`chapter_exercises` and :func:`exercise_function` give the tests a chapter's code exercises
and the function its stub or solution cell defines; :data:`MYST_HEADER` starts a chapter source
written by a test.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from islteach.metrics import check_labels

__all__ = ["BOOK", "MYST_HEADER", "PERTURBATIONS", "chapter_exercises", "disc", "exercise_function",
           "perturb_labels"]

#: The chapters' MyST sources.
BOOK = Path(__file__).resolve().parents[1] / "book"

#: The jupytext front matter of a chapter (what a test puts before the cells of a chapter it writes).
MYST_HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3 (ipykernel)
  language: python
  name: python3
---
"""


def chapter_exercises(stem: str) -> dict:
    """``{label: exercise}`` of the code exercises of ``book/<stem>.md``, in the chapter's order.

    Each exercise is a dict of :func:`islteach.notebooks.exercises` (``stub`` and ``solution``
    are the lists of its cells' sources).
    """
    from islteach.notebooks import exercises

    return {e["label"]: e for e in exercises(BOOK / f"{stem}.md") if e["kind"] == "code"}


def exercise_function(exercise: dict, part: str = "solution"):
    """The function that an exercise's ``part`` cells (``"solution"`` or ``"stub"``) define.

    The cells run in a fresh namespace, as the book requires (each is self-contained); the
    function is the one the exercise's check asks for, ``islteach.checks.CHECKS[label].name``.
    """
    from islteach.checks import CHECKS

    if part not in ("solution", "stub"):
        raise ValueError(f"part must be 'solution' or 'stub', got {part!r}")
    label = exercise["label"]
    namespace: dict = {"__name__": "__exercise__"}
    for source in exercise[part]:
        exec(compile(source, f"<{label}>", "exec"), namespace)
    name = CHECKS[label].name
    assert name in namespace, f"{label}: the {part} cell does not define {name!r}"
    return namespace[name]


PERTURBATIONS = ("keep", "erode", "dilate", "shift", "merge", "split", "drop")


def disc(shape, center, radius) -> np.ndarray:
    """A boolean disc of ``radius`` around ``center`` in an array of ``shape`` (exact truth for tests)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius**2


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
