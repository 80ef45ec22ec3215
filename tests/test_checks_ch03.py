"""Chapter 3's exercise checks: typical mistakes fail with the hint of the case they get wrong, and
the references agree with the chapter's solutions (that every solution passes its check, every stub
fails it and every reference passes it is tested for all chapters in ``test_exercises.py``)."""
import numpy as np
import pytest
import torch
from fixtures import BOOK, chapter_exercises, exercise_function

from islteach import checks, losses, transfer
from islteach.notebooks import exercises

ALL = exercises(BOOK / "03_transfer_learning.md")
EXERCISES = chapter_exercises("03_transfer_learning")
LABELS = ["ex-03-shifted-sigmoid", "ex-03-soft-jaccard"]


def test_the_chapter_has_these_code_exercises_and_five_questions():
    assert sorted(EXERCISES) == sorted(LABELS)
    questions = sorted(e["label"] for e in ALL if e["kind"] == "question")
    assert questions == ["ex-03-choose-rate", "ex-03-predict-map2", "ex-03-predict-more-images", "ex-03-read-curves",
                         "ex-03-weak-baseline"]
    assert all(e["has_solution"] and not e["problems"] for e in ALL)


def test_a_failed_check_hands_back_the_reference(capsys):
    def broken(x):
        return torch.sigmoid(x)

    fn = checks.run("ex-03-shifted-sigmoid", broken)
    out = capsys.readouterr().out
    assert fn is transfer.shifted_sigmoid
    assert "✗ ex-03-shifted-sigmoid" in out and "islteach.transfer.shifted_sigmoid" in out


# ------------------------------------------------------------------------------ shifted sigmoid
def test_shifted_sigmoid_solution_agrees_with_the_reference_and_the_module():
    solution = exercise_function(EXERCISES["ex-03-shifted-sigmoid"])
    x = torch.linspace(-6, 7, 301).reshape(7, 43)
    torch.testing.assert_close(solution(x), transfer.shifted_sigmoid(x))
    torch.testing.assert_close(transfer.shifted_sigmoid(x), transfer.ShiftedSigmoid(transfer.ISL_SHIFT)(x))
    torch.testing.assert_close(transfer.shifted_sigmoid(x, 0.0), torch.sigmoid(x))


def _failed(label, fn):
    report = checks.evaluate(label, fn)
    assert not report.passed, str(report)
    return [c.name for c in report.cases if not c.passed], str(report)


def _sign(x):  # still 0.5 at x = 0.5
    return 1 / (1 + torch.exp(x - 0.5))


def _plus(x):
    return torch.sigmoid(x + 0.5)


def _vertical(x):  # the output moved, not the input
    return torch.sigmoid(x) - 0.5


def _overflowing(x):
    e = torch.exp(x - 0.5)
    return e / (1 + e)


def _numpy(x):
    return 1 / (1 + np.exp(-(x.detach().numpy() - 0.5)))


def _detached(x):
    return torch.sigmoid(x.detach() - 0.5)


def test_sign_error_passes_the_centre_but_not_the_values():
    failed, _ = _failed("ex-03-shifted-sigmoid", _sign)
    assert not any("x = 0.5 gives exactly 0.5" in name for name in failed)
    assert any("its gradient" in name for name in failed)


# ------------------------------------------------------------------------------ soft Jaccard loss
def test_soft_jaccard_solution_agrees_with_the_reference_values_and_gradients():
    solution = exercise_function(EXERCISES["ex-03-soft-jaccard"])
    rng = np.random.default_rng(5)
    for shape, eps in (((4, 1, 16, 16), 1.0), ((2, 1, 9, 7), 0.0), ((1, 1, 32, 32), 0.5)):
        p0 = torch.tensor(rng.random(shape), dtype=torch.float32)
        t = torch.tensor(rng.random(shape) > 0.6)
        p1, p2 = p0.clone().requires_grad_(), p0.clone().requires_grad_()
        a, b = solution(p1, t, eps=eps), losses.soft_jaccard_loss(p2, t, eps=eps)
        torch.testing.assert_close(a, b)
        a.backward()
        b.backward()
        torch.testing.assert_close(p1.grad, p2.grad)
    assert float(losses.SoftJaccardLoss()(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2))) == 0.0


