"""Specifications for islteach.virtual_staining: the ISL recipe, its split, baseline and model cache."""
import os
from pathlib import Path

import numpy as np
import pytest

from islteach import virtual_staining
from islteach.models import save_model, unet
from islteach.profiles import CH1, PROFILE_NAMES

RECIPE = CH1["quick"]

DATA = Path(os.environ.get("ISLTEACH_DATA_DIR", "/work/shared/data"))
needs_isl = pytest.mark.skipif(not (DATA / "isl-finkbeiner-b").is_dir(),
                               reason="ISL Finkbeiner data not found in $ISLTEACH_DATA_DIR")


def test_pixel_linear_baseline_recovers_the_weights_of_a_linear_target():
    x = np.random.default_rng(0).random((3, 32, 32))
    y = 2 * x[0] - 0.5 * x[2] + 0.1
    mask = np.zeros((32, 32), bool)
    mask[:16] = True
    pred, coef = virtual_staining.pixel_linear_baseline(x, y, mask)
    np.testing.assert_allclose(coef, [2.0, 0.0, -0.5, 0.1], atol=1e-9)
    np.testing.assert_allclose(pred, y, atol=1e-5)


def test_pixel_linear_baseline_rejects_a_mask_of_the_wrong_shape():
    with pytest.raises(ValueError, match="train_mask"):
        virtual_staining.pixel_linear_baseline(np.zeros((2, 8, 8)), np.zeros((8, 8)), np.ones((4, 4), bool))


def test_tile_pccs_scores_each_tile_on_its_own():
    rng = np.random.default_rng(1)
    t = rng.random((64, 64))
    p = t.copy()
    p[:32, 32:] = rng.random((32, 32))  # one tile is noise
    grid = virtual_staining.tile_pccs(p, t, tile=32)
    assert grid.shape == (2, 2)
    np.testing.assert_allclose(grid[[0, 1, 1], [0, 0, 1]], 1.0)
    assert abs(grid[0, 1]) < 0.2


def test_normalisation_stats_ignore_pixels_outside_the_mask():
    x = np.zeros((1, 10, 10), np.float32)
    x[0, :5] = np.arange(50).reshape(5, 10)
    x[0, 5:] = 1e6  # e.g. the held-out region
    mask = np.zeros((10, 10), bool)
    mask[:5] = True
    st = virtual_staining.normalisation_stats(x, mask, pmin=0, pmax=100)
    assert st["lo"] == [0.0] and st["hi"] == [49.0]
    y = virtual_staining.apply_normalisation(x, st)
    assert y[0, 4, 9] == pytest.approx(1.0)


@needs_isl
def test_isl_split_keeps_the_test_quadrant_and_validation_block_out_of_training():
    from islteach.data import ISL_TEST_REGION, PairDataset

    a = virtual_staining.isl_arrays([0, 6, 12], "dapi")
    assert a["x"].shape == (3, 1024, 1024) and a["y"].shape == (1, 1024, 1024)
    assert not (a["train"] & a["test"]).any() and not (a["train"] & a["val"]).any()
    assert a["test"][ISL_TEST_REGION].all() and a["test"].sum() == 512 * 512
    ds = PairDataset(a["x"], a["y"], crop_size=128, n_crops=300, seed=0, allowed=a["train"])
    for _, y0, x0 in ds.index:
        assert a["train"][y0:y0 + 128, x0:x0 + 128].all()
    with pytest.raises(ValueError, match="planes"):
        virtual_staining.isl_arrays([0, 13], "dapi")


def test_train_virtual_staining_records_validation_pcc_on_a_synthetic_pair():
    rng = np.random.default_rng(0)
    x = rng.random((2, 48, 48)).astype(np.float32)
    y = x[:1] * 0.5
    mask = np.ones((48, 48), bool)
    model, h = virtual_staining.train_virtual_staining(
        x, y, mask, encoder_name="resnet18", encoder_weights=None, steps=2, crop_size=32, batch_size=2,
        lr=1e-3, n_crops=4, val=(x[:, :32, :32], y[:, :32, :32]), val_every=1, progress=False)
    assert h.val_step == [1, 2] and all(-1 <= v <= 1 for v in h.val)
    assert model.islteach_init == "random"


@pytest.fixture
def results_tmp(monkeypatch, tmp_path):
    monkeypatch.setenv("ISLTEACH_RESULTS_DIR", str(tmp_path))
    return tmp_path


def test_get_isl_model_loads_the_saved_chapter_1_model_without_retraining(results_tmp, monkeypatch):
    m = unet("resnet18", encoder_weights=None, in_channels=3)
    path = virtual_staining.isl_model_path("dapi", "quick")
    assert path.parent == results_tmp / "quick" / "models"
    save_model(m, path, steps=240, planes=[0, 6, 12], pcc_test_region=0.7)

    def no_training(*a, **k):  # pragma: no cover - must not run
        raise AssertionError("retrained although a model was saved")

    monkeypatch.setattr(virtual_staining, "train_isl_model", no_training)
    model, meta = virtual_staining.get_isl_model("dapi", profile="quick")
    assert meta["planes"] == [0, 6, 12] and not model.training


