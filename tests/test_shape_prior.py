"""Specifications of islteach.shape_prior (Costa et al.'s canonical shape + affine encoder)."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from skimage.draw import ellipse as draw_ellipse
from skimage.measure import regionprops

from islteach import shape_prior as sp


class Disc(nn.Module):
    """An exact canonical shape: a disc of ``radius`` with a sharp edge (log-probabilities)."""

    def __init__(self, radius=0.5, sharpness=200.0):
        super().__init__()
        self.radius = radius
        self.sharpness = sharpness
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, coords):
        r = torch.sqrt((coords ** 2).sum(-1) + 1e-12)
        return torch.nn.functional.logsigmoid(self.sharpness * (self.radius - r)) + 0 * self.dummy


def _affine(L, center):
    L = torch.tensor(L, dtype=torch.float32)
    c = torch.tensor(center, dtype=torch.float32)
    return L[None, None], (-(L @ c))[None, None]


def _render_mask(L, t, size=128, radius=0.5):
    logp = sp.render_instances(Disc(radius), L, t, size)
    return (logp.exp() >= 0.5)[0, 0].numpy()


def _iou(a, b):
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


# --------------------------------------------------------------------------- rendering
def test_diagonal_transform_of_a_disc_renders_an_axis_aligned_ellipse_of_the_expected_size():
    # X' = L (X - c) with L = diag(4, 2): a disc of radius 0.5 becomes semi-axes 0.5/4 and
    # 0.5/2 in [-1, 1] units, i.e. 8 px (x) and 16 px (y) on a 128 px image, centred at c.
    L, t = _affine([[4.0, 0.0], [0.0, 2.0]], [0.25, -0.25])
    mask = _render_mask(L, t)
    props = regionprops(mask.astype(np.uint8))[0]
    cy, cx = props.centroid
    assert abs(cx - ((0.25 + 1) * 64 - 0.5)) < 0.5
    assert abs(cy - ((-0.25 + 1) * 64 - 0.5)) < 0.5
    assert abs(mask.sum() - math.pi * 8 * 16) / (math.pi * 8 * 16) < 0.03
    rows, cols = np.nonzero(mask)
    assert cols.max() - cols.min() + 1 == 16
    assert rows.max() - rows.min() + 1 == 32


def test_sheared_transform_renders_the_ellipse_that_instance_ellipses_describes():
    L, t = _affine([[5.0, 0.0], [2.0, 3.0]], [-0.3, 0.2])
    mask = _render_mask(L, t)
    (cx, cy, w, h, angle), = sp.instance_ellipses(L[0].numpy(), t[0].numpy(), 128, radius=0.5)
    rr, cc = draw_ellipse(cy, cx, h / 2, w / 2, shape=mask.shape, rotation=-math.radians(angle))
    expected = np.zeros_like(mask)
    expected[rr, cc] = True
    assert _iou(mask, expected) > 0.93
    # and the ellipse's own geometry: area pi * a * b, orientation of the major axis
    assert abs(mask.sum() - math.pi * w * h / 4) / mask.sum() < 0.03
    props = regionprops(mask.astype(np.uint8))[0]
    major_along_w = w > h
    theta = math.radians(angle) + (0 if major_along_w else math.pi / 2)
    # skimage's orientation: angle between the row axis and the major axis
    major_dir = np.array([math.sin(theta), math.cos(theta)])  # (row, col)
    sk_dir = np.array([math.cos(props.orientation), math.sin(props.orientation)])
    assert abs(abs(major_dir @ sk_dir) - 1) < 0.01


def test_render_mask_matches_the_direct_max_over_instances_in_value_and_gradient():
    torch.manual_seed(0)
    shape = sp.ShapeMLP()
    L = (torch.randn(2, 12, 2, 2) * 2).tril().requires_grad_()
    t = torch.randn(2, 12, 2).requires_grad_()
    pz = torch.rand(2, 12).requires_grad_()
    w = torch.rand(2, 16, 16)
    direct = sp.combine_instances(sp.render_instances(shape, L, t, 16), pz)
    grads_direct = torch.autograd.grad((direct * w).sum(), [L, t, pz, shape.fc1.weight])
    fast = sp.render_mask(shape, L, t, pz, 16, search="exact", chunk=5)
    grads_fast = torch.autograd.grad((fast * w).sum(), [L, t, pz, shape.fc1.weight])
    torch.testing.assert_close(fast, direct)
    for a, b in zip(grads_fast, grads_direct):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # the lookup-table search picks the same instance except at near-ties
    looked_up = sp.render_mask(shape, L, t, pz, 16, search="lookup").detach()
    direct = direct.detach()
    assert float((looked_up - direct).abs().max()) < 0.02
    assert float((looked_up - direct).abs().mean()) < 1e-3


def test_shape_mlp_has_layers_of_8_4_1_outputs_with_xyr_concatenated_and_returns_log_likelihoods():
    mlp = sp.ShapeMLP()
    assert (mlp.fc1.in_features, mlp.fc1.out_features) == (3, 8)
    assert (mlp.fc2.in_features, mlp.fc2.out_features) == (8 + 3, 4)
    assert (mlp.fc3.in_features, mlp.fc3.out_features) == (4 + 3, 1)
    logp = mlp(sp.canonical_grid(16) * 3)
    assert logp.shape == (16, 16)
    assert bool((logp <= 0).all())
    with pytest.raises(ValueError, match="coords"):
        mlp(torch.zeros(4, 3))


def test_encoder_gives_128_instances_with_lower_triangular_positive_diagonal_transforms_for_128px():
    enc = sp.AffineEncoder(encoder_name="tiny", encoder_weights=None)
    out = enc(torch.randn(2, 1, 128, 128))
    L, t, c = out["L"], out["t"], out["center"]
    assert L.shape == (2, 128, 2, 2) and t.shape == (2, 128, 2) and out["presence"].shape == (2, 128)
    assert bool((L[..., 0, 1] == 0).all())
    assert bool((L[..., 0, 0] > 0).all()) and bool((L[..., 1, 1] > 0).all())
    torch.testing.assert_close(-(torch.linalg.solve(L, t.unsqueeze(-1))).squeeze(-1), c, rtol=1e-4, atol=1e-4)
    assert bool(((out["presence"] > 0) & (out["presence"] < 1)).all())


def test_encoder_falls_back_to_random_init_and_says_so_when_imagenet_weights_are_unavailable(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("islteach.models.weights_available", lambda *a, **k: False)
    enc = sp.AffineEncoder(encoder_name="resnet18", encoder_weights="imagenet")
    assert enc.init == "random"
    assert "RANDOM" in capsys.readouterr().out
    out = enc(torch.randn(1, 1, 128, 128))  # last stage dilated: still an 8 x 8 grid
    assert out["L"].shape == (1, 128, 2, 2)


# --------------------------------------------------------------------------- loss
def test_loss_is_bce_plus_dice_plus_alpha_times_squared_count_error():
    target = torch.zeros(2, 8, 8)
    target[:, 2:6, 2:6] = 1
    presence = torch.tensor([[0.5, 0.5, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]], requires_grad=True)
    counts = torch.tensor([3.0, 1.0])  # errors: -1 and +3 -> mean squared error (1 + 9) / 2 = 5
    total, parts = sp.shape_prior_loss(target.clone(), target, presence, counts, alpha=0.1)
    assert parts["bce"] < 1e-4 and parts["dice"] < 1e-6
    assert parts["count"] == pytest.approx(5.0)
    assert float(total.detach()) == pytest.approx(parts["bce"] + parts["dice"] + 0.1 * 5.0, abs=1e-5)
    total.backward()
    # d/dp_i of alpha * mean_b (sum_i p - K)^2 = alpha * 2 (sum - K) / B
    assert presence.grad[0].tolist() == pytest.approx([0.1 * 2 * (2 - 3) / 2] * 4)
    assert presence.grad[1].tolist() == pytest.approx([0.1 * 2 * (4 - 1) / 2] * 4)
    no_count, _ = sp.shape_prior_loss(target.clone(), target, presence, counts, alpha=0.0)
    assert float(no_count) == pytest.approx(parts["bce"] + parts["dice"], abs=1e-5)


def test_loss_of_an_empty_prediction_on_a_full_mask_is_large():
    target = torch.ones(1, 8, 8)
    total, parts = sp.shape_prior_loss(torch.zeros(1, 8, 8), target)
    assert parts["dice"] > 0.9 and parts["bce"] > 5


def test_loss_rejects_counts_of_the_wrong_length():
    m = torch.rand(2, 4, 4)
    with pytest.raises(ValueError, match="counts"):
        sp.shape_prior_loss(m, m, torch.rand(2, 3), torch.tensor([1.0, 2.0, 3.0]))


# --------------------------------------------------------------------------- inference
def _disc_model():
    model = sp.ShapePriorModel(encoder_name="tiny", encoder_weights=None)
    model.shape = Disc(0.5)
    return model


def _params(centers, scales, presence):
    L = np.stack([np.diag([s, s]) for s in scales]).astype(np.float32)
    c = np.asarray(centers, np.float32)
    t = -np.einsum("kij,kj->ki", L, c)
    return {"L": L[None], "t": t[None], "center": c[None], "presence": np.asarray(presence, np.float32)[None]}


def test_post_processing_merges_a_duplicate_inside_a_bigger_instance_but_not_a_neighbour():
    # big disc (radius 16 px), a small duplicate inside it, a separate nucleus, an absent one
    params = _params([[0, 0], [0.05, 0.05], [0.6, 0.6], [-0.6, -0.6]], [2.0, 5.0, 5.0, 5.0], [0.9, 0.95, 0.9, 0.1])
    images = np.zeros((1, 64, 64), np.float32)
    model = _disc_model()
    raw = sp.predict_instances(model, images, params=params, post=False)
    merged = sp.predict_instances(model, images, params=params, post=True)
    assert set(np.unique(raw)) == {0, 1, 2, 3}  # the absent candidate is not drawn
    assert set(np.unique(merged)) == {0, 1, 2}
    assert merged[0, 31, 31] == merged[0, 33, 33] != 0  # centre of the big one and of its duplicate


def test_coarse_grid_prediction_is_close_to_full_resolution_prediction():
    params = _params([[0.1, -0.3], [0.6, 0.5]], [2.0, 2.5], [0.9, 0.8])
    images = np.zeros((1, 128, 128), np.float32)
    model = _disc_model()
    full = sp.predict_instances(model, images, params=params)
    coarse = sp.predict_instances(model, images, params=params, grid_size=32)
    assert _iou(full > 0, coarse > 0) > 0.9


def test_evaluate_instances_scores_a_perfect_prediction_one_and_an_empty_one_zero():
    gt = np.zeros((2, 32, 32), np.int32)
    gt[0, 2:10, 2:10] = 1
    gt[0, 15:25, 15:25] = 2
    gt[1, 5:9, 20:30] = 1
    perfect = sp.evaluate_instances(gt, gt)
    assert perfect["f1_05"] == 1.0 and perfect["f1_mean"] == 1.0 and perfect["iou"] == 1.0
    assert perfect["dice"] == 1.0
    empty = sp.evaluate_instances(gt, np.zeros_like(gt))
    assert empty["f1_05"] == 0.0 and empty["iou"] == 0.0
    assert list(perfect["f1"]) == [f"{t:g}" for t in sp.F1_THRESHOLDS]


def test_cut_patches_and_count_instances_give_the_paper_supervision():
    labels = np.zeros((1, 256, 256), np.int32)
    labels[0, 10:20, 10:20] = 1
    labels[0, 120:136, 120:136] = 2  # cut in four by the patch borders
    images = np.random.default_rng(0).random((1, 256, 256)).astype(np.float32)
    x, y, src = sp.cut_patches(images, labels, 128)
    assert x.shape == (4, 128, 128) and src.tolist() == [0, 0, 0, 0]
    assert [sp.count_instances(p) for p in y] == [2, 1, 1, 1]
    with pytest.raises(ValueError, match="labels"):
        sp.cut_patches(images, labels.astype(float), 128)
    with pytest.raises(ValueError, match="labels"):
        sp.count_instances(np.ones((4, 4)))


# --------------------------------------------------------------------------- training
def test_training_refuses_a_count_loss_without_counts():
    model = sp.ShapePriorModel(encoder_name="tiny", encoder_weights=None)
    x = np.zeros((2, 64, 64), np.float32)
    with pytest.raises(ValueError, match="counts"):
        sp.train_shape_prior(model, x, x > 0, None, steps=1, alpha=0.01)
    with pytest.raises(ValueError, match="images"):
        sp.train_shape_prior(model, x.astype(int), x > 0, None, steps=1, alpha=0.0)


def _synthetic_discs(n, size=64, max_count=5, seed=0):
    """Images of 1..max_count bright non-touching discs (radius 5-7 px) and their labels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = np.zeros((n, size, size), np.float32)
    labels = np.zeros((n, size, size), np.int32)
    for i in range(n):
        k = rng.integers(1, max_count + 1)
        placed = []
        while len(placed) < k:
            r = rng.uniform(5, 7)
            cy, cx = rng.uniform(r + 1, size - r - 1, 2)
            if all((cy - py) ** 2 + (cx - px) ** 2 > (r + pr + 3) ** 2 for py, px, pr in placed):
                placed.append((cy, cx, r))
                inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
                labels[i][inside] = len(placed)
        images[i] = (labels[i] > 0) * 1.0 + rng.normal(0, 0.1, (size, size))
    return images, labels