def _pieces(probability, target):
    p = probability.float()
    t = target.to(p.dtype)
    inter = (p * t).sum()
    return p, t, inter


def _dice(probability, target, eps=1.0):
    p, t, inter = _pieces(probability, target)
    return 1 - (inter + eps) / (p.sum() + t.sum() + eps)


def _thresholded(probability, target, eps=1.0):
    p, t, _ = _pieces((probability > 0.5).float(), target)
    inter = (p * t).sum()
    return 1 - (inter + eps) / (p.sum() + t.sum() - inter + eps)


def _eps_below_only(probability, target, eps=1.0):
    p, t, inter = _pieces(probability, target)
    return 1 - inter / (p.sum() + t.sum() - inter + eps)


def _no_eps(probability, target, eps=1.0):
    p, t, inter = _pieces(probability, target)
    return 1 - inter / (p.sum() + t.sum() - inter)


def _fixed_eps(probability, target, eps=1.0):  # ignores its argument
    p, t, inter = _pieces(probability, target)
    return 1 - (inter + 1.0) / (p.sum() + t.sum() - inter + 1.0)


def _per_image(probability, target, eps=1.0):
    p, t = probability.float(), target.float()
    dims = tuple(range(1, p.ndim))
    inter = (p * t).sum(dims)
    return (1 - (inter + eps) / (p.sum(dims) + t.sum(dims) - inter + eps)).mean()


def _as_float(probability, target, eps=1.0):
    p, t, inter = _pieces(probability, target)
    return float(1 - (inter + eps) / (p.sum() + t.sum() - inter + eps))


# ------------------------------------------------------------------------------ both exercises' mistakes
def _mistakes(label, warning, rows):
    """``rows`` (mistake, a case it fails, words of the hint) as parameters of ``label``'s test,
    ignoring the ``warning`` category the mistakes raise."""
    return [pytest.param(label, *row, marks=pytest.mark.filterwarnings(f"ignore::{warning}")) for row in rows]


@pytest.mark.parametrize("label, mistake, case, hint", [
    *_mistakes("ex-03-shifted-sigmoid", "RuntimeWarning", [
        (_sign, "x = -1, 0, 1, 1.5, 3", "check the sign"),
        (_plus, "x = 0.5 gives exactly 0.5", "before* the sigmoid"),
        (_vertical, "x = 0.5 gives exactly 0.5", "not the output after it"),
        (_overflowing, "x = -100 and x = 100", "overflows"),
        (_numpy, "float32 batch", "no NumPy"),
        (_detached, "its gradient", "gradients must flow"),
    ]),
    *_mistakes("ex-03-soft-jaccard", "UserWarning", [
        (_dice, "eps = 0: loss 1 - 1/2 = 0.5", "Dice denominator"),
        (_thresholded, "p = [0.5, 0.5, 0, 0]", "never a thresholded mask"),
        (_thresholded, "gradient w.r.t. p", "gradients must reach"),
        (_eps_below_only, "eps = 1: loss 1 - (1 + 1)/(2 + 1)", "intersection *and* to the union"),
        (_no_eps, "an empty target with an empty prediction", "0/0 becomes eps/eps"),
        (_fixed_eps, "eps = 0: loss 1 - 1/2 = 0.5", "use the eps you are given"),
        (_per_image, "a batch of two 2x2 images", "before dividing"),
        (_as_float, "0-d torch tensor", "no .item()"),
    ]),
])
def test_a_typical_mistake_fails_the_case_it_gets_wrong(label, mistake, case, hint):
    failed, text = _failed(label, mistake)
    assert any(case in name for name in failed), text
    assert hint in text


