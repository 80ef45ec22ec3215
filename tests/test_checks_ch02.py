"""Chapter 2's exercise checks: the package's functions pass, wrong ones fail with the hint that fits.

Also: the two reference functions (``groundtruth.iou_matrix``, ``groundtruth.match_at``) agree
with ``islteach.metrics`` on realistic label pairs. (That the chapter's solution cells pass their
check and its stub cells fail it is tested for all chapters in ``test_exercises.py``.)
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from fixtures import chapter_exercises, perturb_labels

from islteach import checks
from islteach import groundtruth as gt
from islteach.metrics import matching

LABELS = ("ex-02-iou-matrix", "ex-02-match-at")


def test_the_chapter_has_these_code_exercises():
    assert sorted(chapter_exercises("02_cellpose_ground_truth")) == sorted(LABELS)


def _failed(report) -> dict:
    """{case name: hint} of the cases that failed."""
    return {c.name: c.hint for c in report.cases if not c.passed}


@pytest.mark.parametrize("label", LABELS)
def test_reference_passes_quickly(label):
    t0 = time.perf_counter()
    report = checks.evaluate(label, checks.reference(label))
    assert report.passed, str(report)
    assert len(report.cases) >= 5
    assert time.perf_counter() - t0 < 10  # every case well under 2 s (the StarDist sample is loaded once)


@pytest.mark.parametrize("label", LABELS)
def test_not_implemented_is_not_done(label):
    def stub(*args, **kwargs):
        raise NotImplementedError

    report = checks.evaluate(label, stub)
    assert not report.passed and report.not_done
    assert "hint:" in str(report)


def _iou_with_background(y_true, y_pred):
    t, p = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    nt, n_p = int(t.max()), int(p.max())
    inter = np.bincount(t * (n_p + 1) + p, minlength=(nt + 1) * (n_p + 1)).reshape(nt + 1, n_p + 1)
    union = inter.sum(1)[:, None] + inter.sum(0)[None, :] - inter
    with np.errstate(invalid="ignore"):
        return inter / union  # the background pair included


def _iou_renumbered(y_true, y_pred):
    tids = [i for i in np.unique(y_true) if i]
    pids = [j for j in np.unique(y_pred) if j]
    out = np.zeros((len(tids), len(pids)))
    for a, i in enumerate(tids):
        for b, j in enumerate(pids):
            A, B = y_true == i, y_pred == j
            out[a, b] = (A & B).sum() / (A | B).sum()
    return out


def _iou_union_wrong(y_true, y_pred):
    m = gt.iou_matrix(y_true, y_pred)
    return m / (1 + m)  # |A & B| / (|A| + |B|): the shared pixels counted twice in the union


def test_iou_matrix_mistakes_get_their_hint():
    f = _failed(checks.evaluate("ex-02-iou-matrix", _iou_with_background))
    assert any("shape (2, 3)" in name for name in f) and any("got (3, 4)" in h for h in f.values())
    f = _failed(checks.evaluate("ex-02-iou-matrix", lambda t, p: gt.iou_matrix(t, p).T))
    assert any("rows are the true objects" in h for h in f.values())
    f = _failed(checks.evaluate("ex-02-iou-matrix", _iou_renumbered))
    assert any("no 2" in name for name in f) and any("don't renumber" in h for h in f.values())
    f = _failed(checks.evaluate("ex-02-iou-matrix", _iou_union_wrong))
    assert any("1/3" in name for name in f) and any("|A| + |B| - |A ∩ B|" in h for h in f.values())


def _match_from(iou_fn, *, one_to_one=True, strict=False, greedy=False, count_max_label=False, empty_nan=False):
    """A match_at with one chosen mistake (for the tests of the check's hints)."""
    from scipy.optimize import linear_sum_assignment

    def match_at(y_true, y_pred, threshold=0.5):
        m = iou_fn(y_true, y_pred)
        if not count_max_label:
            ti = np.setdiff1d(np.unique(y_true), [0])
            pi = np.setdiff1d(np.unique(y_pred), [0])
            m = m[np.ix_(ti - 1, pi - 1)]
        cand = m > threshold if strict else m >= threshold
        if not one_to_one:
            tp = int(cand.sum())
        elif greedy:
            used_r, used_c, tp = set(), set(), 0
            for flat in np.argsort(-m, axis=None):
                r, c = np.unravel_index(flat, m.shape)
                if not cand[r, c]:
                    break
                if r not in used_r and c not in used_c:
                    used_r.add(r), used_c.add(c)
                    tp += 1
        else:
            r, c = linear_sum_assignment(cand, maximize=True)
            tp = int(cand[r, c].sum())
        fp, fn = m.shape[1] - tp, m.shape[0] - tp
        den = 2 * tp + fp + fn
        f1 = (float("nan") if empty_nan else 1.0) if den == 0 else 2 * tp / den
        return {"tp": tp, "fp": fp, "fn": fn, "f1": f1}

    return match_at


@pytest.mark.parametrize("mistake, case, words", [
    ({"one_to_one": False}, "two halves", "matched at most once"),
    ({"greedy": True}, "strips", "linear_sum_assignment"),
    ({"strict": True}, "exactly 0.5", ">=, not >"),
    ({"count_max_label": True}, "false detection", "not the largest label"),
    ({"empty_nan": True}, "both images empty", "0 by 0"),
])
def test_match_at_mistakes_get_their_hint(mistake, case, words):
    report = checks.evaluate("ex-02-match-at", _match_from(gt.iou_matrix, **mistake))
    assert not report.passed
    f = _failed(report)
    assert any(case in name and words in hint for name, hint in f.items()), str(report)


def test_correct_variant_passes():
    assert checks.evaluate("ex-02-match-at", _match_from(gt.iou_matrix)).passed


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_references_agree_with_metrics(seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:96, :96]
    t = np.zeros((96, 96), np.int32)
    k = 0
    for _ in range(60):  # touching discs: merges, splits and conflicts below IoU 0.5
        cy, cx, r = rng.integers(6, 90, 2).tolist() + [int(rng.integers(3, 8))]
        t[((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) & (t == 0)] = (k := k + 1)
    p = perturb_labels(t, seed=seed)
    m = gt.iou_matrix(t, p)
    assert m.shape == (t.max(), p.max())
    for i, j in [(1, 1), (int(t.max()), int(p.max())), (int(t.max()) // 2, int(p.max()) // 3)]:
        a, b = t == i, p == j
        assert m[i - 1, j - 1] == pytest.approx((a & b).sum() / max((a | b).sum(), 1))
    ths = [0.1, 0.3, 0.5, 0.7, 0.9]
    ref = matching(t, p, ths)
    for n, th in enumerate(ths):
        got = gt.match_at(t, p, th)
        assert (got["tp"], got["fp"], got["fn"]) == (ref.tp[n], ref.fp[n], ref.fn[n])
        assert got["f1"] == pytest.approx(ref.f1[n])
