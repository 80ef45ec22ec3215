"""Checks of chapter 1's code exercises (virtual staining). See :mod:`islteach.checks`.

- ``ex-01-normalise``: ``normalise_planes(stack, mask, pmin=1.0, pmax=99.8)``, the per-channel
  percentile normalisation measured on the training area
  (:func:`islteach.virtual_staining.normalise_planes`).
- ``ex-01-pcc``: ``pcc(pred, target)``, the Pearson correlation coefficient of two images, the
  chapter's metric (:func:`islteach.metrics.pcc`).

Every case is a small synthetic array whose answer is known in closed form (or from numpy).
"""
from __future__ import annotations

import numpy as np

from . import Case, close, register  # noqa: F401


# --------------------------------------------------------------------------- ex-01-normalise
def _ramp(n: int, lo: float, hi: float, shape) -> np.ndarray:
    return np.linspace(lo, hi, n).reshape(shape)


@register("ex-01-normalise", name="normalise_planes", reference="islteach.virtual_staining.normalise_planes",
          hint="for each channel, take the pmin-th and pmax-th percentiles of its pixels inside the mask "
               "(np.percentile) and map them linearly to 0 and 1")
def _normalise_cases(fn):
    everywhere = np.ones((10, 10), bool)

    # 1. the whole range: 0..99 with percentiles 0 and 100 -> exactly x / 99
    x = _ramp(100, 0.0, 99.0, (1, 10, 10))
    out = fn(x, everywhere, pmin=0.0, pmax=100.0)
    yield Case("one plane 0..99, percentiles 0 and 100: the minimum maps to 0, the maximum to 1",
               close(out, x / 99.0, atol=1e-5),
               "a linear map that sends the low percentile to 0 and the high one to 1, for every pixel")

    # 2. the default percentiles 1 and 99.8
    x = _ramp(100, 0.0, 99.0, (1, 10, 10))
    lo, hi = np.percentile(x, [1.0, 99.8])
    out = fn(x, everywhere)
    yield Case("the default percentiles 1 and 99.8 of a ramp map to 0 and 1",
               close(out, (x - lo) / (hi - lo), atol=1e-5),
               "pmin and pmax are percents (0-100) as np.percentile takes them, with defaults 1.0 and 99.8")

    # 3. two channels on very different scales: each is scaled on its own
    x = np.stack([_ramp(100, 0.0, 1.0, (10, 10)), _ramp(100, 0.0, 1000.0, (10, 10))])
    out = fn(x, everywhere, pmin=0.0, pmax=100.0)
    yield Case("two planes on scales 0..1 and 0..1000: both end up on 0..1",
               close(out, np.stack([x[0] / 1.0, x[1] / 1000.0]), atol=1e-5),
               "compute one low and one high percentile per plane (per channel), not over the whole stack")

    # 4. only the masked pixels set the scale; the others are mapped with it and not clipped
    x = np.full((1, 10, 10), 1000.0)
    x[0, :, :5] = _ramp(50, 0.0, 1.0, (10, 5))
    mask = np.zeros((10, 10), bool)
    mask[:, :5] = True
    expected = x.copy()  # lo = 0, hi = 1 on the masked half: the values stay as they are
    out = fn(x, mask, pmin=0.0, pmax=100.0)
    yield Case("a bright unmasked half (the test area) changes nothing: the scale comes from the mask only",
               close(out, expected, atol=1e-4),
               "measure the percentiles on the pixels inside the mask only (stack[c][mask]); the pixels "
               "outside it are normalised with that scale too, and nothing is clipped")

    # 5. values beyond the percentiles stay beyond 0 and 1
    x = _ramp(100, 0.0, 99.0, (1, 10, 10))
    out = np.asarray(fn(x, everywhere, pmin=10.0, pmax=90.0))
    lo, hi = np.percentile(x, [10.0, 90.0])
    yield Case("percentiles 10 and 90: the darkest pixels go below 0 and the brightest above 1 (no clipping)",
               close(out, (x - lo) / (hi - lo), atol=1e-5) and out.min() < 0 and out.max() > 1,
               "do not clip the result to [0, 1]: the chapter keeps values outside the percentile range")

    # 6. what comes back
    x = np.random.default_rng(1).random((3, 8, 6)) * 4000
    out = fn(x, np.ones((8, 6), bool))
    ok = isinstance(out, np.ndarray) and out.shape == (3, 8, 6) and out.dtype == np.float32
    yield Case("returns a float32 array of the stack's shape (C, H, W)", ok,
               "return a numpy array with the input's shape, converted with .astype(np.float32)")


# --------------------------------------------------------------------------- ex-01-pcc
@register("ex-01-pcc", name="pcc", reference="islteach.metrics.pcc",
          hint="follow the formula above the exercise: centre both images on their means first, then "
               "divide their covariance by the product of their spreads")
def _pcc_cases(fn):
    rng = np.random.default_rng(0)
    x = rng.random((8, 8))

    def number(v):
        return np.ndim(v) == 0 and isinstance(v, (float, int, np.floating, np.integer))

    r = fn(x, x.copy())
    yield Case("an image with itself: 1", number(r) and close(r, 1.0),
               "correlating an image with itself must give exactly 1 (a single number): divide the "
               "covariance by the product of both standard deviations")

    r = fn(2.0 * x + 1.0, x)
    yield Case("a brighter copy with an offset (2 x + 1): still 1", close(r, 1.0),
               "subtract each image's mean before multiplying: the PCC ignores an offset and a positive gain")

    r = fn(1.0 - x, x)
    yield Case("an inverted copy (1 - x): -1", close(r, -1.0),
               "keep the sign of the covariance: no absolute value, no square")

    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    b = np.array([[1.0, 3.0], [2.0, 4.0]])
    r = fn(a, b)
    yield Case("four pixels [1, 2, 3, 4] against [1, 3, 2, 4]: 0.8", close(r, 0.8),
               "use the same normalisation (1/n or 1/(n-1)) in the covariance and in both standard deviations")

    p, t = rng.random((32, 24)), rng.random((32, 24)) + 0.3 * rng.random((32, 24))
    t = t + 0.5 * p
    r = fn(p, t)
    yield Case("two 32x24 images: the value numpy's corrcoef gives for all their pixels",
               close(r, np.corrcoef(p.ravel(), t.ravel())[0, 1]),
               "use every pixel of both 2-D images (flatten them), not one row or one column")

    p8 = (rng.random((16, 16)) * 255).astype(np.uint8)
    t8 = np.clip(p8.astype(int) + rng.integers(-40, 40, (16, 16)), 0, 255).astype(np.uint8)
    r = fn(p8, t8)
    yield Case("8-bit images (uint8, like SEPhACE's): the same value as their float copies",
               close(r, np.corrcoef(p8.ravel().astype(float), t8.ravel().astype(float))[0, 1]),
               "convert the images to float before any arithmetic: sums and products of uint8 values overflow")

    try:
        r = fn(np.full((8, 8), 0.3), x)
    except ZeroDivisionError:
        r = None
    yield Case("a constant prediction: 0.0 (not NaN)", number(r) and close(r, 0.0) and not np.isnan(r),
               "a constant image has no variance, so the formula divides by zero: return 0.0 in that case "
               "(a constant prediction carries no information about the target), as the book's metric does")
