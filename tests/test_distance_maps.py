"""Chapter 4 building blocks: targets, losses, models, training recipes, post-processing."""
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from islteach import distance_maps as I
from islteach import transfer
from islteach.data import normalize_percentile
from islteach.losses import CombinedLoss, TwoMapMSELoss, initial_loss_ratio
from islteach.metrics import matching, score_record
from islteach.synth import make_field


def _two_touching_squares():
    lab = np.zeros((24, 40), np.int32)
    lab[4:20, 4:20] = 1
    lab[4:20, 20:36] = 2
    return lab


# ------------------------------------------------------------------------------ targets
def test_bonte_targets_are_pixel_distance_and_mask():
    lab = _two_touching_squares()
    t = I.bonte_targets(lab)
    assert t.shape == (2,) + lab.shape and t.dtype == np.float32
    assert np.array_equal(t[1], (lab > 0).astype(np.float32))
    assert t[0].max() == 8.0  # 16-pixel square: 8 pixels from its centre to outside
    assert (t[0][lab == 0] == 0).all()
    # each touching square has its own peak: distance 1 on both sides of the shared edge
    assert t[0][10, 19] == 1.0 and t[0][10, 20] == 1.0


def test_fpn2ws_targets_normalised_distance_peaks_at_one_and_border_is_blurred():
    lab = _two_touching_squares()
    t = I.fpn2ws_targets(lab, sigma=1.0)
    assert t.shape == (2,) + lab.shape
    assert t[0].max() == pytest.approx(1.0) and t[0].min() == 0.0
    assert 0.0 <= t[1].min() and t[1].max() <= 1.0
    assert t[1][10, 19] > t[1][10, 12]  # high on the shared border, low inside


def test_targets_reject_float_labels():
    with pytest.raises(ValueError, match="labels"):
        I.bonte_targets(np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match="recipe"):
        I.make_targets(np.zeros((8, 8), np.int32), "maskrcnn")


def test_rescale_labels_keeps_integer_ids_and_halves_the_size():
    lab = _two_touching_squares()
    small = I.rescale_labels(lab, 0.5)
    assert small.shape == (12, 20) and small.dtype == np.int32
    assert set(np.unique(small)) == {0, 1, 2}


# ------------------------------------------------------------------------------- losses
def test_combined_loss_is_mse_plus_alpha_times_bce():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 2, 8, 8, generator=g)
    target = torch.stack([torch.rand(2, 8, 8, generator=g) * 5, (torch.rand(2, 8, 8, generator=g) > 0.5).float()], 1)
    loss = CombinedLoss(alpha=10.0)
    mse = torch.nn.functional.mse_loss(pred[:, 0], target[:, 0])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(pred[:, 1], target[:, 1])
    assert float(loss(pred, target)) == pytest.approx(float(mse + 10.0 * bce), rel=1e-6)
    t = loss.terms(pred, target)
    assert float(t["weighted_bce"]) == pytest.approx(10.0 * float(t["bce"]))


def test_combined_loss_rejects_one_channel_predictions_and_negative_alpha():
    with pytest.raises(ValueError, match="prediction"):
        CombinedLoss()(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="alpha"):
        CombinedLoss(alpha=-1)


def test_initial_loss_ratio_is_mean_squared_distance_over_ln2():
    d = np.array([0.0, 2.0, 4.0])
    assert initial_loss_ratio(d) == pytest.approx((0 + 4 + 16) / 3 / math.log(2))
    with pytest.raises(ValueError):
        initial_loss_ratio(np.array([-1.0]))


def test_two_map_mse_sums_the_two_channel_errors():
    pred = torch.zeros(1, 2, 4, 4)
    target = torch.cat([torch.full((1, 1, 4, 4), 0.5), torch.full((1, 1, 4, 4), 1.0)], 1)
    assert float(TwoMapMSELoss()(pred, target)) == pytest.approx(0.25 + 1.0)


