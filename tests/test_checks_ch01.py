"""Chapter 1's exercise checks: typical mistakes fail with the hint of the case they get wrong,
and the references agree with the chapter's solutions (that every solution passes its check, every
stub fails it and every reference passes it is tested for all chapters in ``test_exercises.py``)."""
import numpy as np
import pytest
from fixtures import chapter_exercises, exercise_function

from islteach import checks, metrics, virtual_staining

EXERCISES = chapter_exercises("01_virtual_staining")
LABELS = ["ex-01-normalise", "ex-01-pcc"]


def test_the_chapter_has_these_code_exercises():
    assert sorted(EXERCISES) == sorted(LABELS)


def test_pcc_solution_agrees_with_the_reference():
    solution = exercise_function(EXERCISES["ex-01-pcc"])
    rng = np.random.default_rng(3)
    for shape in ((5, 7), (64, 48), (2, 16, 16)):
        x, y = rng.random(shape), rng.random(shape)
        y = y + rng.random() * x
        assert solution(x, y) == pytest.approx(metrics.pcc(x, y), abs=1e-12)
    assert solution(np.ones((4, 4)), rng.random((4, 4))) == metrics.pcc(np.ones((4, 4)), rng.random((4, 4))) == 0.0


def test_normalise_solution_agrees_with_the_reference():
    solution = exercise_function(EXERCISES["ex-01-normalise"])
    rng = np.random.default_rng(4)
    stack = (rng.random((3, 40, 30)) * [[[10.0]], [[500.0]], [[3.0]]]).astype(np.float32)
    mask = rng.random((40, 30)) > 0.4
    for pmin, pmax in ((1.0, 99.8), (0.0, 100.0), (5.0, 95.0)):
        want = virtual_staining.normalise_planes(stack, mask, pmin, pmax)
        np.testing.assert_allclose(solution(stack, mask, pmin, pmax), want, atol=1e-5)
    # the reference is the chapter's normalisation: normalisation_stats + apply_normalisation
    stats = virtual_staining.normalisation_stats(stack, mask)
    np.testing.assert_array_equal(virtual_staining.normalise_planes(stack, mask),
                                  virtual_staining.apply_normalisation(stack, stats))


def _failed(label, fn):
    report = checks.evaluate(label, fn)
    assert not report.passed, str(report)
    return [c.name for c in report.cases if not c.passed], str(report)


def _cosine(p, t):  # no centring
    a, b = np.ravel(p).astype(float), np.ravel(t).astype(float)
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def _mixed_ddof(p, t):  # covariance with 1/(n-1), standard deviations with 1/n
    a, b = np.ravel(p).astype(float), np.ravel(t).astype(float)
    return float(np.cov(a, b)[0, 1] / (a.std() * b.std()))


def _first_row(p, t):  # only one row of the images
    return float(np.corrcoef(np.asarray(p, float)[0], np.asarray(t, float)[0])[0, 1])


def _uint8_products(p, t):  # sums of products in the images' own dtype
    a, b = np.ravel(p), np.ravel(t)
    n = a.size
    cov = (a * b).sum() - n * a.mean() * b.mean()
    return float(cov / np.sqrt(((a.astype(float) ** 2).sum() - n * a.mean() ** 2)
                               * ((b.astype(float) ** 2).sum() - n * b.mean() ** 2)))


def _no_guard(p, t):  # divides by zero on a constant image
    a, b = np.ravel(p).astype(float), np.ravel(t).astype(float)
    a, b = a - a.mean(), b - b.mean()
    with np.errstate(all="ignore"):
        return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def _python_division(p, t):  # same, with Python floats: ZeroDivisionError
    a, b = np.ravel(p).astype(float), np.ravel(t).astype(float)
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b) / float(np.sqrt((a @ a) * (b @ b)))


@pytest.mark.parametrize("wrong, failing", [
    (_cosine, "still 1"),
    (lambda p, t: abs(metrics.pcc(p, t)), "inverted copy"),
    (_mixed_ddof, "0.8"),
    (_first_row, "corrcoef"),
    (_uint8_products, "8-bit"),
    (_no_guard, "constant prediction"),
    (_python_division, "constant prediction"),
    (lambda p, t: np.corrcoef(np.ravel(p), np.ravel(t)), "itself: 1"),  # the whole 2x2 matrix
])
def test_pcc_mistakes_fail_with_a_hint(wrong, failing):
    names, text = _failed("ex-01-pcc", wrong)
    assert any(failing in n for n in names), text
    assert "hint:" in text


def _per_stack(stack, mask, pmin=1.0, pmax=99.8):  # one pair of percentiles for all channels
    stack = np.asarray(stack, np.float32)
    lo, hi = np.percentile(stack[:, mask], [pmin, pmax])
    return ((stack - lo) / (hi - lo)).astype(np.float32)


def _no_mask(stack, mask, pmin=1.0, pmax=99.8):  # percentiles of every pixel
    stack = np.asarray(stack, np.float32)
    lo, hi = np.percentile(stack, [pmin, pmax], axis=(1, 2), keepdims=True)
    return ((stack - lo) / (hi - lo)).astype(np.float32)


def _clipped(stack, mask, pmin=1.0, pmax=99.8):
    return np.clip(virtual_staining.normalise_planes(stack, mask, pmin, pmax), 0, 1)


def _min_max(stack, mask, pmin=1.0, pmax=99.8):  # ignores the percentiles
    stack = np.asarray(stack, np.float32)
    v = stack[:, mask]
    lo, hi = v.min(1)[:, None, None], v.max(1)[:, None, None]
    return ((stack - lo) / (hi - lo)).astype(np.float32)


@pytest.mark.parametrize("wrong, failing", [
    (_per_stack, "two planes"),
    (_no_mask, "unmasked half"),
    (_clipped, "no clipping"),
    (_min_max, "default percentiles"),
    (lambda s, m, pmin=1.0, pmax=99.8: virtual_staining.normalise_planes(s, m, pmin, pmax).astype(np.float64),
     "float32"),
])
def test_normalise_mistakes_fail_with_a_hint(wrong, failing):
    names, text = _failed("ex-01-normalise", wrong)
    assert any(failing in n for n in names), text
    assert "hint:" in text


def test_normalise_with_quantiles_instead_of_percentiles_is_reported_as_an_error():
    def normalise_planes(stack, mask, pmin=1.0, pmax=99.8):
        stack = np.asarray(stack, np.float32)
        lo, hi = np.quantile(stack[:, mask], [pmin, pmax], axis=1)
        return (stack - lo[:, None, None]) / (hi - lo)[:, None, None]

    report = checks.evaluate("ex-01-normalise", normalise_planes)
    assert not report.passed and "ValueError" in report.error and "line" in report.error


def test_tile_fraction_above_counts_bright_pixels_per_tile():
    img = np.zeros((64, 96))
    img[:32, :16] = 1.0          # half of tile (0, 0)
    img[40, 70] = 0.9            # one pixel of tile (1, 2)
    img[33, 33] = 0.5            # not above the threshold
    grid = virtual_staining.tile_fraction_above(img, 0.5, tile=32)
    assert grid.shape == (2, 3)
    np.testing.assert_allclose(grid, [[0.5, 0, 0], [0, 0, 1 / 1024]])
    with pytest.raises(ValueError, match="tile"):
        virtual_staining.tile_fraction_above(img, 0.5, tile=1)