@pytest.mark.slow
def test_a_short_training_on_synthetic_discs_learns_to_count_them():
    torch.manual_seed(0)
    images, labels = _synthetic_discs(48, seed=0)
    counts = np.array([sp.count_instances(lab) for lab in labels])
    model = sp.ShapePriorModel(encoder_name="tiny", encoder_weights=None, presence_prior=0.5)
    before = sp.predict_params(model, images)["presence"].sum(1)
    sp.train_shape_prior(model, images, labels > 0, counts, steps=120, batch_size=8, alpha=0.05,
                         seed=0, device="cpu", progress=False)
    test_images, test_labels = _synthetic_discs(16, seed=1)
    test_counts = np.array([sp.count_instances(lab) for lab in test_labels])
    after = sp.predict_params(model, test_images)["presence"].sum(1)
    err_before = np.abs(before[:16] - counts[:16]).mean()
    err_after = np.abs(after - test_counts).mean()
    assert err_before > 5  # 32 candidates at p(z) = 0.5 -> about 16 "instances" before training
    assert err_after < 0.75
    assert np.corrcoef(after, test_counts)[0, 1] > 0.8


def test_canonical_shape_stats_call_a_disc_round_and_an_ellipse_elongated():
    disc = sp.canonical_shape_stats(Disc(0.8))
    assert disc["radius"] == pytest.approx(0.8, rel=0.02)
    assert disc["axis_ratio"] == pytest.approx(1.0, abs=0.02)

    class Stretched(Disc):
        def forward(self, coords):
            return super().forward(coords * torch.tensor([1.0, 2.0]))

    assert sp.canonical_shape_stats(Stretched(0.8))["axis_ratio"] == pytest.approx(2.0, rel=0.03)