# ------------------------------------------------------------------------------- models
def test_isl_two_output_appends_two_convolutions_to_a_one_output_model():
    body = torch.nn.Conv2d(3, 1, 3, padding=1)
    net = I.isl_two_output(body, hidden=4)
    convs = [m for m in net.head if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 2 and convs[0].in_channels == 1 and convs[1].out_channels == 2
    assert net(torch.zeros(2, 3, 16, 16)).shape == (2, 2, 16, 16)
    assert net.islteach_init == "isl"
    with pytest.raises(TypeError):
        I.isl_two_output(np.zeros(3))


def test_isl_two_output_starts_as_the_zero_shot_segmenter_and_survives_negative_outputs():
    torch.manual_seed(0)
    body = torch.nn.Conv2d(3, 1, 3, padding=1)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        f = torch.nn.functional.leaky_relu(body(x), 0.1)
        out = I.isl_two_output(body, shift=0.5)(x)
    assert torch.allclose(out[:, :1], f, atol=0.05)  # distance channel = the virtual stain
    assert torch.allclose(out[:, 1:], f - 0.5, atol=0.05)  # mask logits: stain above 0.5
    # a body whose output is negative everywhere still passes gradient to its weights
    neg = torch.nn.Conv2d(3, 1, 1)
    with torch.no_grad():
        neg.weight.zero_()
        neg.bias.fill_(-3.0)
    net = I.isl_two_output(neg, shift=None)
    net(x).sum().backward()
    assert float(neg.bias.grad.abs()) > 0
    with pytest.raises(ValueError, match="shift"):
        I.isl_two_output(body, shift=float("nan"))


def test_fpn2ws_has_two_independent_sigmoid_networks():
    m = I.fpn2ws_model("resnet18", None, in_channels=1, pyramid_channels=64, segmentation_channels=32)
    out = m(torch.randn(1, 1, 64, 64))
    assert out.shape == (1, 2, 64, 64)
    assert float(out.detach().min()) >= 0.0 and float(out.detach().max()) <= 1.0
    ids_d = {id(p) for p in m.distance_net.parameters()}
    assert not ids_d & {id(p) for p in m.border_net.parameters()}


def test_fpn2ws_freezes_a_pretrained_encoder_only_for_the_first_steps():
    field = make_field(64, seed=3)
    x = normalize_percentile(field["dapi"])
    ds = I.instance_dataset([x], [field["nuclei"]], "fpn2ws", crop_size=64, n_crops=2)
    m = I.fpn2ws_model("resnet18", None, pyramid_channels=64, segmentation_channels=32)
    m.islteach_init = "imagenet"  # pretend it is pretrained: freezing applies
    enc0 = [p.detach().clone() for p in m.distance_net.encoder.parameters()]
    dec0 = [p.detach().clone() for p in m.distance_net.decoder.parameters()]
    seen = {}

    def cb(step, loss):
        if step == 2:
            seen["enc_same"] = all(torch.equal(a, b) for a, b in zip(enc0, m.distance_net.encoder.parameters()))
            seen["dec_same"] = all(torch.equal(a, b) for a, b in zip(dec0, m.distance_net.decoder.parameters()))

    h = I.train_fpn2ws(m, ds, steps=4, freeze_steps=2, batch_size=2, progress=False, callback=cb)
    assert h.frozen_steps == 2
    assert seen == {"enc_same": True, "dec_same": False}
    assert not all(torch.equal(a, b) for a, b in zip(enc0, m.distance_net.encoder.parameters()))
    assert all(p.requires_grad for p in m.parameters())


def test_random_fpn2ws_encoder_is_never_frozen():
    field = make_field(64, seed=3)
    ds = I.instance_dataset([normalize_percentile(field["dapi"])], [field["nuclei"]], "fpn2ws",
                            crop_size=64, n_crops=1)
    small = I.fpn2ws_model("resnet18", None, pyramid_channels=64, segmentation_channels=32)
    h = I.train_fpn2ws(small, ds, steps=1, freeze_steps=5, batch_size=1,
                       progress=False)
    assert h.frozen_steps == 0


# ------------------------------------------------------------------------ checkpoints
def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _curves(h):
    return (h.step, h.loss, h.lr, h.val_step, h.val)


def _bonte_run(steps, checkpoint_dir=None, **kw):
    field = make_field(64, seed=3)
    ds = I.instance_dataset([normalize_percentile(field["dapi"])], [field["nuclei"]], "bonte",
                            crop_size=32, n_crops=3, seed=1)
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 2, 1))
    h = I.train_bonte(m, ds, steps=steps, alpha=1.0, batch_size=2, lr=3e-3, seed=5, progress=False,
                      device="cpu", checkpoint_dir=checkpoint_dir, checkpoint_every=2, **kw)
    return m, h


