"""Specifications of islteach.groundtruth: Cellpose (offline behaviour, training from scratch),
the classical pipeline, correction tools, error objects, conversions and saved labels."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from islteach import groundtruth as gt
from islteach.metrics import matching

from fixtures import disc

SHARED = Path(os.environ.get("ISLTEACH_DATA_DIR", "/work/shared/data"))
needs_data = pytest.mark.skipif(
    not (SHARED / "stardist-sample" / "MANIFEST.tsv").is_file(),
    reason=f"real data not found at {SHARED} (set ISLTEACH_DATA_DIR to the data cache)",
)


def two_touching_discs():
    """Two discs of radius 8 whose centres are 14 px apart, as separate labels 1 and 2."""
    lab = np.zeros((32, 48), np.int32)
    lab[disc(lab.shape, (16, 16), 8)] = 1
    lab[disc(lab.shape, (16, 30), 8) & (lab == 0)] = 2
    return lab


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("ISLTEACH_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("ISLTEACH_PROFILE", "quick")
    return tmp_path / "results" / "quick"


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """An empty Cellpose model folder and a download address that cannot resolve."""
    from cellpose import models as cp_models

    monkeypatch.setenv("CELLPOSE_LOCAL_MODELS_PATH", str(tmp_path / "cp_models"))
    monkeypatch.setattr(cp_models, "_MODEL_URL", "https://cellpose-weights.invalid/models")
    return tmp_path / "cp_models"


# ----------------------------------------------------------------------------- pretrained weights
def test_missing_pretrained_weights_fail_fast_and_say_how_to_go_on_offline(no_weights):
    t0 = time.perf_counter()
    with pytest.raises(gt.CellposeWeightsUnavailable) as err:
        gt.cellpose_labels(np.zeros((32, 32), np.float32), model="nuclei", timeout=3)
    assert time.perf_counter() - t0 < 10
    msg = str(err.value)
    assert "train_cellpose" in msg and "classical_labels" in msg and str(no_weights) in msg


def test_pretrained_weights_already_in_the_cache_are_used_without_network(no_weights):
    no_weights.mkdir(parents=True)
    (no_weights / "nucleitorch_0").write_bytes(b"weights")
    assert gt.pretrained_available("nuclei")
    assert gt.ensure_pretrained("nuclei") == no_weights / "nucleitorch_0"
    assert not gt.pretrained_available("cyto3")


def test_unknown_model_name_and_bad_settings_are_refused():
    with pytest.raises(FileNotFoundError, match="nuclei"):
        gt.cellpose_labels(np.zeros((16, 16)), model="nucleus")
    with pytest.raises(ValueError, match="percentile"):
        gt.cellpose_labels(np.zeros((16, 16)), model="nuclei", percentile=(99, 1))
    with pytest.raises(ValueError, match="diameter"):
        gt.cellpose_labels(np.zeros((16, 16)), model="nuclei", diameter=-3)
    with pytest.raises(ValueError, match="2-D or 3-D"):
        gt.cellpose_labels(np.zeros(16), model="nuclei")


# ----------------------------------------------------------------------------- training from scratch
def test_train_cellpose_from_scratch_returns_a_model_cellpose_labels_accepts(tmp_path):
    from islteach.synth import make_fields

    fields = make_fields(3, size=96, seed=1, cell_radius=10.0)
    images = [f["dapi"] for f in fields]
    labels = [f["nuclei"] for f in fields]
    path = gt.train_cellpose(images, labels, n_epochs=2, nimg_per_epoch=2, batch_size=2, crop_size=64,
                             diam_mean=12.0, save_dir=tmp_path, model_name="tiny", device="cpu")
    assert path == tmp_path / "models" / "tiny" and path.is_file()
    info = gt.cellpose_model_info(path)
    assert info["n_epochs"] == 2 and info["n_images"] == 3 and "scratch" in info["init"]
    assert len(info["train_losses"]) == 2 and np.all(np.isfinite(info["train_losses"]))
    assert "from scratch" in gt.describe_model(path)
    out = gt.cellpose_labels(np.stack(images[:2]), model=path, device="cpu")
    assert out.shape == (2, 96, 96) and out.dtype == np.int32 and out.min() >= 0


def test_train_cellpose_checks_its_inputs(tmp_path):
    img = np.zeros((64, 64), np.float32)
    lab = np.zeros((64, 64), np.int32)
    with pytest.raises(ValueError, match="same length"):
        gt.train_cellpose([img, img], [lab], save_dir=tmp_path)
    with pytest.raises(ValueError, match="same shape"):
        gt.train_cellpose([img], [lab[:32]], save_dir=tmp_path)
    with pytest.raises(ValueError, match="labels"):  # one label checker, one exception type (issue 14)
        gt.train_cellpose([img], [lab.astype(float)], save_dir=tmp_path)
    with pytest.raises(ValueError, match="multiple of 16"):
        gt.train_cellpose([img], [lab], crop_size=100, save_dir=tmp_path)


# ----------------------------------------------------------------------------- classical pipeline
def test_classical_labels_finds_synthetic_nuclei():
    from islteach.synth import make_field

    f = make_field(192, seed=2)
    lab = gt.classical_labels(f["dapi"])
    assert lab.dtype == np.int32
    assert matching(f["nuclei"], lab, thresholds=[0.5]).f1[0] > 0.8


def test_classical_labels_cuts_two_touching_nuclei_at_their_neck():
    truth = two_touching_discs()
    image = (truth > 0).astype(np.float32) * 100 + 10
    lab = gt.classical_labels(image, sigma=0, min_size=10)
    m = matching(truth, lab, thresholds=[0.7])
    assert (m.tp[0], m.fp[0], m.fn[0]) == (2, 0, 0)


def test_classical_labels_of_a_blank_image_are_empty():
    assert gt.classical_labels(np.full((32, 32), 5.0)).max() == 0


@needs_data
def test_classical_labels_on_the_stardist_sample_match_the_experts(monkeypatch):
    monkeypatch.setenv("ISLTEACH_DATA_DIR", str(SHARED))
    from islteach.data import load_stardist_sample

    image, truth = load_stardist_sample()
    lab = gt.classical_labels(image)  # a DSB image with dim nuclei: the classical pipeline misses some
    assert matching(truth, lab, thresholds=[0.5]).f1[0] > 0.6


# ----------------------------------------------------------------------------- correction tools
def test_delete_labels_removes_only_the_given_objects():
    lab = np.array([[1, 1, 0, 2, 3, 3]])
    assert gt.delete_labels(lab, [1, 3]).tolist() == [[0, 0, 0, 2, 0, 0]]
    assert lab.tolist() == [[1, 1, 0, 2, 3, 3]]  # input untouched
    with pytest.raises(ValueError, match=r"\[7\]"):
        gt.delete_labels(lab, 7)


def test_merge_labels_gives_the_pair_one_label_and_can_close_a_gap():
    lab = np.zeros((9, 13), np.int32)
    lab[2:7, 1:6] = 4
    lab[2:7, 7:12] = 9  # one background column between them
    merged = gt.merge_labels(lab, [9, 4])
    assert set(np.unique(merged)) == {0, 4}
    assert (merged[2:7, 6] == 0).all()
    closed = gt.merge_labels(lab, [4, 9], fill_gap=2)
    assert (closed[3:6, 6] == 4).all() and closed[0].max() == 0 and closed[:, 0].max() == 0
    with pytest.raises(ValueError, match="two different"):
        gt.merge_labels(lab, [4, 4])


def test_split_by_seeds_recovers_two_touching_nuclei():
    truth = two_touching_discs()
    merged = (truth > 0).astype(np.int32) * 5
    fixed = gt.split_label_by_seeds(merged, 5, [(16, 16), (16, 30)])
    assert fixed[16, 16] == 5 and fixed[16, 30] == 6
    m = matching(truth, fixed, thresholds=[0.9])
    assert m.tp[0] == 2 and m.fp[0] == 0
    with pytest.raises(ValueError, match="not inside"):
        gt.split_label_by_seeds(merged, 5, [(16, 16), (0, 0)])


def test_split_by_line_cuts_one_object_in_two_without_losing_pixels():
    lab = np.zeros((10, 20), np.int32)
    lab[2:8, 2:18] = 3
    lab[0, 0] = 1
    out = gt.split_label_by_line(lab, 3, (0, 7), (9, 7))
    assert (out > 0).sum() == (lab > 0).sum()
    assert out[0, 0] == 1
    assert set(np.unique(out[2:8, 2:7])) == {4} or set(np.unique(out[2:8, 2:7])) == {3}
    assert len(set(np.unique(out[2:8, 2:18]))) == 2
    # the largest piece keeps the label
    assert np.count_nonzero(out == 3) > np.count_nonzero(out == 4)


def test_split_by_a_line_that_does_not_cross_the_object_is_refused():
    lab = np.zeros((10, 20), np.int32)
    lab[2:8, 2:18] = 1
    with pytest.raises(ValueError, match="does not cut"):
        gt.split_label_by_line(lab, 1, (0, 7), (4, 7))


def test_relabel_numbers_objects_consecutively_and_can_drop_and_separate():
    lab = np.array([[0, 7, 7, 0, 3, 0, 3]])
    assert gt.relabel(lab).tolist() == [[0, 2, 2, 0, 1, 0, 1]]
    assert gt.relabel(lab, min_size=3).tolist() == [[0, 0, 0, 0, 0, 0, 0]]
    assert gt.relabel(lab, split_disconnected=True).tolist() == [[0, 3, 3, 0, 1, 0, 2]]


def test_correction_tools_refuse_non_label_input():
    with pytest.raises(ValueError, match="labels must be a non-negative integer"):
        gt.delete_labels(np.ones((4, 4)), 1)
    with pytest.raises(ValueError, match="2-D"):
        gt.relabel(np.ones((2, 4, 4), int))
    with pytest.raises(ValueError, match="minimum"):
        gt.relabel(-np.ones((4, 4), int))


# ----------------------------------------------------------------------------- conversions
def test_labels_to_mask_and_separating_touching_objects():
    lab = two_touching_discs()
    assert gt.labels_to_mask(lab).sum() == (lab > 0).sum()
    sep = gt.labels_to_mask(lab, separate=True)
    assert sep.sum() < (lab > 0).sum()
    from scipy import ndimage as ndi

    assert ndi.label(sep)[1] == 2 and ndi.label(lab > 0)[1] == 1


def test_labels_to_distance_is_zero_outside_and_highest_inside():
    pytest.importorskip("islteach.postprocess")
    lab = two_touching_discs()
    for mode in ("bonte", "normalized"):
        d = gt.labels_to_distance(lab, mode=mode)
        assert d.shape == lab.shape
        assert np.all(d[lab == 0] == 0) and d[16, 16] > d[16, 9]


# ----------------------------------------------------------------------------- saved labels
def test_saved_labels_come_back_with_their_method(results):
    lab = two_touching_discs()
    path = gt.save_labels("demo", lab, "classical (test)", indices=np.array([3]), note="x")
    assert path == results / "labels" / "demo.npz"
    back = gt.load_saved_labels("demo")
    assert np.array_equal(back["labels"], lab) and back["method"] == "classical (test)"
    assert back["indices"].tolist() == [3] and back["meta"] == {"note": "x"}
    with pytest.raises(FileNotFoundError, match="chapter 2"):
        gt.load_saved_labels("nothing")


def test_isl_nuclei_labels_returns_what_chapter_2_saved(results):
    lab = np.zeros((1024, 1024), np.int32)
    lab[10:20, 10:20] = 1
    gt.save_labels(gt.ISL_LABELS, lab, "Cellpose from scratch (test)")
    labels, method = gt.isl_nuclei_labels()
    assert np.array_equal(labels, lab) and method == "Cellpose from scratch (test)"


def test_default_model_offline_is_chapter_2s_from_scratch_model_when_it_exists(results, no_weights, capsys):
    model_file = results / "models" / gt.SCRATCH_MODEL
    model_file.parent.mkdir(parents=True)
    model_file.write_bytes(b"weights")
    model, method = gt.default_cellpose_model(train_if_missing=False)
    assert model == model_file and "nuclei" not in method
    assert "unavailable" in capsys.readouterr().out
    model_file.unlink()
    with pytest.raises(FileNotFoundError, match="chapter 2"):
        gt.default_cellpose_model(train_if_missing=False)


def test_label_sharing_takes_a_profile_name_and_explicit_sizes(results, no_weights):
    from islteach.profiles import get_profile

    with pytest.raises(ValueError, match="profile"):
        gt.load_saved_labels("demo", get_profile("quick"))  # a Profile object, not a name
    with pytest.raises(ValueError, match="profile"):
        gt.save_labels("demo", np.zeros((4, 4), np.int32), "x", "nonsense")
    # nothing saved: making the labels needs chapter 2's sizes, named in the error
    with pytest.raises(ValueError, match="diameter"):
        gt.isl_nuclei_labels(profile="quick")
    # no pretrained weights and no saved model: training needs train_kwargs
    with pytest.raises(ValueError, match="train_kwargs"):
        gt.default_cellpose_model(profile="quick")
    with pytest.raises(ValueError, match="train_images"):
        gt.train_scratch_bbbc039(train_images=0, n_epochs=1, nimg_per_epoch=1, batch_size=1,
                                 crop_size=64, diam_mean=12.0, lr=0.005)
    assert set(gt.SCRATCH_TRAIN_KEYS) <= set(get_profile("quick").ch2.as_dict()) | {"seed"}