def test_renamed_arguments_encoder_name_crop_size_and_lr_as_the_one_cycle_peak():
    with pytest.raises(ValueError, match="encoder_name"):
        sp.build_backbone(encoder_name=None)
    images = np.zeros((1, 128, 128), np.float32)
    labels = np.zeros((1, 128, 128), np.int32)
    x, _, _ = sp.cut_patches(images, labels, crop_size=64, stride=64)
    assert x.shape == (4, 64, 64)
    with pytest.raises(ValueError, match="crop_size"):
        sp.cut_patches(images, labels, crop_size=0)
    torch.manual_seed(0)
    model = sp.ShapePriorModel(encoder_name="tiny", encoder_weights=None)
    assert model.encoder.encoder_name == "tiny"
    hist = sp.train_shape_prior(model, x, x > 0, None, steps=10, batch_size=2, lr=0.05, alpha=0.0,
                                device="cpu", log_every=1, progress=False)
    assert max(hist["lr"]) == pytest.approx(0.05) and hist["lr"][0] < 0.05


# --------------------------------------------------------------------------- checkpoints
def _tiny_shape_run(steps, checkpoint_dir=None, callback=None, checkpoint_every=4, **kw):
    torch.manual_seed(0)
    images, labels = _synthetic_discs(6, seed=2)
    counts = np.array([sp.count_instances(lab) for lab in labels])
    model = sp.ShapePriorModel(encoder_name="tiny", encoder_weights=None)
    hist = sp.train_shape_prior(model, images, labels > 0, counts, steps=steps, batch_size=2, lr=0.05,
                                alpha=0.01, seed=3, device="cpu", log_every=5, progress=False,
                                checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
                                callback=callback, **kw)
    return model, hist


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _curves(hist):
    return {k: v for k, v in hist.items() if k not in ("seconds", "resumed_from")}