def test_bonte_training_continued_from_its_checkpoint_equals_one_longer_run(tmp_path):
    ref, h_ref = _bonte_run(4)
    _bonte_run(3, tmp_path)  # checkpoints at steps 2 and 3
    m, h = _bonte_run(4, tmp_path)
    assert h.resumed_from == 3
    assert _same_weights(m, ref) and _curves(h) == _curves(h_ref)
    # a rerun after the finished training loads its checkpoint: same model and history, no step trained
    seen = []
    again, h2 = _bonte_run(4, tmp_path, callback=lambda s, l: seen.append(s))
    assert seen == [] and h2.resumed_from == 4
    assert _same_weights(again, ref) and _curves(h2) == _curves(h_ref)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_bonte_training_gives_the_same_weights_whether_or_not_a_probe_read_the_data_first():
    """Chapter 4 reads 16 training items (the loss-ratio probe) before it trains: that must not matter."""
    def run(probe):
        field = make_field(64, seed=3)
        ds = I.instance_dataset([normalize_percentile(field["dapi"])], [field["nuclei"]], "bonte",
                                crop_size=32, n_crops=3, seed=1)
        if probe:
            for i in range(len(ds)):
                for _ in range(4):
                    ds[i]
        torch.manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 2, 1))
        h = I.train_bonte(m, ds, steps=6, alpha=1.0, batch_size=2, lr=3e-3, seed=5, progress=False, device="cpu")
        return m, h

    (a, ha), (b, hb) = run(False), run(True)
    assert _same_weights(a, b) and ha.loss == hb.loss


def test_bonte_seed_run_trains_chooses_h_on_validation_and_scores_the_test_images():
    f = [make_field(64, seed=s) for s in (3, 4, 5)]
    x = [normalize_percentile(g["dapi"]) for g in f]
    y = [g["nuclei"] for g in f]
    kw = dict(alpha=1.0, steps=3, encoder_name="resnet18", encoder_depth=3, decoder_channels=[16, 8, 4],
              crop_size=32, n_crops=2, batch_size=2, h_values=[0.5, 1.0], progress=False, device="cpu")
    m, h, rec = I.bonte_seed_run(x[:1], y[:1], x[1:2], y[1:2], x[2:], y[2:], seed=7, **kw)
    assert rec["seed"] == 7 and rec["h"] in (0.5, 1.0) and set(rec["f1"]) >= {"0.7", "0.9"}
    assert h.step[-1] == 3
    _, _, again = I.bonte_seed_run(x[:1], y[:1], x[1:2], y[1:2], x[2:], y[2:], seed=7, **kw)
    assert again["f1"] == rec["f1"]  # the seed fixes the whole run


class _TinyFPN(torch.nn.Module):
    """A stand-in for one FPN of FPN2-WS: an ``encoder`` and a sigmoid head (fast on a CPU)."""

    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.head = torch.nn.Conv2d(8, 1, 1)

    def forward(self, x):
        return torch.sigmoid(self.head(torch.relu(self.encoder(x))))


def _fpn_run(steps, checkpoint_dir=None, **kw):
    field = make_field(64, seed=3)
    ds = I.instance_dataset([normalize_percentile(field["dapi"])], [field["nuclei"]], "fpn2ws",
                            crop_size=32, n_crops=3, seed=1)
    torch.manual_seed(0)
    m = I.FPN2WS(_TinyFPN(), _TinyFPN())  # the module fpn2ws_model builds, with tiny networks
    m.islteach_init = "imagenet"  # pretend it is pretrained: the encoders are frozen for 2 steps
    h = I.train_fpn2ws(m, ds, steps=steps, freeze_steps=2, batch_size=2, seed=5, progress=False,
                       device="cpu", checkpoint_dir=checkpoint_dir, checkpoint_every=1, **kw)
    return m, h


def test_fpn2ws_resumes_inside_and_after_the_frozen_phase_like_an_uninterrupted_run(tmp_path):
    ref, h_ref = _fpn_run(3)
    assert h_ref.frozen_steps == 2

    def crash(step, loss):
        if step == 1:
            raise RuntimeError("simulated disconnect")

    with pytest.raises(RuntimeError, match="disconnect"):  # checkpoint at step 1: encoders still frozen
        _fpn_run(3, tmp_path / "inside", callback=crash)
    m, h = _fpn_run(3, tmp_path / "inside")
    assert h.resumed_from == 1 and h.frozen_steps == 2
    assert _same_weights(m, ref) and _curves(h) == _curves(h_ref)
    _fpn_run(2, tmp_path / "after")  # finished at step 2, the end of the frozen phase
    m, h = _fpn_run(3, tmp_path / "after")  # continued: the encoders must train again
    assert h.resumed_from == 2
    assert _same_weights(m, ref) and _curves(h) == _curves(h_ref)
    assert all(p.requires_grad for p in m.parameters())