# ------------------------------------------------------------------------------ chapter 3's page helpers
def test_chapter3_headline_holds_means_over_seeds_and_the_distinct_n1_tiles():
    recs = [{"init": i, "n": n, "seed": s, "iou": v, "images": [s + 2] if n == 1 else list(range(4))}
            for i, n, s, v in [("random", 1, 0, .2), ("random", 1, 1, .4), ("isl", 1, 0, .5), ("isl", 1, 1, .7),
                               ("zero-shot", 1, 0, .3), ("zero-shot", 1, 1, .3), ("isl-map2", 1, 0, .1),
                               ("isl-map2", 1, 1, .3), ("random", 4, 0, .6), ("random", 4, 1, .6),
                               ("isl", 4, 0, .5), ("isl", 4, 1, .7), ("zero-shot", 4, 0, .4), ("zero-shot", 4, 1, .4)]]
    sweep = {"difficulties": [0.0, 1.0], "gain": [0.0, 0.5], "gain_per_seed": [[0.0, 0.0], [0.4, 0.6]],
             "seeds": [0, 1], "pretext_pcc": [0.9, 0.7],
             "iou": {"random": [[.8, .8], [.2, .4]], "isl": [[.8, .8], [.3, .6]], "zero-shot": [[.7, .7], [.3, .3]]}}
    h = transfer.chapter3_headline(recs, sweep)
    f = h["isl_field"]
    assert f["n1_random"] == pytest.approx(.3) and f["n1_isl"] == pytest.approx(.6)
    assert f["n1_zero_shot"] == pytest.approx(.3) and f["n1_control"] == pytest.approx(.2)
    assert f["nmax"] == 4 and f["nmax_isl"] == pytest.approx(.6) and f["nmax_zero_shot"] == pytest.approx(.4)
    assert f["seeds"] == [0, 1] and f["n1_tiles"] == [2, 3]
    assert f["n1_per_seed"]["isl"] == [.5, .7]
    assert h["synthetic"]["difficulties"] == [0.0, 1.0] and h["synthetic"]["gain_n1_by_difficulty"] == [0.0, 0.5]
    assert transfer.chapter3_headline([r for r in recs if r["init"] != "isl-map2"], sweep)["isl_field"]["n1_control"] is None


def test_summary_and_gain_tables_hold_the_numbers_of_the_text_tables():
    recs = [{"init": i, "n": n, "iou": v} for i, n, v in
            [("random", 1, .4), ("random", 1, .6), ("isl", 1, .7), ("isl", 1, .7), ("random", 10, .8), ("isl", 10, .8)]]
    rows, cols = transfer.summary_table(recs, labels={"isl": "ISL init"})
    assert cols == ["N", "random", "ISL init"]
    assert rows[0] == ["1", "0.500 ± 0.141 (0.400–0.600)", "0.700 ± 0.000 (0.700–0.700)"]
    assert [r[0] for r in rows] == ["1", "10"]
    rows, cols = transfer.gain_table(recs)
    assert cols[:3] == ["N", "random", "isl"]
    assert rows[0] == [1, "0.500", "0.700", "+40.0 %", "+31.3 %"] and rows[1][3] == "+0.0 %"


def test_legend_below_and_error_key_move_legends_off_the_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = [{"init": i, "n": n, "seed": 0, "iou": v} for i, n, v in [("isl", 1, .3), ("isl", 4, .5), ("random", 1, .2)]]
    fig, axes = plt.subplots(1, 2)
    transfer.plot_learning_curve(recs, ax=axes[0])
    transfer.plot_learning_curve(recs[:2], ax=axes[1])
    legend = transfer.legend_below(fig, axes)
    assert all(ax.get_legend() is None for ax in axes)
    assert [t.get_text() for t in legend.get_texts()] == ["isl", "random"]
    fig2 = transfer.plot_examples(np.zeros((8, 8)), np.eye(8, dtype=bool), {"isl": np.eye(8)})
    key = transfer.add_error_key(fig2)
    assert len(key.get_texts()) == 4
    plt.close("all")
