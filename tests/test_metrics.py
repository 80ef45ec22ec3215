"""Specifications of islteach.metrics: the papers' metrics, and agreement with Cellpose."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from islteach import metrics
from islteach.metrics import (
    THRESHOLDS,
    iou,
    iou_thresholds,
    match_pairs,
    matching,
    matching_dataset,
    mean_ap,
    pcc,
    score_record,
)

from fixtures import disc, perturb_labels


def bbbc039_labels(n: int, split: str = "test") -> list[np.ndarray]:
    """The first n ground-truth label images of a BBBC039 split (public islteach.data API only)."""
    data = pytest.importorskip("islteach.data")
    import imageio.v3 as iio

    out = []
    for name in data.bbbc039_names(split)[:n]:
        try:
            path = data.fetch_file(f"bbbc039/masks/{name}.png")
        except Exception as err:  # offline without the data folder
            pytest.skip(f"BBBC039 masks not available ({type(err).__name__}: {err}); set ISLTEACH_DATA_DIR")
        m = iio.imread(path)
        out.append(data.labels_from_color_mask(m[..., 0] if m.ndim == 3 else m))
    return out


@pytest.fixture(scope="module")
def bbbc():
    return bbbc039_labels(6)


# ------------------------------------------------------------------------------ the papers' examples
def test_split_nucleus_counts_one_tp_and_one_fp_at_iou_05():
    gt = disc((40, 40), (20, 20), 10).astype(np.int32)
    pred = gt.copy()
    pred[:, 24:] *= 2  # the nucleus cut in two: about 70 % and 30 % of it
    m = matching(gt, pred, thresholds=[0.5])
    assert (m.tp[0], m.fp[0], m.fn[0]) == (1, 1, 0)
    assert m.splits == 1 and m.merges == 0
    assert m.ap[0] == pytest.approx(1 / 2)  # TP / (TP + FP + FN)
    assert m.f1[0] == pytest.approx(2 / 3)  # 2TP / (2TP + FP + FN)
    assert m.precision[0] == pytest.approx(1 / 2) and m.recall[0] == 1.0


def test_two_merged_nuclei_count_one_tp_one_fn_and_one_merge():
    a, b = disc((40, 60), (20, 18), 10), disc((40, 60), (20, 40), 8)
    gt = (a * 1 + b * 2).astype(np.int32)
    pred = (a | b).astype(np.int32)  # one predicted object covering both
    m = matching(gt, pred, thresholds=[0.5])
    assert (m.tp[0], m.fp[0], m.fn[0]) == (1, 0, 1)
    assert m.merges == 1 and m.splits == 0


def test_one_pixel_border_error_costs_small_nuclei_much_more_iou_zaki_example():
    # Zaki et al.: a 1-pixel border error gives IoU 0.967 for radius 60 and 0.563 for radius 4
    assert ((60 - 1) / 60) ** 2 == pytest.approx(0.967, abs=5e-4)
    assert ((4 - 1) / 4) ** 2 == pytest.approx(0.563, abs=5e-4)
    # on the pixel grid: one pixel eroded from a digital disc
    big = iou(disc((130, 130), (65, 65), 60), disc((130, 130), (65, 65), 59))
    small = iou(disc((13, 13), (6, 6), 4), disc((13, 13), (6, 6), 3))
    assert big == pytest.approx(0.967, abs=0.005)
    assert small < 0.6
    # so at IoU 0.6 the same mistake is a hit for the big nucleus and a miss for the small one
    for r, expected_tp in ((60, 1), (4, 0)):
        gt = disc((130, 130), (65, 65), r).astype(np.int32)
        pred = disc((130, 130), (65, 65), r - 1).astype(np.int32)
        assert matching(gt, pred, thresholds=[0.6]).tp[0] == expected_tp


def test_mean_ap_is_the_mean_of_tp_over_tp_fp_fn_at_050_to_095(bbbc):
    gt = bbbc[0]
    pred = perturb_labels(gt, seed=3)
    m = matching(gt, pred)
    expected = np.mean([tp / (tp + fp + fn) for tp, fp, fn in zip(m.tp, m.fp, m.fn)])
    assert m.mean_ap == pytest.approx(expected)
    assert mean_ap(gt, pred) == pytest.approx(expected)
    assert mean_ap(gt, gt) == 1.0


# ------------------------------------------------------------------------------ conventions
def test_thresholds_are_exact_decimals_and_the_arange_pitfall_changes_counts():
    assert THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    assert iou_thresholds(0.1, 1.0, 0.1) == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    arange = np.arange(0.5, 1, 0.05)
    assert arange[2] == 0.6000000000000001  # not 0.6
    # a prediction covering 3 of the 5 pixels of a nucleus: IoU is exactly 3/5
    gt = np.array([[1, 1, 1, 1, 1]])
    pred = np.array([[2, 2, 2, 0, 0]])
    assert matching(gt, pred, thresholds=[0.6]).tp[0] == 1  # IoU >= t: a match
    with pytest.warns(UserWarning, match="not an exact decimal"):
        assert matching(gt, pred, thresholds=arange).tp[2] == 0  # silently lost otherwise


def test_arange_thresholds_change_counts_on_real_bbbc039_pairs(bbbc):
    # np.arange(0.5, 1, 0.05) is off from 0.6 upwards (0.6000000000000001, 0.6500000000000001,
    # 0.7000000000000002, ...); IoUs of exactly 3/5, 7/10, 3/4, 4/5, ... are common on real
    # nuclei, so counts change (the benchmark prints how many over all 200 images)
    arange = np.arange(0.5, 1, 0.05)
    lost = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, gt in enumerate(bbbc):
            pred = perturb_labels(gt, seed=i)
            lost += int((matching(gt, pred, THRESHOLDS).tp - matching(gt, pred, arange).tp).sum())
    assert lost > 0


def test_iou_threshold_one_needs_pixel_perfect_objects():
    gt = np.zeros((20, 20), np.int32)
    gt[2:8, 2:8] = 1
    gt[10:18, 10:18] = 2
    pred = gt.copy()
    pred[10, 10] = 0  # one pixel missing on object 2
    m = matching(gt, pred, thresholds=iou_thresholds(0.1, 1.0, 0.1))
    assert m.tp.tolist() == [2] * 9 + [1]
    assert m.mean("f1") == pytest.approx((9 * 1.0 + 0.5) / 10)  # Costa et al.'s mean F1


def test_below_05_an_object_can_have_several_candidates_and_the_matching_maximises_pairs():
    # gt A overlaps preds X and Y, gt B overlaps only X: greedy "best IoU first" gives A-X
    # and leaves B alone; the maximum matching A-Y, B-X has two pairs (as Cellpose's LSA).
    gt = np.zeros((1, 20), np.int32)
    pred = np.zeros((1, 20), np.int32)
    gt[0, 0:10] = 1  # A
    gt[0, 10:14] = 2  # B
    pred[0, 3:14] = 1  # X: IoU with A 7/14 = 0.5, with B 4/11 = 0.36
    pred[0, 0:3] = 2  # Y: IoU with A 3/10 = 0.3
    m = matching(gt, pred, thresholds=[0.3, 0.5])
    assert m.tp.tolist() == [2, 1]
    t, p, v = match_pairs(gt, pred, 0.3)
    assert t.tolist() == [1, 2] and p.tolist() == [2, 1]
    assert v.tolist() == pytest.approx([0.3, 4 / 11])


def test_labels_need_not_be_consecutive_and_gaps_are_not_objects():
    gt = np.zeros((10, 10), np.int64)
    gt[1:4, 1:4] = 7
    gt[5:9, 5:9] = 1000
    m = matching(gt, gt, thresholds=[0.5])
    assert (m.n_true, m.n_pred, m.tp[0], m.fn[0]) == (2, 2, 2, 0)
    huge = gt * 2**40  # label values far beyond any dense overlap matrix
    assert matching(huge, gt, thresholds=[0.5]).tp[0] == 2
    top = gt.astype(np.uint64)
    top[gt == 1000] = 2**63 + 5  # beyond int64
    assert matching(top, gt, thresholds=[0.5]).tp[0] == 2


def test_cellpose_counts_label_gaps_as_missed_objects_we_count_labels_present():
    cp_metrics = pytest.importorskip("cellpose.metrics")
    gt = np.zeros((10, 10), np.int32)
    gt[1:4, 1:4] = 1
    gt[5:9, 5:9] = 3  # label 2 was deleted
    _, tp, _, fn = cp_metrics.average_precision(gt, gt, threshold=[0.5])
    assert (tp[0], fn[0]) == (2, 1)  # Cellpose: labels.max() = 3 objects, one "missed"
    m = matching(gt, gt, thresholds=[0.5])
    assert (m.tp[0], m.fn[0]) == (2, 0)


def test_label_dtypes_give_the_same_result(bbbc):
    gt = bbbc[1]
    pred = perturb_labels(gt, seed=1)
    ref = matching(gt, pred)
    for dt in (np.uint16, np.int64, np.uint32):
        m = matching(gt.astype(dt), pred.astype(dt))
        assert np.array_equal(m.tp, ref.tp) and m.merges == ref.merges and m.splits == ref.splits


def test_empty_images_conventions():
    empty = np.zeros((8, 8), np.int32)
    one = empty.copy()
    one[2:5, 2:5] = 1
    both = matching(empty, empty, thresholds=[0.5])
    assert (both.precision[0], both.recall[0], both.f1[0], both.ap[0]) == (1.0, 1.0, 1.0, 1.0)
    missed = matching(one, empty, thresholds=[0.5])
    assert (missed.tp[0], missed.fn[0], missed.f1[0], missed.ap[0]) == (0, 1, 0.0, 0.0)
    assert np.isnan(missed.mean_matched_iou[0])
    spurious = matching(empty, one, thresholds=[0.5])
    assert (spurious.fp[0], spurious.precision[0], spurious.recall[0]) == (1, 0.0, 0.0)


def test_mean_matched_iou_is_the_mean_iou_of_matched_pairs():
    gt = np.zeros((1, 20), np.int32)
    gt[0, 0:4] = 1
    gt[0, 10:20] = 2
    pred = gt.copy()
    pred[0, 0] = 0  # object 1: IoU 3/4; object 2: IoU 1
    m = matching(gt, pred, thresholds=[0.5, 0.8])
    assert m.mean_matched_iou.tolist() == pytest.approx([(0.75 + 1) / 2, 1.0])


# ------------------------------------------------------------------------------ Cellpose agreement
ODD_THRESHOLDS = (0.1, 0.25, 0.3, 0.34, 0.45, 0.5, 0.51, 0.6, 0.73, 0.9, 0.99, 1.0)


@pytest.mark.parametrize("kind", ["mixed", "erode", "dilate", "shift", "merge", "split", "drop"])
def test_agrees_with_cellpose_average_precision_on_bbbc039_at_every_threshold(bbbc, kind):
    cp_metrics = pytest.importorskip("cellpose.metrics")
    probs = None if kind == "mixed" else {"keep": 0.4, kind: 0.6}
    ths_sets = (list(THRESHOLDS), list(iou_thresholds(0.1, 1.0, 0.1)), list(ODD_THRESHOLDS))
    images = bbbc if kind == "mixed" else bbbc[:2]
    for i, gt in enumerate(images):
        pred = perturb_labels(gt, seed=100 + i, probs=probs, n_spurious=3)
        for ths in ths_sets:
            ap, tp, fp, fn = cp_metrics.average_precision(gt, pred, threshold=ths)
            m = matching(gt, pred, thresholds=ths)
            assert np.array_equal(m.tp, tp), (kind, i, ths)
            assert np.array_equal(m.fp, fp) and np.array_equal(m.fn, fn), (kind, i, ths)
            assert np.allclose(m.ap, ap, rtol=0, atol=1e-6), (kind, i, ths)


def test_dataset_sums_agree_with_cellpose_per_image_counts(bbbc):
    cp_metrics = pytest.importorskip("cellpose.metrics")
    preds = [perturb_labels(gt, seed=7 + i) for i, gt in enumerate(bbbc)]
    ap, tp, fp, fn = cp_metrics.average_precision(list(bbbc), preds, threshold=list(THRESHOLDS))
    d = matching_dataset(bbbc, preds)
    assert np.array_equal(d.summed.tp, tp.sum(0)) and np.array_equal(d.summed.fn, fn.sum(0))
    assert np.allclose(d.image_mean.ap, ap.mean(0), atol=1e-6)
    assert d.image_mean.mean_ap == pytest.approx(float(ap.mean()), abs=1e-6)


# ------------------------------------------------------------------------------ aggregation
def test_dataset_offers_summed_counts_and_per_image_means():
    gt = np.zeros((2, 10, 10), np.int32)
    gt[0, 1:4, 1:4] = 1
    gt[1, 1:4, 1:4] = 1
    gt[1, 6:9, 6:9] = 2
    gt[1, 6:9, 1:4] = 3
    pred = gt.copy()
    pred[1] = 0  # image 0 perfect (1 object), image 1 all missed (3 objects)
    d = matching_dataset(gt, pred, thresholds=[0.5])
    assert d.summed.tp[0] == 1 and d.summed.fn[0] == 3
    assert d.summed.f1[0] == pytest.approx(2 / 5)  # every object weighs the same
    assert d.image_mean.f1[0] == pytest.approx(0.5)  # every image weighs the same
    assert d.values("f1")[:, 0].tolist() == [1.0, 0.0]
    assert d.image_std("f1")[0] == pytest.approx(0.5)
    assert d.to_dict()["n_images"] == 2


def test_record_lookup_by_threshold_and_plain_export():
    gt = disc((30, 30), (15, 15), 8).astype(np.int32)
    m = matching(gt, gt)
    assert m.at(0.7)["f1"] == 1.0
    with pytest.raises(KeyError):
        m.at(0.72)
    d = m.to_dict()
    assert d["thresholds"] == list(THRESHOLDS) and d["tp"] == [1] * 10
    assert "0.95" in m.table()
    with pytest.raises(ValueError, match="THRESHOLDS"):
        _ = matching(gt, gt, thresholds=[0.5]).mean_ap


# ------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((4, 4), np.float32), "y_pred must be a non-negative integer label array, got dtype float32"),
        (np.zeros((4, 4), bool), "y_pred must be a non-negative integer label array, got dtype bool"),
        (-np.ones((4, 4), np.int32), "y_pred must be a non-negative integer label array, got a minimum of -1"),
    ],
)
def test_labels_are_validated_at_the_door_naming_the_argument(bad, message):
    gt = np.zeros((4, 4), np.int32)
    with pytest.raises(ValueError, match=message):
        matching(gt, bad)


def test_shapes_and_thresholds_are_validated():
    with pytest.raises(ValueError, match="same shape"):
        matching(np.zeros((4, 4), int), np.zeros((4, 5), int))
    for t in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"thresholds must lie in \(0, 1\]"):
            matching(np.zeros((4, 4), int), np.zeros((4, 4), int), thresholds=[t])
    with pytest.raises(ValueError, match="same number of images"):
        matching_dataset([np.zeros((4, 4), int)], [])


# ------------------------------------------------------------------------------ pixel metrics
def test_pcc_is_pearson_correlation_per_image():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 32))
    y = 0.5 * x + rng.normal(size=(32, 32))
    assert pcc(x, 3 * x + 2) == pytest.approx(1.0)
    assert pcc(x, -x) == pytest.approx(-1.0)
    assert pcc(x, y) == pytest.approx(np.corrcoef(x.ravel(), y.ravel())[0, 1])
    assert pcc(x, np.ones_like(x)) == 0.0  # undefined: a constant prediction scores 0, not NaN
    mask = np.zeros(x.shape, bool)
    mask[:16] = True
    assert pcc(x, y, mask=mask) == pytest.approx(np.corrcoef(x[:16].ravel(), y[:16].ravel())[0, 1])
    with pytest.raises(ValueError, match="same shape"):
        pcc(x, x[:-1])
    with pytest.raises(ValueError, match="x must not contain NaN"):
        pcc(np.where(x > 0, np.nan, x), y)


def test_iou_of_binary_masks_is_one_when_both_are_empty():
    a = np.zeros((4, 4), bool)
    b = a.copy()
    assert iou(a, b) == 1.0
    a[:2] = True
    b[1:3] = True
    assert iou(a, b) == pytest.approx(4 / 12)
    assert iou(a.astype(np.uint8), b.astype(np.float32)) == pytest.approx(4 / 12)
    with pytest.raises(ValueError, match="x must be a binary mask"):
        iou(np.array([[0, 1, 2]]), np.array([[0, 1, 1]]))


# ----------------------------------------------------------------------------- error objects
# (moved with the functions from tests/test_groundtruth.py)
def test_error_objects_name_the_merge_the_split_and_the_false_detection():
    truth = np.zeros((20, 40), np.int32)
    truth[2:8, 2:8] = 1
    truth[2:8, 8:14] = 2      # 1 and 2 will be merged
    truth[12:18, 2:14] = 3    # 3 will be split
    truth[12:18, 30:36] = 4   # 4 is found exactly
    pred = np.zeros_like(truth)
    pred[2:8, 2:14] = 10
    pred[12:18, 2:8] = 11
    pred[12:18, 8:14] = 12
    pred[12:18, 30:36] = 13
    pred[2:5, 30:33] = 14     # a false detection
    e = metrics.error_objects(truth, pred, threshold=0.7)
    assert e["matches"] == [(4, 13, 1.0)]
    assert e["merges"] == {10: [1, 2]} and e["splits"] == {3: [11, 12]}
    assert e["false_positives"] == [10, 11, 12, 14] and e["false_negatives"] == [1, 2, 3]
    # correcting the merge and the false detection makes the metrics better
    before = matching(truth, pred, thresholds=[0.7])
    from islteach import groundtruth as gt

    fixed = gt.split_label_by_seeds(pred, 10, [(5, 4), (5, 11)])
    fixed = gt.delete_labels(fixed, 14)
    after = matching(truth, fixed, thresholds=[0.7])
    assert after.tp[0] == before.tp[0] + 2 and after.fp[0] == before.fp[0] - 2
    assert after.f1[0] > before.f1[0]


def test_best_iou_per_object_shows_small_nuclei_lose_more_iou_for_a_one_pixel_error():
    lab = np.zeros((60, 120), np.int32)
    lab[disc(lab.shape, (30, 20), 4)] = 1
    lab[disc(lab.shape, (30, 80), 20)] = 2
    shrunk = np.zeros_like(lab)
    shrunk[disc(lab.shape, (30, 20), 3)] = 1
    shrunk[disc(lab.shape, (30, 80), 19)] = 2
    o = metrics.best_iou_per_object(lab, shrunk)
    assert o["ids"].tolist() == [1, 2] and o["area"][0] < o["area"][1]
    assert o["best_iou"][0] < 0.7 < 0.85 < o["best_iou"][1] < 1


def two_touching_discs():
    """Two discs of radius 8 whose centres are 14 px apart, as separate labels 1 and 2."""
    lab = np.zeros((32, 48), np.int32)
    lab[disc(lab.shape, (16, 16), 8)] = 1
    lab[disc(lab.shape, (16, 30), 8) & (lab == 0)] = 2
    return lab


# ----------------------------------------------------------------------------- score record
def test_score_record_holds_the_results_file_fields():
    # was test_score_summary_holds_the_results_file_fields (groundtruth.score_summary)
    truth = two_touching_discs()
    s = score_record(truth, truth)
    assert {"f1", "ap", "mAP", "thresholds", "errors", "pq", "mean_matched_iou"} == set(s)
    assert s["f1"]["0.9"] == 1.0 and s["errors"]["n_true"] == 2 and s["mAP"] == 1.0


def _check_record_against_matching_dataset(ys_true, ys_pred, thresholds=THRESHOLDS, error_iou=0.7):
    r = score_record(ys_true, ys_pred, thresholds, error_iou=error_iou)
    if isinstance(ys_true, np.ndarray) and ys_true.ndim == 2:  # one image
        ys_true, ys_pred = [ys_true], [ys_pred]
    d = matching_dataset(ys_true, ys_pred, thresholds)
    e = matching_dataset(ys_true, ys_pred, [error_iou]).summed
    assert r["thresholds"] == [float(t) for t in thresholds]
    assert list(r["f1"]) == [f"{t:g}" for t in thresholds] == list(r["ap"])
    # bit-identical, not approximately equal
    assert list(r["f1"].values()) == [float(v) for v in d.summed.f1]
    assert list(r["ap"].values()) == [float(v) for v in d.image_mean.ap]
    assert r["mAP"] == matching_dataset(ys_true, ys_pred, THRESHOLDS).image_mean.mean_ap
    m5 = matching_dataset(ys_true, ys_pred, [0.5]).summed
    assert r["mean_matched_iou"] == float(m5.mean_matched_iou[0])
    assert r["pq"] == float(m5.pq[0])
    assert r["errors"] == {"iou": error_iou, "tp": int(e.tp[0]), "fp": int(e.fp[0]), "fn": int(e.fn[0]),
                           "merges": int(e.merges), "splits": int(e.splits), "n_true": int(e.n_true),
                           "n_pred": int(e.n_pred)}
    return r


def test_score_record_is_matching_dataset_on_bbbc039_crops(bbbc):
    preds = [perturb_labels(gt, seed=20 + i) for i, gt in enumerate(bbbc)]
    r = _check_record_against_matching_dataset(bbbc, preds)
    assert 0 < r["pq"] < r["f1"]["0.5"] <= 1 and r["errors"]["merges"] > 0
    _check_record_against_matching_dataset(bbbc, preds, iou_thresholds(0.1, 1.0, 0.1), error_iou=0.5)
    # one image: a bare array is a one-image list
    one = score_record(bbbc[0], preds[0])
    assert one == score_record([bbbc[0]], [preds[0]])


def test_score_record_on_the_stardist_sample():
    data = pytest.importorskip("islteach.data")
    try:
        _, gt = data.load_stardist_sample()
    except Exception as err:  # offline without the data folder
        pytest.skip(f"stardist sample not available ({type(err).__name__}: {err}); set ISLTEACH_DATA_DIR")
    gt = np.asarray(gt)
    r = _check_record_against_matching_dataset(gt, perturb_labels(gt, seed=4))
    assert r["errors"]["n_true"] == int(matching(gt, gt).n_true)


def test_panoptic_quality_by_hand():
    # truth: a 4x4 square (16 px) and a 2x2 square (4 px); prediction: the big square shifted
    # by one column (IoU 12/20 = 0.6) and a false detection; the small one is missed
    gt = np.zeros((8, 12), np.int32)
    gt[0:4, 0:4] = 1
    gt[6:8, 8:10] = 2
    pred = np.zeros_like(gt)
    pred[0:4, 1:5] = 1
    pred[6:8, 0:2] = 2
    m = matching(gt, pred, thresholds=[0.5, 0.7])
    # t = 0.5: TP 1 (IoU 0.6), FP 1, FN 1 -> PQ = 0.6 / (1 + 0.5 + 0.5) = 0.3
    assert m.pq[0] == pytest.approx(0.3)
    assert m.pq[1] == 0.0  # nothing matches at 0.7
    assert m.pq[0] == pytest.approx(m.mean_matched_iou[0] * m.f1[0])  # PQ = SQ x RQ
    assert score_record(gt, pred)["pq"] == pytest.approx(0.3)
    empty = np.zeros((4, 4), np.int32)
    assert matching(empty, empty, [0.5]).pq[0] == 1.0


def test_score_record_validates_its_arguments():
    gt = two_touching_discs()
    with pytest.raises(ValueError, match="ys_true"):
        score_record(np.zeros(5, int), [gt])
    with pytest.raises(ValueError, match="error_iou"):
        score_record(gt, gt, error_iou=0)
    with pytest.raises(ValueError, match="error_iou"):
        score_record(gt, gt, error_iou="0.7")
    with pytest.raises(ValueError, match="same number"):
        score_record([gt, gt], [gt])


def test_perturb_labels_makes_each_error_it_is_asked_for(bbbc):
    gt = bbbc[0]
    assert np.array_equal(perturb_labels(gt, seed=5), perturb_labels(gt, seed=5))
    dropped = perturb_labels(gt, seed=0, probs={"drop": 1.0}, n_spurious=2)
    assert int(dropped.max()) == 2
    merged = matching(gt, perturb_labels(gt, seed=0, probs={"merge": 1.0}, n_spurious=0), [0.5])
    split = matching(gt, perturb_labels(gt, seed=0, probs={"split": 1.0}, n_spurious=0), [0.5])
    assert merged.merges > 0 and merged.n_pred < merged.n_true
    assert split.splits > 0 and split.n_pred > split.n_true
    kept = perturb_labels(gt, seed=0, probs={"keep": 1.0}, n_spurious=0)
    assert matching(gt, kept, [1.0]).tp[0] == matching(gt, gt, [1.0]).tp[0]


def test_the_numpy_fallback_counts_the_same_overlaps_as_the_compiled_loop(bbbc, monkeypatch):
    # metrics counts overlaps with a numba loop when numba is there (Cellpose needs it), else numpy
    for i, gt in enumerate(bbbc[:3]):
        pred = perturb_labels(gt, seed=40 + i)
        fast = metrics._overlap_pairs(gt, pred)
        with monkeypatch.context() as m:
            m.setattr(metrics, "_JIT", False)
            slow = metrics._overlap_pairs(gt, pred)
            slow_match = matching(gt, pred)
        for a, b in zip(fast, slow):
            assert np.array_equal(a, b)
        assert np.array_equal(matching(gt, pred).tp, slow_match.tp)


@pytest.mark.parametrize("dtypes", [(np.int32, np.int32), (np.uint8, np.uint8), (np.uint16, np.int16),
                                    (np.int64, np.uint64), (np.int32, np.int64), (np.uint8, np.int32)])
@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (7, 9), (33, 65)])
def test_run_length_encoding_is_exact_for_every_dtype_and_odd_sizes(dtypes, shape):
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    a = np.repeat(rng.integers(0, 4, size=shape[0] * shape[1] // 3 + 1), 3)[: shape[0] * shape[1]]
    b = np.roll(a, 2) * (rng.random(a.size) < 0.9)
    a, b = a.astype(dtypes[0]), b.astype(dtypes[1])
    va, vb, lengths, (lo_a, hi_a, lo_b, hi_b) = metrics._runs(a, b)
    ra, rb, rl = metrics._runs_numpy(a, b)
    assert np.array_equal(va, ra) and np.array_equal(vb, rb) and np.array_equal(lengths, rl)
    assert (lo_a, hi_a, lo_b, hi_b) == (a.min(), a.max(), b.min(), b.max())
    assert lengths.sum() == a.size