# ------------------------------------------------------------------ post-processing / eval
def test_true_maps_give_back_the_true_instances_with_both_recipes():
    lab = _two_touching_squares()
    b = I.bonte_targets(lab)
    b[1] = np.where(b[1] > 0, 5.0, -5.0)  # mask logits
    assert matching(lab, I.bonte_instances(b, h=1.0)).at(0.9)["tp"] == 2
    z = I.fpn2ws_targets(lab)
    assert matching(lab, I.fpn2ws_instances(z, 0.6, min_size=0)).at(0.9)["tp"] == 2


def test_fpn2ws_foreground_threshold_keeps_a_noisy_background_out_of_the_nuclei():
    lab = _two_touching_squares()
    z = I.fpn2ws_targets(lab)
    z[0] = np.maximum(z[0], 0.05)  # a sigmoid output that never quite reaches 0
    grown = I.to_instances(z, "fpn2ws", (0.6, 0.02), min_size=0)
    trimmed = I.to_instances(z, "fpn2ws", (0.6, 0.1), min_size=0)
    assert (grown > 0).all()
    assert matching(lab, trimmed).at(0.8)["tp"] == 2


def test_choose_parameter_prefers_the_h_that_separates_touching_objects():
    lab = _two_touching_squares()
    b = I.bonte_targets(lab)
    b[1] = np.where(b[1] > 0, 5.0, -5.0)
    best, scores = I.choose_parameter([b], [lab], "bonte", [1.0, 20.0])
    assert best == 1.0 and scores[1.0] == 1.0 and scores[20.0] < 1.0


def test_bonte_mask_threshold_pair_rescues_an_uncalibrated_mask():
    lab = _two_touching_squares()
    b = I.bonte_targets(lab)
    b[1] = np.where(b[1] > 0, -0.5, -5.0)  # well ordered but below 0 everywhere
    assert I.to_instances(b, "bonte", 1.0).max() == 0
    assert matching(lab, I.to_instances(b, "bonte", (1.0, -1.0))).at(0.9)["tp"] == 2
    best, _ = I.choose_parameter([b], [lab], "bonte", [(1.0, 0.0), (1.0, -1.0)])
    assert best == (1.0, -1.0)
    with pytest.raises(ValueError, match="mask_threshold"):
        I.to_instances(b, "bonte", (1.0, 0.0, 2.0))


def _coarse_instances(lab, recipe, par, **kw):
    return I.to_instances(I.coarse_target_maps(lab, recipe, **kw), recipe, par)


def test_coarse_target_maps_full_resolution_is_exact_and_coarse_output_costs_high_iou():
    f = make_field(256, seed=5)
    lab = f["nuclei"].astype(np.int32)
    n = len(np.unique(lab)) - 1
    for recipe, par in (("bonte", 1.0), ("fpn2ws", (0.6, 0.02))):
        exact = _coarse_instances(lab, recipe, par, stride=1)
        assert matching(lab, exact).at(0.9)["tp"] >= 0.95 * n
    fine = score_record([lab], [_coarse_instances(lab, "fpn2ws", (0.5, 0.1), stride=4)])
    coarse = score_record([lab], [_coarse_instances(lab, "fpn2ws", (0.5, 0.1), scale=0.5, stride=4)])
    assert coarse["f1"]["0.9"] < fine["f1"]["0.9"]
    cands = [(0.5, 0.1), (0.6, 0.02)]
    b = I.resolution_bound([lab], "fpn2ws", cands, stride=4)
    assert b["f1_09"] == max(score_record([lab], [_coarse_instances(lab, "fpn2ws", c, stride=4)])["f1"]["0.9"]
                             for c in cands)
    assert b["parameters"]["f1_09"] in cands and b["f1_07"] >= b["f1_09"]
    with pytest.raises(ValueError, match="stride"):
        I.coarse_target_maps(lab, "bonte", stride=0)