def test_training_interrupted_after_a_checkpoint_resumes_to_the_uninterrupted_result(tmp_path):
    ref_model, ref_hist = _tiny_shape_run(12)

    def crash(step, loss):
        if step == 6:
            raise RuntimeError("simulated disconnect")

    with pytest.raises(RuntimeError, match="disconnect"):
        _tiny_shape_run(12, tmp_path, callback=crash)  # checkpoint at step 4, inside a log window of 5
    ck = torch.load(tmp_path / "last.pt", weights_only=False)
    assert ck["step"] == 4 and ck["n_acc"] == 4 and "generator" in ck and ck["scaler"] is None
    model, hist = _tiny_shape_run(12, tmp_path)
    assert hist["resumed_from"] == 4
    assert _same_weights(model, ref_model)
    assert _curves(hist) == _curves(ref_hist)
    # a rerun after the finished training loads the final checkpoint and trains nothing
    seen = []
    again, hist2 = _tiny_shape_run(12, tmp_path, callback=lambda s, l: seen.append(s))
    assert seen == [] and hist2["resumed_from"] == 12
    assert _same_weights(again, ref_model) and _curves(hist2) == _curves(ref_hist)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary file left


def test_resuming_refuses_another_number_of_steps_and_bad_checkpoint_arguments(tmp_path):
    _tiny_shape_run(4, tmp_path)
    with pytest.raises(ValueError, match="steps"):
        _tiny_shape_run(8, tmp_path)
    _tiny_shape_run(8, tmp_path, resume=False)  # starts over, overwrites the checkpoint
    assert torch.load(tmp_path / "last.pt", weights_only=False)["steps"] == 8
    with pytest.raises(ValueError, match="checkpoint_every"):
        _tiny_shape_run(4, tmp_path, checkpoint_every=0)


