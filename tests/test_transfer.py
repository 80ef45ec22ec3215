"""Specifications of islteach.transfer (chapters 3 and 4: learning curves and transfer learning)."""
import json

import numpy as np
import pytest
import torch

from islteach import transfer as tl
from islteach.losses import SoftJaccardLoss, soft_jaccard_loss


class CountingFake:
    """A fake training run: a deterministic IoU per point, counting the calls; optionally crashes."""

    def __init__(self, crash_on_call=None):
        self.calls = []
        self.crash_on_call = crash_on_call

    def __call__(self, init, n, seed):
        self.calls.append((init, n, seed))
        if self.crash_on_call is not None and len(self.calls) == self.crash_on_call:
            raise RuntimeError("simulated Colab disconnect")
        return {"iou": 0.5 + 0.3 * (init == "isl") / n + 0.01 * seed, "note": f"{init}-{n}"}


GRID = dict(inits=["random", "isl"], n_values=[1, 10, 50], seeds=[0, 1], progress=False)


def test_learning_curve_returns_one_tidy_record_per_point_small_n_first():
    fake = CountingFake()
    rec = tl.learning_curve(fake, **GRID)
    assert len(rec) == 12 == len(fake.calls)
    assert [(r["init"], r["n"], r["seed"]) for r in rec[:4]] == [
        ("random", 1, 0), ("isl", 1, 0), ("random", 1, 1), ("isl", 1, 1)]
    assert {"init", "n", "seed", "iou", "train_time_s", "cached", "note"} <= set(rec[0])
    assert rec[1]["iou"] == pytest.approx(0.8)


def test_learning_curve_rerun_skips_every_point_already_in_the_cache(tmp_path):
    first = tl.learning_curve(CountingFake(), cache_dir=tmp_path, **GRID)
    again = CountingFake()
    second = tl.learning_curve(again, cache_dir=tmp_path, **GRID)
    assert again.calls == []
    assert all(r["cached"] for r in second) and not any(r["cached"] for r in first)
    assert [r["iou"] for r in second] == [r["iou"] for r in first]
    assert [r["train_time_s"] for r in second] == [r["train_time_s"] for r in first]


def test_a_crash_mid_curve_loses_only_the_point_being_computed(tmp_path):
    crashing = CountingFake(crash_on_call=5)
    with pytest.raises(RuntimeError, match="disconnect"):
        tl.learning_curve(crashing, cache_dir=tmp_path, **GRID)
    assert len(list(tmp_path.glob("*.json"))) == 4  # the 4 points finished before the crash
    resumed = CountingFake()
    rec = tl.learning_curve(resumed, cache_dir=tmp_path, **GRID)
    assert resumed.calls[0] == crashing.calls[-1]  # the crashed point is the first one redone
    assert len(resumed.calls) == 12 - 4
    assert [r["cached"] for r in rec] == [True] * 4 + [False] * 8
    assert not list(tmp_path.glob("*.tmp*"))


def test_growing_the_grid_reuses_the_points_already_done(tmp_path):
    tl.learning_curve(CountingFake(), cache_dir=tmp_path, inits=["random"], n_values=[1], seeds=[0],
                      progress=False)
    fake = CountingFake()
    tl.learning_curve(fake, cache_dir=tmp_path, **GRID)
    assert ("random", 1, 0) not in fake.calls and len(fake.calls) == 11


def test_a_cached_point_made_with_another_config_is_recomputed_not_reused(tmp_path, capsys):
    tl.learning_curve(CountingFake(), cache_dir=tmp_path, config={"steps": 100}, **GRID)
    fake = CountingFake()
    tl.learning_curve(fake, cache_dir=tmp_path, config={"steps": 200}, **GRID)
    assert len(fake.calls) == 12
    assert "another configuration" in capsys.readouterr().out
    payload = json.loads(tl.point_path(tmp_path, "isl", 1, 0).read_text())
    assert json.loads(payload["config"]) == {"steps": 200}


def test_a_corrupt_cache_file_is_recomputed(tmp_path):
    tl.learning_curve(CountingFake(), cache_dir=tmp_path, **GRID)
    tl.point_path(tmp_path, "random", 10, 1).write_text("{not json")
    fake = CountingFake()
    tl.learning_curve(fake, cache_dir=tmp_path, **GRID)
    assert fake.calls == [("random", 10, 1)]