def test_isl_field_split_keeps_the_test_quadrant_apart():
    x = np.arange(3 * 64 * 64, dtype=np.float32).reshape(3, 64, 64)
    lab = np.arange(64 * 64, dtype=np.int32).reshape(64, 64)
    region = (slice(32, 64), slice(32, 64))
    s = transfer.isl_field_split(x, lab, tile=16, n_val=2, seed=1, test_region=region)
    assert len(s["train_x"]) == 10 and len(s["val_x"]) == 2  # 12 tiles outside the quadrant
    assert np.array_equal(s["test_y"][0], lab[32:, 32:]) and s["test_x"][0].shape == (3, 32, 32)
    corners = s["train_corners"] + s["val_corners"]
    assert len(set(corners)) == 12 and all(not (y >= 32 and x0 >= 32) for y, x0 in corners)
    for (y, x0), t, ty in zip(s["train_corners"], s["train_x"], s["train_y"]):
        assert np.array_equal(t, x[:, y:y + 16, x0:x0 + 16]) and np.array_equal(ty, lab[y:y + 16, x0:x0 + 16])
    again = transfer.isl_field_split(x, lab, tile=16, n_val=2, seed=1, test_region=region)
    assert again["train_corners"] == s["train_corners"]
    with pytest.raises(ValueError, match="n_val"):
        transfer.isl_field_split(x, lab, tile=16, n_val=12, test_region=region)
    with pytest.raises(ValueError, match="differ"):
        transfer.isl_field_split(x, lab[:32], tile=16, test_region=region)


def test_score_record_reports_papers_scores_and_error_types():
    # was test_evaluate_reports_papers_scores_and_error_types (distance_maps.evaluate)
    lab = _two_touching_squares()
    merged = (lab > 0).astype(np.int32)
    r = score_record([lab], [merged])
    assert r["f1"]["0.7"] == 0.0 and r["f1"]["0.5"] == pytest.approx(2 / 3)
    assert len(r["f1"]) == len(r["thresholds"]) == 10
    assert r["errors"] == {"iou": 0.7, "tp": 0, "fp": 1, "fn": 2, "merges": 1, "splits": 0, "n_true": 2, "n_pred": 1}


def test_score_table_takes_score_records():
    lab = _two_touching_squares()
    table = I.score_table({"merged": score_record([lab], [(lab > 0).astype(np.int32)]),
                           "paper": {"F1@0.7": 0.97}})
    assert "| merged | 0.050 | 0.667 | 0.000 | 0.000 |" in table  # mAP (AP 0.5 at IoU 0.5 only), F1@0.5, @0.7, @0.9
    assert "| paper | - | - | 0.970 | - |" in table


def test_one_pixel_error_iou_matches_zakis_radius_60_and_4_example():
    assert I.one_pixel_error_iou(60) == pytest.approx(0.967, abs=5e-4)
    assert I.one_pixel_error_iou(4) == pytest.approx(0.563, abs=1e-3)
    assert I.one_pixel_error_iou(4, pixelated=True) < I.one_pixel_error_iou(60, pixelated=True)
    with pytest.raises(ValueError):
        I.one_pixel_error_iou(0.5)


def test_predict_maps_at_half_scale_returns_full_size_maps():
    net = torch.nn.Conv2d(1, 2, 1)
    out = I.predict_maps(net, np.zeros((50, 70), np.float32), scale=0.5)
    assert out.shape == (2, 50, 70) and out.dtype == np.float32


# ------------------------------------------------------------------------ overfit runs
@pytest.fixture(scope="module")
def cells_field():
    f = make_field(96, seed=1, spacing=1.1, density=0.8)
    return normalize_percentile(f["cellmask"]), f["cells"]


def test_bonte_recipe_overfits_a_synthetic_field_and_recovers_its_cells(cells_field):
    x, lab = cells_field
    torch.manual_seed(0)
    ds = I.instance_dataset([x], [lab], "bonte", crop_size=96, n_crops=1)
    alpha = initial_loss_ratio(ds.targets[0][0])
    m = I.bonte_model("resnet18", None, in_channels=1, encoder_depth=3, decoder_channels=(32, 16, 16))
    I.train_bonte(m, ds, steps=120, alpha=alpha, batch_size=2, lr=3e-3, progress=False)
    maps = I.predict_maps(m, x)
    best, _ = I.choose_parameter([maps], [lab], "bonte", [0.5, 1.0, 2.0], iou=0.5)
    pred = I.bonte_instances(maps, best, min_size=8)
    assert matching(lab, pred).at(0.5)["f1"] >= 0.8