def test_elongated_initial_shape_is_a_diamond_twice_as_wide_as_high():
    torch.manual_seed(0)
    mlp = sp.ShapeMLP(init="elongated")
    stats = sp.canonical_shape_stats(mlp)
    assert abs(stats["axis_ratio"] - 2.0) < 0.05  # not a disc: a round result must be learned
    p = torch.exp(mlp(torch.tensor([[1.2, 0.0], [0.0, 0.6], [0.0, 1.2], [0.6, 0.6]])))
    assert p[0] > 0.5 and p[1] > 0.5 and p[2] < 0.02 and p[3] < 0.5  # |x|/2 + |y| < 3/4 inside
    radial = sp.canonical_shape_stats(sp.ShapeMLP(init="radial"))
    assert abs(radial["axis_ratio"] - 1.0) < 0.05
    with pytest.raises(ValueError, match="init"):
        sp.ShapeMLP(init="square")
    with pytest.raises(ValueError, match="widths"):
        sp.ShapeMLP(widths=(3, 2), init="elongated")


def test_seed_run_fixes_the_whole_run_by_its_seed():
    from islteach.synth import make_field

    f = [make_field(64, seed=s) for s in range(3)]
    x = np.stack([(g["dapi"] - g["dapi"].mean()) / g["dapi"].std() for g in f]).astype(np.float32)
    lab = np.stack([g["nuclei"] for g in f])
    k = np.array([sp.count_instances(l) for l in lab])
    kw = dict(alpha=1e-2, steps=3, encoder_name="tiny", shape_init="elongated", batch_size=2, lr=1e-2,
              grid_size=16, device="cpu")
    _, _, a = sp.seed_run(x[:2], lab[:2] > 0, k[:2], x[2:], lab[2:], seed=4, **kw)
    _, _, b = sp.seed_run(x[:2], lab[:2] > 0, k[:2], x[2:], lab[2:], seed=4, **kw)
    assert a == b and a["seed"] == 4
    assert set(a) == {"seed", "n_present", "shape_init", "shape", "f1_05", "f1_05_post"}
    assert abs(a["shape_init"]["axis_ratio"] - 2.0) < 0.05 and 0.0 <= a["f1_05_post"] <= 1.0


def test_dsb_checkpoint_tag_names_every_size_of_the_run_and_keeps_the_book_s_folder_names():
    from islteach.profiles import get_profile

    c = get_profile("quick", smoke=False).ch5
    base = sp.dsb_checkpoint_tag("count loss", c, init="random", alpha=c.alpha, seed=0)
    # the folder name chapter 5 has always used (a rename would retrain from scratch)
    assert base == (f"ch5_dsb_count-loss_{c.encoder_name}-random_c{c.crop_size}-{c.train_stride}"
                    f"_t{c.dsb_test_images}_b{c.batch_size}_{c.optimizer}_lr{c.lr:g}_a{c.alpha:g}"
                    f"_g{c.train_grid}_{c.shape_init}_p{c.presence_prior:g}_s{c.steps}_seed0")
    others = {sp.dsb_checkpoint_tag("no count loss", c, init="random", alpha=0.0, seed=0),
              sp.dsb_checkpoint_tag("count loss", c, init="imagenet", alpha=c.alpha, seed=0),
              sp.dsb_checkpoint_tag("count loss", c, init="random", alpha=c.alpha, seed=1),
              sp.dsb_checkpoint_tag("count loss", get_profile("colab", smoke=False).ch5, init="random",
                                    alpha=c.alpha, seed=0)}
    assert base not in others and len(others) == 4