def test_get_isl_model_retrains_when_missing_or_trained_for_fewer_steps(results_tmp, monkeypatch, capsys):
    calls = []

    def fake_train(target, profile=None, steps=None, device=None, **k):
        calls.append((target, steps))
        return unet("resnet18", encoder_weights=None), {"steps": steps}, None

    monkeypatch.setattr(virtual_staining, "train_isl_model", fake_train)
    recipe = {**{k: RECIPE[k] for k in virtual_staining.ISL_RECIPE_KEYS}, "seed": 0}
    virtual_staining.get_isl_model("map2", profile="quick", steps=100, **recipe)
    assert "training it now" in capsys.readouterr().out
    save_model(unet("resnet18", encoder_weights=None), virtual_staining.isl_model_path("map2", "quick"), steps=10)
    virtual_staining.get_isl_model("map2", profile="quick", min_steps=500, steps=100, **recipe)
    assert calls[0][0] == "map2" and calls[1] == ("map2", 500)
    with pytest.raises(ValueError, match="target"):
        virtual_staining.get_isl_model("cellmask", profile="quick")


def test_the_recipe_keys_are_in_every_profile_chapter_1_table():
    for name in PROFILE_NAMES:
        assert set(virtual_staining.ISL_RECIPE_KEYS) <= set(CH1[name]), name
        assert "crop" not in CH1[name]


def test_get_isl_model_asks_for_the_recipe_when_it_must_retrain(results_tmp):
    with pytest.raises(ValueError, match="recipe"):
        virtual_staining.get_isl_model("dapi", profile="quick")


def test_profile_arguments_are_profile_names():
    from islteach.profiles import get_profile

    with pytest.raises(ValueError, match="profile"):
        virtual_staining.isl_model_path("dapi", get_profile("quick"))


def test_train_virtual_staining_is_the_shared_image_to_image_recipe_with_seeded_weights():
    import torch

    from islteach.train import train_image_to_image

    rng = np.random.default_rng(0)
    x = rng.random((2, 40, 40)).astype(np.float32)
    y = x[:1] * 0.5
    mask = np.ones((40, 40), bool)
    kw = dict(encoder_name="resnet18", encoder_weights=None, steps=2, crop_size=32, batch_size=2, lr=1e-3,
              n_crops=3, seed=4, progress=False)
    torch.manual_seed(1)  # the global RNG state before the call must not matter
    a, ha = virtual_staining.train_virtual_staining(x, y, mask, **kw)
    torch.manual_seed(2)
    b, hb = train_image_to_image([x], [y], allowed=mask, **kw)
    assert ha.loss == hb.loss
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


def test_bin_image_averages_each_block_and_drops_the_ragged_edge():
    img = np.arange(30, dtype=np.float32).reshape(5, 6)
    out = virtual_staining.bin_image(img, 2)
    assert out.shape == (2, 3) and out.dtype == np.float32
    # block (0, 0) holds 0, 1, 6, 7; row 4 (the fifth) fills no block and is dropped
    np.testing.assert_allclose(out, [[3.5, 5.5, 7.5], [15.5, 17.5, 19.5]])
    stack = np.stack([img, 2 * img])  # (C, H, W): each channel binned on its own
    np.testing.assert_allclose(virtual_staining.bin_image(stack, 2)[1], 2 * out)
    assert virtual_staining.bin_image(np.uint8([[1, 2], [3, 4]]), 2).tolist() == [[2.5]]
    mask = np.ones((4, 4), bool)
    mask[3, 3] = False
    assert virtual_staining.bin_image(mask, 2).tolist() == [[True, True], [True, False]]
    assert virtual_staining.bin_image(img, 1) is img
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="factor must be an int"):
            virtual_staining.bin_image(img, bad)
    with pytest.raises(ValueError, match="both sides >= factor"):
        virtual_staining.bin_image(img, 6)


@pytest.mark.skipif(not (DATA / "sephace").is_dir(), reason="SEPhACE data not found in $ISLTEACH_DATA_DIR")
def test_sephace_arrays_bin_the_fields_and_their_validation_block():
    full = virtual_staining.sephace_arrays([0, 2, 5])
    half = virtual_staining.sephace_arrays([0, 2, 5], binning=2)
    assert full["x_train"].shape == (3, 1024, 1344) and full["binning"] == 1
    assert half["x_train"].shape == half["x_test"].shape == (3, 512, 672) and half["binning"] == 2
    assert half["y_train"].shape == (1, 512, 672) and half["train"].shape == (512, 672)
    assert not (half["train"] & half["val"]).any() and half["val"].sum() == full["val"].sum() // 4
    vy, vx = half["val_region"]
    assert half["val"][vy, vx].all() and (vy.start, vx.start) == (384, 544)
    # binning comes before normalisation: a binned pixel is the mean of its block's raw values, rescaled
    from islteach import data
    raw = data.load_sephace(2)["dapi"][:2, :2].mean()
    n = half["normalisation"]["field2"]["target"]
    expected = (raw - n["lo"][0]) / (n["hi"][0] - n["lo"][0])
    assert abs(float(half["y_test"][0, 0, 0]) - expected) < 1e-5
    with pytest.raises(ValueError, match="binning must be an int"):
        virtual_staining.sephace_arrays([0, 2, 5], binning=0)