def test_arrays_in_a_result_are_cached_next_to_the_record_and_read_back(tmp_path):
    def run(init, n, seed):
        return {"iou": 0.5, "prediction": np.full((4, 5), n, np.float16)}

    tl.learning_curve(run, cache_dir=tmp_path, inits=["isl"], n_values=[1, 3], seeds=[0], progress=False)
    rec = tl.learning_curve(run, cache_dir=tmp_path, inits=["isl"], n_values=[1, 3], seeds=[0], progress=False)
    assert all(r["cached"] for r in rec)
    np.testing.assert_array_equal(rec[1]["prediction"], np.full((4, 5), 3, np.float16))
    assert "prediction" not in tl.records_to_json(rec)[0]


@pytest.mark.parametrize("bad", [{"loss": 1.0}, {"iou": float("nan")}, {"iou": "0.5"}, [0.5]])
def test_learning_curve_rejects_a_result_without_a_finite_metric(bad):
    with pytest.raises((ValueError, TypeError), match="run_point"):
        tl.learning_curve(lambda i, n, s: bad, inits=["a"], n_values=[1], seeds=[0], progress=False)


@pytest.mark.parametrize("kwargs", [dict(n_values=[0]), dict(n_values=[1, 1]), dict(seeds=[-1]),
                                    dict(inits="random"), dict(inits=[]), dict(n_values=[1.5])])
def test_learning_curve_validates_its_grid(kwargs):
    args = dict(inits=["a"], n_values=[1], seeds=[0], progress=False)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError)):
        tl.learning_curve(CountingFake(), **args)


def test_summary_and_relative_gain_follow_the_paper_definition():
    rec = tl.learning_curve(CountingFake(), **GRID)
    rows = {(r["init"], r["n"]): r for r in tl.summarize(rec)}
    assert rows[("isl", 1)]["mean"] == pytest.approx(0.805)
    assert rows[("isl", 1)]["std"] == pytest.approx(np.std([0.8, 0.81], ddof=1))
    gain = tl.relative_gain(rec, init="isl", baseline="random")
    assert gain[1] == pytest.approx((0.805 - 0.505) / 0.505)
    assert gain[50] == pytest.approx((0.006) / 0.505)
    assert "isl" in tl.format_table(rec).splitlines()[0]


def test_shifted_sigmoid_is_one_half_at_its_shift():
    f = tl.ShiftedSigmoid(tl.ISL_SHIFT)
    assert float(f(torch.tensor(0.5))) == pytest.approx(0.5)
    assert float(f(torch.tensor(1.5))) == pytest.approx(1 / (1 + np.exp(-1.0)))
    with pytest.raises(ValueError):
        tl.ShiftedSigmoid(float("nan"))


def test_isl_init_copies_the_pretext_weights_and_never_modifies_them():
    pretext = torch.nn.Conv2d(2, 1, 3, padding=1)
    before = pretext.weight.detach().clone()
    seg = tl.segmentation_model("isl", pretext_model=pretext)
    assert seg.activation.shift == 0.5 and seg.islteach_init == "isl"
    torch.testing.assert_close(seg.body.weight, before)
    with torch.no_grad():
        seg.body.weight.add_(1.0)
    torch.testing.assert_close(pretext.weight, before)
    with pytest.raises(ValueError, match="pretext_model"):
        tl.segmentation_model("isl")


def test_soft_jaccard_loss_is_zero_when_perfect_and_one_when_disjoint():
    t = torch.zeros(2, 1, 8, 8)
    t[:, :, :4] = 1
    assert float(soft_jaccard_loss(t, t)) == pytest.approx(0.0)
    assert float(soft_jaccard_loss(1 - t, t, eps=0.0)) == pytest.approx(1.0)
    assert float(SoftJaccardLoss()(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))) == 0.0
    with pytest.raises(ValueError, match="shape"):
        soft_jaccard_loss(t, t[:1])


