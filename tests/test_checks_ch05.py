"""Chapter 5's exercise checks: typical mistakes fail with the hint of the case they get wrong, and
the references agree with the chapter's solutions (that every solution passes its check, every stub
fails it and every reference passes it is tested for all chapters in ``test_exercises.py``)."""
import pytest
import torch
from fixtures import chapter_exercises, exercise_function

from islteach import checks
from islteach import shape_prior as sp

EXERCISES = chapter_exercises("05_shape_priors")


def test_the_chapter_has_these_code_exercises():
    assert sorted(EXERCISES) == ["ex-05-count-loss", "ex-05-image-mask"]


def test_count_loss_solution_agrees_with_the_reference_and_the_training_loss():
    solution = exercise_function(EXERCISES["ex-05-count-loss"])
    g = torch.Generator().manual_seed(1)
    presence = torch.rand(5, 128, generator=g)
    counts = torch.randint(0, 30, (5,), generator=g)
    want = float(sp.count_loss(presence, counts))
    assert float(solution(presence, counts)) == pytest.approx(want, rel=1e-6)
    mask = torch.rand(5, 8, 8, generator=g)
    _, parts = sp.shape_prior_loss(mask, mask > 0.5, presence, counts, alpha=0.01)
    assert parts["count"] == pytest.approx(want, rel=1e-6)


def test_image_mask_solution_agrees_with_the_reference():
    solution = exercise_function(EXERCISES["ex-05-image-mask"])
    g = torch.Generator().manual_seed(2)
    log_ps = -torch.rand(3, 7, 6, 5, generator=g) * 4
    presence = torch.rand(3, 7, generator=g)
    assert torch.allclose(solution(log_ps, presence), sp.combine_instances(log_ps, presence))


def _failed(label, fn):
    report = checks.evaluate(label, fn)
    assert not report.passed, str(report)
    return [c.name for c in report.cases if not c.passed], str(report)


@pytest.mark.parametrize("wrong, failing", [
    (lambda p, k: ((p.sum(1) - k) ** 2).sum(), "mean of the squares"),           # sum over the batch
    (lambda p, k: (p.sum(1) - k).mean() ** 2, "mean of the squares"),            # square of the mean error
    (lambda p, k: ((p.mean(1) - k) ** 2).mean(), "loss (12.8 - 10)^2"),          # mean over the candidates
    (lambda p, k: ((p.sum(1) - k) ** 2).mean().detach(), "gradient"),  # detached: no gradient
    (lambda p, k: ((p.sum(1) - k) ** 2), "0-d tensor"),                          # no batch reduction
])
def test_count_loss_mistakes_fail_with_a_hint(wrong, failing):
    names, text = _failed("ex-05-count-loss", wrong)
    assert any(failing in n for n in names), text
    assert "hint:" in text


@pytest.mark.parametrize("wrong, failing", [
    (lambda lp, pz: (lp * pz[:, :, None, None]).amax(1), "exp(log p(s))"),               # forgets the exp
    (lambda lp, pz: (lp.exp() * pz[:, :, None, None]).sum(1), "not the sum"),            # sum, not max
    (lambda lp, pz: lp.exp().amax(1) * pz.amax(1)[:, None, None], "presence weights"),   # max before weighting
    (lambda lp, pz: torch.from_numpy((lp.exp() * pz[:, :, None, None]).detach().numpy().max(1)), "gradient"),
])
def test_image_mask_mistakes_fail_with_a_hint(wrong, failing):
    names, text = _failed("ex-05-image-mask", wrong)
    assert any(failing in n for n in names), text
    assert "hint:" in text


def test_count_loss_reference_rejects_mismatched_counts():
    with pytest.raises(ValueError, match="counts"):
        sp.count_loss(torch.rand(2, 3), torch.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="presence"):
        sp.count_loss(torch.rand(6), torch.tensor([1.0]))


def test_checks_are_fast():
    import time

    for label in ("ex-05-count-loss", "ex-05-image-mask"):
        t0 = time.perf_counter()
        checks.evaluate(label, checks.reference(label))
        assert time.perf_counter() - t0 < 2.0
