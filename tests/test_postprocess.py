"""Specifications of islteach.postprocess: the papers' targets and post-processing."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from islteach.metrics import matching, matching_dataset
from islteach.postprocess import (
    blurred_border,
    distance_map,
    hmax,
    hmax_watershed,
    merge_instances,
    relabel_sequential,
    remove_small_objects,
    seeded_watershed,
)

from fixtures import disc


def touching_discs():
    """Two discs of radius 15 whose centres are 26 pixels apart: one blob with a waist."""
    a, b = disc((40, 72), (20, 22), 15), disc((40, 72), (20, 48), 15)
    labels = np.where(a, 1, np.where(b, 2, 0)).astype(np.int32)
    return labels, a | b


@pytest.fixture(scope="module")
def bbbc_crops():
    """Three 256x256 crops of BBBC039 ground truth (public islteach.data API only)."""
    data = pytest.importorskip("islteach.data")
    import imageio.v3 as iio

    out = []
    for name in data.bbbc039_names("val")[:3]:
        try:
            path = data.fetch_file(f"bbbc039/masks/{name}.png")
        except Exception as err:
            pytest.skip(f"BBBC039 masks not available ({type(err).__name__}: {err}); set ISLTEACH_DATA_DIR")
        m = iio.imread(path)
        lab = data.labels_from_color_mask(m[..., 0] if m.ndim == 3 else m)
        out.append(relabel_sequential(lab[100:356, 200:456]))
    return out


# ------------------------------------------------------------------------------ h-maxima watershed
def test_two_touching_discs_become_two_objects_after_hmax_watershed():
    labels, blob = touching_discs()
    d = ndi.distance_transform_edt(blob)  # what a network sees: one blob, two peaks
    out = hmax_watershed(d, blob, h=2)
    assert out.max() == 2
    assert matching(labels, out, thresholds=[0.9]).tp[0] == 2
    assert np.array_equal(out > 0, blob)  # the watershed stays inside the mask and fills it


def test_hmax_with_h_above_the_peaks_dynamic_keeps_the_discs_together():
    _, blob = touching_discs()
    d = ndi.distance_transform_edt(blob)
    dynamic = d.max() - d[20, 35]  # peak minus saddle at the waist
    assert hmax_watershed(d, blob, h=dynamic - 1).max() == 2
    assert hmax_watershed(d, blob, h=dynamic + 1).max() == 1


def test_hmax_is_reconstruction_by_dilation_of_f_minus_h_under_f():
    from skimage.morphology import h_maxima, local_maxima, reconstruction

    rng = np.random.default_rng(0)
    f = np.zeros((120, 120))
    f[tuple(rng.integers(0, 120, (2, 15)))] = rng.uniform(1, 3, 15) * 1000
    f = ndi.gaussian_filter(f, 5)
    for h in (0.1, 1.0, 3.0):
        rec = hmax(f, h)
        assert np.allclose(rec, reconstruction(f - h, f, method="dilation"))
        assert np.all(rec <= f) and np.all(rec >= f - h - 1e-12)
        # its regional maxima are the same peaks scikit-image's h_maxima finds
        ours = ndi.label(local_maxima(rec, allow_borders=True))[1]
        assert ours == ndi.label(h_maxima(f, h))[1]


def test_hmax_watershed_removes_small_objects_and_numbers_from_one():
    labels, blob = touching_discs()
    speck = np.zeros_like(blob)
    speck[2, 2] = speck[2, 3] = True  # a 2-pixel false detection
    mask = blob | speck
    d = ndi.distance_transform_edt(mask)
    assert hmax_watershed(d, mask, h=2, min_size=0).max() == 3
    out = hmax_watershed(d, mask, h=2, min_size=10)
    assert sorted(np.unique(out).tolist()) == [0, 1, 2] and out[2, 2] == 0


def test_hmax_watershed_recovers_bbbc039_nuclei_from_ideal_maps(bbbc_crops):
    preds = [hmax_watershed(distance_map(lab), lab > 0, h=3) for lab in bbbc_crops]
    f1 = matching_dataset(bbbc_crops, preds, thresholds=[0.5]).summed.f1[0]
    assert f1 > 0.85  # per-object EDTs of real shapes have a few spurious peaks (over-splits)


# ------------------------------------------------------------------------------ FPN2-WS
def test_seeded_watershed_recovers_bbbc039_nuclei_from_ideal_fpn2ws_maps(bbbc_crops):
    preds = [seeded_watershed(distance_map(lab, "normalized"), blurred_border(lab)) for lab in bbbc_crops]
    d = matching_dataset(bbbc_crops, preds, thresholds=[0.5, 0.9])
    assert d.summed.f1[0] > 0.95 and d.summed.f1[1] > 0.9


def test_seeded_watershed_seeds_are_the_distance_above_the_threshold():
    labels, _ = touching_discs()
    dist, border = distance_map(labels, "normalized"), blurred_border(labels)
    assert seeded_watershed(dist, border, threshold=0.6).max() == 2
    assert seeded_watershed(dist, border, threshold=1.0).max() == 0  # no seed, no object
    one_seed = seeded_watershed(dist, border, threshold=0.6, mask=labels == 1)
    assert one_seed.max() == 1 and np.array_equal(one_seed > 0, labels == 1)


# ------------------------------------------------------------------------------ targets
def test_bonte_distance_map_grows_towards_each_centre_and_is_zero_in_background():
    labels, _ = touching_discs()
    d = distance_map(labels, "bonte")
    assert d.dtype == np.float32 and np.all(d[labels == 0] == 0)
    assert d[20, 22] == d[labels == 1].max()  # disc 1 is whole: its peak is its centre
    assert 15 < d[20, 22] < 16  # about the radius
    row = d[20, 7:38]
    assert np.all(np.diff(row[:16]) > 0) and np.all(np.diff(row[15:]) < 0)
    # touching objects are measured separately: the pixels on both sides of the contact are 1
    contact = int(np.flatnonzero(labels[20] == 2)[0])
    assert d[20, contact - 1] == 1.0 and d[20, contact] == 1.0
    assert d[labels > 0].min() == 1.0


def test_normalized_distance_map_is_one_at_each_centre_and_small_at_the_border():
    labels, _ = touching_discs()
    small = np.zeros_like(labels)
    small[30:33, 60:63] = 3
    labels = labels + small * (labels == 0)
    d = distance_map(labels, "normalized")
    for i in (1, 2, 3):
        assert d[labels == i].max() == pytest.approx(1.0)
        assert d[labels == i].min() == pytest.approx(1 / distance_map(labels)[labels == i].max())
    assert np.all(d[labels == 0] == 0) and d.max() <= 1.0


def test_image_border_counts_as_object_border():
    lab = np.zeros((5, 5), np.int32)
    lab[:, :3] = 1  # touches the image on three sides
    assert distance_map(lab)[:, 0].tolist() == [1.0, 1.0, 1.0, 1.0, 1.0]


def test_blurred_border_is_high_on_borders_and_low_inside_and_outside():
    labels, _ = touching_discs()
    b = blurred_border(labels, sigma=1)
    assert b.dtype == np.float32 and 0 <= b.min() and b.max() <= 1
    assert b[20, 22] == 0 and b[0, 0] == 0  # centre, far background
    contact = int(np.flatnonzero(labels[20] == 2)[0])
    assert b[20, 7] > 0.3  # an outer edge pixel
    assert b[20, contact] > b[20, 7]  # where the discs touch, two border lines lie side by side
    sharp = blurred_border(labels, sigma=0)
    assert set(np.unique(sharp).tolist()) == {0.0, 1.0}


# ------------------------------------------------------------------------------ Costa et al. merge
def test_merge_instances_merges_a_duplicate_covered_at_least_half():
    m = np.zeros((3, 12, 12), bool)
    m[0, 1:9, 1:9] = True  # big: 64 px
    m[1, 2:6, 2:6] = True  # fully inside: merges
    m[2, 7:12, 7:12] = True  # 25 px, 4 covered by the big one: stays
    labels, groups = merge_instances(m, return_groups=True)
    assert groups.tolist() == [0, 0, 1]
    # overlapping pixels of masks go to the bigger instance
    assert np.array_equal(labels == 1, m[0] | m[1])
    assert np.array_equal(labels == 2, m[2] & ~m[0])


def test_merge_instances_threshold_is_inclusive_and_joins_are_transitive():
    m = np.zeros((3, 1, 20), bool)
    m[0, 0, 0:12] = True  # a: 12 px
    m[1, 0, 8:16] = True  # b: 8 px, 4 inside a -> exactly half: joins a
    m[2, 0, 14:18] = True  # c: 4 px, 2 inside b -> exactly half: joins b, hence a
    assert merge_instances(m, min_overlap=0.5, return_groups=True)[1].tolist() == [0, 0, 0]
    assert merge_instances(m, min_overlap=0.51, return_groups=True)[1].tolist() == [0, 1, 2]


def test_merge_instances_prefers_the_bigger_instance_with_the_larger_ratio():
    m = np.zeros((3, 1, 30), bool)
    m[0, 0, 0:10] = True  # 10 px
    m[1, 0, 14:30] = True  # 16 px
    m[2, 0, 7:17] = True  # 10 px, same area as 0 (lower index counts as bigger): 3 in 0, 3 in 1
    groups = merge_instances(m, min_overlap=0.3, return_groups=True)[1]
    assert groups.tolist() == [0, 1, 1]  # equal ratios: the biggest partner wins


def test_merge_instances_accepts_probabilities_empty_stacks_and_label_images():
    p = np.zeros((2, 8, 8), np.float32)
    p[0, 1:7, 1:7] = 0.9
    p[1, 2:5, 2:5] = 0.8
    labels, groups = merge_instances(p, return_groups=True)
    assert groups.tolist() == [0, 0] and labels.max() == 1
    empty, g = merge_instances(np.zeros((0, 8, 8), bool), return_groups=True)
    assert empty.shape == (8, 8) and empty.max() == 0 and g.shape == (0,)
    lab = np.array([[0, 4, 4], [7, 0, 0]])
    assert merge_instances(lab).tolist() == [[0, 1, 1], [2, 0, 0]]  # cannot overlap: only renumbered
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        merge_instances(p * 3)


# ------------------------------------------------------------------------------ utilities, validation
def test_relabel_and_remove_small_objects():
    lab = np.array([[0, 9, 9, 0, 3], [0, 9, 0, 0, 0]])
    assert relabel_sequential(lab).tolist() == [[0, 2, 2, 0, 1], [0, 2, 0, 0, 0]]
    assert remove_small_objects(lab, 2).tolist() == [[0, 1, 1, 0, 0], [0, 1, 0, 0, 0]]
    assert relabel_sequential(lab * 2**40).tolist() == relabel_sequential(lab).tolist()


def test_postprocess_inputs_are_validated_naming_the_argument():
    with pytest.raises(ValueError, match="labels must be a non-negative integer"):
        distance_map(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="mode must be"):
        distance_map(np.zeros((4, 4), int), mode="zaki")
    with pytest.raises(ValueError, match="mask must be a boolean mask"):
        hmax_watershed(np.zeros((4, 4)), np.full((4, 4), 0.7), h=1)
    with pytest.raises(ValueError, match=r"mask must have the shape of distance \(4, 4\)"):
        hmax_watershed(np.zeros((4, 4)), np.zeros((4, 5), bool), h=1)
    with pytest.raises(ValueError, match="border must have the shape"):
        seeded_watershed(np.zeros((4, 4)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="distance must not contain NaN"):
        seeded_watershed(np.full((4, 4), np.nan), np.zeros((4, 4)))


def test_hmax_watershed_keeps_a_diagonal_nucleus_whole():
    """One elongated nucleus at 45 degrees: its distance map has a diagonal ridge. With the
    reconstruction's neighbourhood different from the maxima's (8 vs 4), the ridge fell apart
    into ~30 seeds; with one neighbourhood it is one object for h >= 1 (4-connected) and any h (8)."""
    from scipy import ndimage as ndi

    from islteach import postprocess as pp

    yy, xx = np.mgrid[:80, :80]
    u, v = (xx - 40 + yy - 40) / np.sqrt(2), (xx - 40 - (yy - 40)) / np.sqrt(2)
    mask = (u / 30) ** 2 + (v / 10) ** 2 <= 1
    d = ndi.distance_transform_edt(mask)
    for h in (1.0, 2.0):
        assert pp.hmax_watershed(d, mask, h=h, min_size=1).max() == 1
    for h in (0.3, 1.0):
        assert pp.hmax_watershed(d, mask, h=h, min_size=1, connectivity=2).max() == 1
    # the default reconstruction (full neighbourhood) is unchanged for a direct call
    assert np.array_equal(pp.hmax(d, 1.0), pp.hmax(d, 1.0, connectivity=2))
    with pytest.raises(ValueError, match="connectivity"):
        pp.hmax(d, 1.0, connectivity=3)


# ------------------------------------------------------------------------------ many images at once
def test_map_images_gives_the_plain_loops_results_in_order_on_real_labels(bbbc_crops):
    from islteach.postprocess import map_images

    maps = [(distance_map(y), y > 0) for y in bbbc_crops] * 3  # 9 items, more than the threads

    def post(m):
        return hmax_watershed(m[0], m[1], h=1.0, min_size=4)

    serial = [post(m) for m in maps]
    for workers in (None, 1, 2, 5):
        got = map_images(post, maps, workers=workers)
        assert len(got) == len(serial) and all(np.array_equal(a, b) for a, b in zip(got, serial))
    assert map_images(post, [], workers=2) == []


def test_map_images_propagates_errors_and_checks_its_arguments():
    from islteach.postprocess import map_images

    def boom(i):
        if i == 3:
            raise KeyError("item 3")
        return i

    with pytest.raises(KeyError, match="item 3"):
        map_images(boom, range(6), workers=2)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="workers must be a positive integer"):
            map_images(boom, [1], workers=bad)
    with pytest.raises(TypeError, match="fn must be callable"):
        map_images(None, [1])