def test_calibrated_threshold_separates_a_shifted_score_map():
    rng = np.random.default_rng(0)
    mask = rng.random((64, 64)) > 0.7
    score = 0.2 + 0.5 * mask + 0.05 * rng.standard_normal(mask.shape)
    t, v = tl.calibrate_threshold([score], [mask])
    assert 0.3 < t < 0.6 and v > 0.99
    out = tl.zero_shot_point([score], [mask], [score[::-1]], [mask[::-1]])
    assert out["iou"] > 0.99 and out["threshold"] == t
    with pytest.raises(ValueError, match="shape"):
        tl.calibrate_threshold([score], [mask[:10]])


def test_choose_is_nested_within_a_seed_and_differs_between_seeds():
    one, ten = tl.choose(500, 1, 0), tl.choose(500, 10, 0)
    assert one[0] == ten[0] and len(set(ten)) == 10
    assert not np.array_equal(tl.choose(500, 10, 1), ten)
    with pytest.raises(ValueError):
        tl.choose(5, 6, 0)


def test_isl_training_tiles_never_touch_the_held_out_quadrant():
    from islteach.data import ISL_TEST_REGION, isl_tile_grid

    for tile in (128, 256):
        grid = isl_tile_grid(tile)
        assert len(grid) == 3 * (512 // tile) ** 2
        ys, xs = ISL_TEST_REGION
        for y, x in grid:
            assert y + tile <= ys.start or x + tile <= xs.start


def test_finetune_and_evaluate_learns_a_segmentation_and_averages_the_last_checkpoints():
    rng = np.random.default_rng(1)
    masks = [rng.random((32, 32)) > 0.6 for _ in range(3)]
    images = [(m + 0.1 * rng.standard_normal(m.shape)).astype(np.float32)[None] for m in masks]
    torch.manual_seed(0)
    net = tl.SegmentationNet(torch.nn.Conv2d(1, 1, 1), shift=0.0, init="random")
    out = tl.finetune_and_evaluate(net, images[:2], masks[:2], images[2:], masks[2:], steps=60, batch_size=4,
                                   lr=0.1, crop_size=16, n_crops=4, seed=0, eval_every=10, n_last=3, tile=32,
                                   keep_prediction=True)
    assert sorted(out["iou_checkpoints"], key=int) == ["40", "50", "60"]
    assert out["iou"] == pytest.approx(np.mean(list(out["iou_checkpoints"].values())))
    assert out["iou"] > 0.9
    assert out["prediction"].shape == (32, 32) and out["prediction"].dtype == np.float16


def test_point_runner_draws_nested_images_and_gives_zero_shot_without_training():
    rng = np.random.default_rng(2)
    masks = [rng.random((32, 32)) > 0.6 for _ in range(5)]
    images = [(m + 0.1 * rng.standard_normal(m.shape)).astype(np.float32)[None] for m in masks]
    pretext = torch.nn.Conv2d(1, 1, 1)
    with torch.no_grad():
        pretext.weight.fill_(1.0)
        pretext.bias.zero_()
    run = tl.make_point_runner(images[:4], masks[:4], images[4], masks[4], pretext_models={"isl": pretext},
                               finetune=dict(steps=4, batch_size=2, lr=1e-2, crop_size=16, n_crops=2, eval_every=2,
                                             n_last=2, tile=32), encoder_name="resnet18")
    zs1, zs3 = run("zero-shot", 1, 0), run("zero-shot", 3, 0)
    assert zs1["images"][0] == zs3["images"][0] and len(zs3["images"]) == 3
    assert zs1["iou"] > 0.9 and "fit_seconds" not in zs1 and zs1["prediction"].shape == (32, 32)
    fine = run("isl", 3, 0)
    assert fine["init"] == "isl" and fine["steps"] == 4 and "prediction" not in fine
    torch.testing.assert_close(pretext.weight, torch.ones_like(pretext.weight))  # pretext untouched


# ------------------------------------------------------------------ executors (picklable points)
def fake_point(init, n, seed):
    """A module-level (hence picklable) fake point with an array, as a worker would return it."""
    return {"iou": 0.5 + 0.3 * (init == "isl") / n + 0.01 * seed, "note": f"{init}-{n}",
            "prediction": np.full((2, 3), n + seed, np.float16)}


class FailAt:
    """A picklable fake that fails at one given point (a lost worker), wherever it runs."""

    def __init__(self, point):
        self.point = tuple(point)

    def __call__(self, init, n, seed):
        if (init, n, seed) == self.point:
            raise RuntimeError("simulated lost worker")
        return fake_point(init, n, seed)


def _same_records(a, b):
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert set(ra) == set(rb)
        for k in ra:
            if k == "train_time_s":
                continue
            if isinstance(ra[k], np.ndarray):
                np.testing.assert_array_equal(ra[k], rb[k])
                assert ra[k].dtype == rb[k].dtype
            else:
                assert ra[k] == rb[k], k


def test_learning_curve_on_a_process_pool_gives_the_in_process_records_and_caches_every_point(tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    here = tl.learning_curve(fake_point, cache_dir=tmp_path / "here", **GRID)
    with ProcessPoolExecutor(max_workers=2) as pool:
        there = tl.learning_curve(fake_point, cache_dir=tmp_path / "pool", executor=pool, **GRID)
    _same_records(here, there)
    assert not any(r["cached"] for r in there)
    assert len(list((tmp_path / "pool").glob("*.json"))) == 12 == len(list((tmp_path / "pool").glob("*.npz")))
    again = tl.learning_curve(CountingFake(), cache_dir=tmp_path / "pool", **GRID)  # nothing left to run
    assert all(r["cached"] for r in again)
    _same_records([dict(r, cached=False) for r in again], here)


def test_an_interrupted_run_keeps_the_first_points_and_a_rerun_computes_only_the_rest(tmp_path):
    crashing = CountingFake(crash_on_call=3)
    with pytest.raises(RuntimeError, match="disconnect"):
        tl.learning_curve(crashing, cache_dir=tmp_path, **GRID)
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == ["isl_n1_s0", "random_n1_s0"]
    rerun = CountingFake()
    rec = tl.learning_curve(rerun, cache_dir=tmp_path, **GRID)
    assert len(rerun.calls) == 10 and rerun.calls[0] == crashing.calls[-1]
    assert [r["cached"] for r in rec] == [True] * 2 + [False] * 10


def test_a_lost_point_on_an_executor_loses_only_that_point(tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    third = ("random", 1, 1)  # the 3rd point in run order
    with ProcessPoolExecutor(max_workers=2) as pool:
        with pytest.raises(RuntimeError, match="lost worker"):
            tl.learning_curve(FailAt(third), cache_dir=tmp_path, executor=pool, **GRID)
    assert len(list(tmp_path.glob("*.json"))) == 11
    rerun = CountingFake()
    rec = tl.learning_curve(rerun, cache_dir=tmp_path, **GRID)
    assert rerun.calls == [third]
    assert [r["cached"] for r in rec] == [True, True, False] + [True] * 9


def test_learning_curve_rejects_an_executor_without_submit():
    with pytest.raises(ValueError, match="executor"):
        tl.learning_curve(fake_point, executor=object(), **GRID)


@pytest.mark.slow
def test_learning_curve_on_a_dask_cluster_gives_the_in_process_records(tmp_path):
    distributed = pytest.importorskip("distributed")
    import sys

    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this file
    here = tl.learning_curve(fake_point, cache_dir=tmp_path / "here", **GRID)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        there = tl.learning_curve(fake_point, cache_dir=tmp_path / "dask", executor=client, **GRID)
    _same_records(here, there)
    assert len(list((tmp_path / "dask").glob("*.json"))) == 12


# ------------------------------------------------------------------ the point runners
def _tiny_segmentation_data(n=5, size=32):
    rng = np.random.default_rng(2)
    masks = [rng.random((size, size)) > 0.6 for _ in range(n)]
    images = [(m + 0.1 * rng.standard_normal(m.shape)).astype(np.float32)[None] for m in masks]
    return images, masks


def test_point_runner_is_picklable_and_gives_the_same_point_after_a_round_trip():
    import pickle

    images, masks = _tiny_segmentation_data()
    pretext = torch.nn.Conv2d(1, 1, 1)
    run = tl.make_point_runner(images[:4], masks[:4], images[4], masks[4], pretext_models={"isl": pretext},
                               finetune=dict(steps=2, batch_size=2, lr=1e-2, crop_size=16, n_crops=2, tile=32),
                               encoder_name="resnet18")
    first = run("zero-shot", 2, 0)
    copy = pickle.loads(pickle.dumps(run))
    assert copy._scores is None  # the zero-shot scores are not shipped
    again = copy("zero-shot", 2, 0)
    assert again["iou"] == first["iou"] and again["images"] == first["images"]


def test_point_runner_baselines_take_the_pretext_models_architecture(monkeypatch):
    from islteach.models import unet

    images, masks = _tiny_segmentation_data()
    pretext = unet("resnet34", encoder_weights=None, in_channels=1, classes=1, verbose=False)
    built = {}

    def fake_finetune(model, *args, **kwargs):
        built["model"] = model
        return {"iou": 0.5}

    monkeypatch.setattr(tl, "finetune_and_evaluate", fake_finetune)
    run = tl.make_point_runner(images[:4], masks[:4], images[4], masks[4], pretext_models={"isl": pretext},
                               finetune={})
    assert run.encoder_name == "resnet34"
    run("random", 1, 0)
    assert built["model"].body.islteach_config["encoder_name"] == "resnet34"
    with pytest.raises(ValueError, match="encoder_name"):
        tl.make_point_runner(images[:4], masks[:4], images[4], masks[4], pretext_models={"isl": pretext},
                             finetune={}, encoder_name="resnet18")
    bare = tl.make_point_runner(images[:4], masks[:4], images[4], masks[4],
                                pretext_models={"isl": torch.nn.Conv2d(1, 1, 1)}, finetune={})
    with pytest.raises(ValueError, match="encoder_name"):
        bare("random", 1, 0)


def test_synthetic_fields_serve_both_chapters():
    from islteach.data import normalize_percentile
    from islteach.synth import make_field

    ch3 = tl.synthetic_fields([3, 4], size=64)
    assert ch3["x"][0].shape == (3, 64, 64) and ch3["mask"][0].dtype == bool and ch3["seeds"] == [3, 4]
    ch4 = tl.synthetic_fields(range(7, 9), size=64, bf_planes=None, phase=False, target="cellmask")
    f = make_field(64, seed=8)
    np.testing.assert_array_equal(ch4["x"][1], np.stack([normalize_percentile(p) for p in f["brightfield"]]))
    np.testing.assert_array_equal(ch4["y"][1], normalize_percentile(f["cellmask"])[None])
    np.testing.assert_array_equal(ch4["cells"][1], f["cells"].astype(np.int32))
    with pytest.raises(ValueError, match="target"):
        tl.synthetic_fields([0], size=64, target="map2")
    with pytest.raises(ValueError, match="channel"):
        tl.synthetic_fields([0], size=64, bf_planes=[], phase=False)


@pytest.mark.slow
def test_instance_point_runner_gives_records_in_the_shared_format_and_reproduces_a_point():
    cells = tl.synthetic_fields(range(100, 103), size=64, bf_planes=None, phase=False, target="cellmask")
    kw = dict(encoder_name="resnet18", in_channels=5, steps=1, alpha=1.0, crop_size=64, crops_total=4,
              batch_size=2, h_values=[1.0, 2.0], min_size=4, keep_prediction_for=(2,))
    isl_body = __import__("islteach.models", fromlist=["unet"]).unet("resnet18", encoder_weights=None,
                                                                     in_channels=5, classes=1, verbose=False)
    run = tl.InstancePointRunner(cells["x"][:2], cells["cells"][:2], cells["x"][2:], cells["cells"][2:],
                                 isl_state=isl_body.state_dict(), **kw)
    rec = tl.learning_curve(run, inits=["isl", "random"], n_values=[1, 2], seeds=[0], metric="mAP",
                            progress=False)
    assert [(r["init"], r["n"]) for r in rec] == [("isl", 1), ("random", 1), ("isl", 2), ("random", 2)]
    assert {"mAP", "f1_05", "parameter", "model_init"} <= set(rec[0]) and rec[0]["parameter"] in (1.0, 2.0)
    assert "prediction" not in rec[0] and rec[3]["prediction"].shape == (64, 64)
    again = run("random", 2, 0)
    assert again["mAP"] == rec[3]["mAP"] and again["parameter"] == rec[3]["parameter"]
    assert tl.summarize(rec, "mAP")[0]["init"] == "isl" and "random" in tl.format_table(rec, metric="mAP")
    with pytest.raises(ValueError, match="init"):
        run("imagenet-typo", 1, 0)
    with pytest.raises(ValueError, match="n must"):
        run("random", 3, 0)


# --------------------------------------------------------------------------- fine-tuning that keeps the pretext
class _EncoderDecoder(torch.nn.Module):
    """A U-Net stand-in with an ``encoder`` attribute; records the encoder weight at every forward pass."""

    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Conv2d(1, 2, 1)
        self.head = torch.nn.Conv2d(2, 1, 1)
        self.seen = []

    def forward(self, x):
        self.seen.append(self.encoder.weight.detach().clone())
        return self.head(torch.tanh(self.encoder(x)))


def _finetune(model, **kw):
    images, masks = _tiny_segmentation_data()
    args = dict(steps=4, batch_size=2, lr=0.05, crop_size=16, n_crops=2, seed=0, eval_every=1, n_last=1, tile=32)
    return tl.finetune_and_evaluate(model, images[:2], masks[:2], images[4], masks[4], **{**args, **kw})


def test_a_frozen_encoder_stays_unchanged_for_its_steps_then_trains():
    torch.manual_seed(0)
    body = _EncoderDecoder()
    w0 = body.encoder.weight.detach().clone()
    _finetune(tl.SegmentationNet(body, init="isl"), freeze_encoder_steps=3, eval_every=10, n_last=1)
    train_passes = body.seen[:4]  # steps 1-4 (the evaluation at the last step comes after them)
    assert all(torch.equal(w, w0) for w in train_passes[:3])  # the weights the first 3 steps and step 4 start from
    assert not torch.equal(body.encoder.weight.detach(), w0)  # step 4 trained it
    assert all(p.requires_grad for p in body.parameters())


def test_a_lower_encoder_rate_moves_the_encoder_less_than_the_head():
    def moved(scale):
        torch.manual_seed(0)
        body = _EncoderDecoder()
        e0, h0 = body.encoder.weight.detach().clone(), body.head.weight.detach().clone()
        _finetune(tl.SegmentationNet(body, init="isl"), encoder_lr_scale=scale)
        return (float((body.encoder.weight.detach() - e0).abs().max()), float((body.head.weight.detach() - h0).abs().max()))

    full, low = moved(1.0), moved(1e-3)
    assert low[0] < 0.01 * full[0] and low[1] > 0.1 * full[1]
    with pytest.raises(ValueError, match="encoder"):
        _finetune(tl.SegmentationNet(torch.nn.Conv2d(1, 1, 1)), encoder_lr_scale=0.1)
    with pytest.raises(ValueError, match="freeze_encoder_steps"):
        _finetune(tl.SegmentationNet(_EncoderDecoder()), freeze_encoder_steps=4)


def test_point_runner_gives_the_pretext_only_settings_to_pretext_inits():
    images, masks = _tiny_segmentation_data()
    run = tl.make_point_runner(images[:4], masks[:4], images[4], masks[4], pretext_models={"isl": torch.nn.Conv2d(1, 1, 1)},
                               finetune=dict(steps=2, lr=1e-3, pretext_encoder_lr_scale=0.1,
                                             pretext_freeze_encoder_steps=1), encoder_name="resnet18")
    assert run.finetune_kwargs("random") == {"steps": 2, "lr": 1e-3}
    assert run.finetune_kwargs("isl") == {"steps": 2, "lr": 1e-3, "encoder_lr_scale": 0.1, "freeze_encoder_steps": 1}
    run = tl.make_point_runner(images[:4], masks[:4], images[4], masks[4], pretext_models={"isl": torch.nn.Conv2d(1, 1, 1)},
                               finetune=dict(steps=2, lr=1e-3, pretext_lr=1e-4, pretext_freeze_norm=True,
                                             pretext_head_slope=20), encoder_name="resnet18")
    assert run.finetune_kwargs("random") == {"steps": 2, "lr": 1e-3}
    assert run.finetune_kwargs("isl") == {"steps": 2, "lr": 1e-4, "freeze_norm": True}
    with pytest.raises(ValueError, match="pretext_head_slope"):
        tl.make_point_runner(images[:4], masks[:4], images[4], masks[4], pretext_models={}, finetune={
            "pretext_head_slope": -1}, encoder_name="resnet18")


def test_shifted_sigmoid_slope_and_its_checks():
    f = tl.ShiftedSigmoid(0.2, slope=20)
    assert float(f(torch.tensor(0.2))) == pytest.approx(0.5)
    assert float(f(torch.tensor(0.3))) == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert "slope=20" in repr(f) and "slope" not in repr(tl.ShiftedSigmoid(0.5))
    for bad in (0, -1.0, float("inf"), True):
        with pytest.raises(ValueError, match="slope"):
            tl.ShiftedSigmoid(0.0, slope=bad)


def test_calibrated_head_starts_the_pretext_init_as_its_zero_shot_segmenter():
    """With ``pretext_head_slope`` the pretext init's head is centred at the zero-shot threshold of
    the annotated images: before any step, thresholding its probability at 0.5 is the zero-shot
    segmentation (exactly, on a pretext whose output is its input)."""
    images, masks = _tiny_segmentation_data()
    pretext = torch.nn.Conv2d(1, 1, 1)
    with torch.no_grad():
        pretext.weight.fill_(1.0)
        pretext.bias.zero_()
    fixed = tl.make_point_runner(images[:4], masks[:4], images[4], masks[4], pretext_models={"isl": pretext},
                                 finetune=dict(tile=32), encoder_name="resnet18")
    assert fixed.head("isl", [0]) == {"shift": tl.ISL_SHIFT, "slope": 1.0}
    run = tl.make_point_runner(images[:4], masks[:4], images[4], masks[4], pretext_models={"isl": pretext},
                               finetune=dict(tile=32, pretext_head_slope=20.0), encoder_name="resnet18")
    for idx in ([0], [1, 2]):
        head = run.head("isl", idx)
        t, _ = tl.calibrate_threshold([images[i][0] for i in idx], [masks[i] for i in idx])
        assert head == {"shift": pytest.approx(t), "slope": 20.0}
        model = tl.segmentation_model("isl", pretext_model=pretext, **head).eval()
        with torch.no_grad():
            prob = model(torch.from_numpy(images[4][None]))[0, 0].numpy()
        np.testing.assert_array_equal(prob > 0.5, images[4][0] > t)
        zs = tl.zero_shot_point([images[i][0] for i in idx], [masks[i] for i in idx], [images[4][0]], [masks[4]])
        assert zs["threshold"] == pytest.approx(t)


def test_freeze_norm_keeps_the_pretext_batchnorm_statistics():
    class WithNorm(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
            self.head = torch.nn.Conv2d(2, 1, 1)

        def forward(self, x):
            return self.head(torch.tanh(self.encoder(x)))

    def body():
        torch.manual_seed(0)
        return WithNorm()

    frozen, free = body(), body()
    stats0 = frozen.encoder[1].running_mean.clone()
    model = tl.SegmentationNet(frozen, init="isl")
    _finetune(model, freeze_norm=True)
    torch.testing.assert_close(frozen.encoder[1].running_mean, stats0)  # never updated
    model.train()
    assert model.training and model.body.head.training and not frozen.encoder[1].training  # BatchNorm stays in eval
    assert not torch.equal(frozen.encoder[1].weight.detach(), torch.ones(2))  # its affine part still learns
    _finetune(tl.SegmentationNet(free, init="isl"))
    assert not torch.equal(free.encoder[1].running_mean, stats0)  # without it, the statistics drift
    with pytest.raises(ValueError, match="freeze_norm"):
        _finetune(tl.SegmentationNet(body()), freeze_norm=1)
    with pytest.raises(ValueError, match="SegmentationNet"):
        _finetune(body(), freeze_norm=True)


# --------------------------------------------------------------------------- the difficulty sweep
@pytest.mark.slow
def test_difficulty_sweep_images_the_same_specimens_and_reuses_the_easiest_tracks_points(tmp_path, monkeypatch):
    monkeypatch.setenv("ISLTEACH_RESULTS_DIR", str(tmp_path / "results"))
    kw = dict(pretext={"n_fields": 2, "encoder_name": "resnet18", "encoder_weights": None, "steps": 2,
                       "batch_size": 2, "lr": 1e-3, "crop_size": 32, "n_crops": 2},
              finetune={"steps": 2, "batch_size": 2, "lr": 1e-3, "crop_size": 32, "n_crops": 2, "eval_every": 1,
                        "n_last": 1, "tile": 32},
              size=32, bf_planes=[0, 4], phase=True, pool_fields=3, test_fields=1, eval_fields=1, seed=0,
              cache_dir=tmp_path / "cache", profile="quick", progress=False)
    track = tl.synthetic_track(0.0, n_values=[1], seeds=[0, 1], **kw)
    assert track["inits"] == ["random", "isl", "zero-shot"] and len(track["records"]) == 6
    sweep = tl.difficulty_sweep([0.0, 1.0], seeds=[0, 1], **kw)
    easy = [r for r in sweep["records"] if r["difficulty"] == 0.0]
    assert all(r["cached"] for r in easy) and not any(r["cached"] for r in sweep["records"] if r["difficulty"] == 1.0)
    assert sweep["difficulties"] == [0.0, 1.0] and len(sweep["gain"]) == 2 and len(sweep["pretext_pcc"]) == 2
    assert [len(v) for v in sweep["iou"]["isl"]] == [2, 2] and [len(g) for g in sweep["gain_per_seed"]] == [2, 2]
    k = 1
    isl, rnd = np.mean(sweep["iou"]["isl"][k]), np.mean(sweep["iou"]["random"][k])
    assert sweep["gain"][k] == pytest.approx(isl / rnd - 1)
    # the same annotated field for both inits of a seed, and other fields for other seeds
    n1 = [r for r in sweep["records"] if r["difficulty"] == 1.0]
    assert {tuple(r["images"]) for r in n1 if r["seed"] == 0} == {tuple(tl.choose(3, 1, 0))}
    assert sorted(p.name for p in (tmp_path / "results").rglob("synth_dapi_d*.pt")) == [
        "synth_dapi_d0.00.pt", "synth_dapi_d1.00.pt"]
    with pytest.raises(ValueError, match="increasing"):
        tl.difficulty_sweep([1.0, 0.5], seeds=[0], **kw)


def test_synthetic_cells_transfer_runs_the_whole_protocol_and_an_empty_n_is_refused():
    from islteach.profiles import get_profile

    section = {**get_profile("quick").ch4.as_dict(), "transfer_n": [1, 2], "transfer_size": 64, "transfer_test": 1,
               "transfer_pretext_steps": 2, "transfer_steps": 2, "transfer_batch": 2, "transfer_seeds": [0],
               "transfer_crops_total": 4, "cells_val_fields": 1, "cells_pretext_n_crops": 4, "crop_size": 64,
               "h_values": [1.0, 2.0]}
    out = tl.synthetic_cells_transfer(section, seed=0)
    assert out["inits"] == ["isl", "random"]
    assert [(r["init"], r["n"], r["seed"]) for r in out["records"]] == [
        ("isl", 1, 0), ("random", 1, 0), ("isl", 2, 0), ("random", 2, 0)]
    assert all(0.0 <= r["mAP"] <= 1.0 and r["parameter"] in (1.0, 2.0) for r in out["records"])
    assert -1.0 <= out["pretext_pcc"] <= 1.0 and out["seconds"] > 0
    with pytest.raises(ValueError, match="transfer_n"):
        tl.synthetic_cells_transfer({**section, "transfer_n": []})


def test_crop_passes_counts_looks_per_fixed_crop():
    ft = {"steps": 60, "batch_size": 4, "n_crops": 40}
    assert tl.crop_passes(ft, 1) == pytest.approx(6.0)
    assert tl.crop_passes(ft, 12) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        tl.crop_passes(ft, 0)
    with pytest.raises(KeyError, match="n_crops"):
        tl.crop_passes({"steps": 60, "batch_size": 4}, 1)