def test_fpn2ws_recipe_overfits_a_synthetic_field_and_recovers_its_cells(cells_field):
    x, lab = cells_field
    torch.manual_seed(0)
    ds = I.instance_dataset([x], [lab], "fpn2ws", crop_size=96, n_crops=1)
    m = I.fpn2ws_model("resnet18", None, in_channels=1, pyramid_channels=64, segmentation_channels=32)
    I.train_fpn2ws(m, ds, steps=100, batch_size=2, lr=3e-3, progress=False)
    maps = I.predict_maps(m, x)
    pairs = [(t, f) for t in (0.4, 0.5, 0.6) for f in (0.05, 0.1, 0.2)]
    best, _ = I.choose_parameter([maps], [lab], "fpn2ws", pairs, iou=0.5, min_size=8)
    pred = I.to_instances(maps, "fpn2ws", best, min_size=8)
    assert matching(lab, pred).at(0.5)["f1"] >= 0.8


# -------------------------------------------------------------------------------- figures
def test_learning_curve_plot_draws_reference_lines_and_image_grid_shows_rgb_overlays():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from islteach import viz

    records = [{"init": "ISL", "n": 1, "seed": 0, "mAP": 0.02}, {"init": "ISL", "n": 4, "seed": 0, "mAP": 0.05}]
    ax = transfer.plot_learning_curve(records, metric="mAP", ylim=None, references={"zero-shot": 0.1})
    fig = ax.figure
    assert [line.get_label() for line in ax.get_lines() if line.get_linestyle() == "--"] == ["zero-shot"]
    assert ax.get_ylim()[1] < 1.0  # scaled to the data
    plt.close(fig)
    rgb = viz.outline_overlay(np.zeros((8, 8)), np.eye(8, dtype=np.int32))
    fig = viz.image_grid({"gray": np.zeros((8, 8)), "overlay": rgb}, ncols=2)
    assert fig.axes[1].get_images()[0].get_array().shape == (8, 8, 3)
    plt.close(fig)
    with pytest.raises(ValueError, match="RGB"):
        viz.image_grid({"bad": np.zeros((8, 8, 2))})


def test_median_diameter_is_the_equivalent_diameter_of_the_median_object():
    yy, xx = np.mgrid[:200, :200]
    lab = np.zeros((200, 200), np.int32)
    for k, (cy, cx, r) in enumerate([(40, 40, 10), (40, 120, 15), (140, 80, 20)], start=1):
        lab[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = k
    areas = np.bincount(lab.ravel())[1:]
    expected = float(np.sqrt(4 * np.median(areas) / np.pi))
    assert I.median_diameter(lab) == pytest.approx(expected)
    assert I.median_diameter(lab) == pytest.approx(30.0, abs=0.5)  # the middle disc, radius 15
    # a list pools the objects of all images; ids need not be consecutive
    other = np.where(lab == 3, 7, 0).astype(np.int32)
    pooled = np.r_[areas, areas[2]]  # four objects: the median averages the middle two diameters
    assert I.median_diameter([lab, other]) == pytest.approx(float(np.median(np.sqrt(4 * pooled / np.pi))))
    assert np.isnan(I.median_diameter(np.zeros((8, 8), np.int32)))


def test_median_diameter_rejects_float_labels_naming_the_image():
    with pytest.raises(ValueError, match=r"labels\[1\]"):
        I.median_diameter([np.zeros((4, 4), np.int32), np.zeros((4, 4), float)])


_SHARED = Path(os.environ.get("ISLTEACH_DATA_DIR", "/work/shared/data"))


@pytest.mark.skipif(not (_SHARED / "bbbc039" / "MANIFEST.tsv").is_file(),
                    reason=f"real data not found at {_SHARED} (set ISLTEACH_DATA_DIR to the data cache)")
def test_median_diameter_of_bbbc039_nuclei_on_real_masks(monkeypatch):
    """On real masks (BBBC039's first training images) the nuclei are about 28 px across."""
    from islteach import data

    monkeypatch.setenv("ISLTEACH_DATA_DIR", str(_SHARED))
    _, y = data.load_bbbc039("train")
    d = I.median_diameter(list(y[:10]))
    assert 20.0 < d < 40.0
