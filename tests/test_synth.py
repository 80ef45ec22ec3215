"""Specifications of islteach.synth.make_field: determinism, consistent truth, and the optical model."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from islteach.synth import make_field, make_fields


@pytest.fixture(scope="module")
def field():
    return make_field(256, seed=5, noise=False)


def test_same_seed_gives_identical_fields_and_other_seeds_differ():
    a, b, c = make_field(96, seed=11), make_field(96, seed=11), make_field(96, seed=12)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert not np.array_equal(a["nuclei"], c["nuclei"])
    assert not np.array_equal(a["dapi"], c["dapi"])
    fs = make_fields(2, 96, seed=11)
    np.testing.assert_array_equal(fs[0]["brightfield"], a["brightfield"])
    np.testing.assert_array_equal(fs[1]["phase"], c["phase"])


def test_shapes_and_dtypes_follow_the_contract():
    f = make_field(128, seed=0, z_um=(-3, 0, 3))
    assert f["nuclei"].shape == f["cells"].shape == (128, 128)
    assert f["nuclei"].dtype == f["cells"].dtype == np.int32
    for k in ("dapi", "cellmask", "phase"):
        assert f[k].shape == (128, 128) and f[k].dtype == np.float32, k
    assert f["brightfield"].shape == (3, 128, 128) and f["brightfield"].dtype == np.float32
    assert f["z_um"].tolist() == [-3, 0, 3]


def test_every_nucleus_lies_inside_the_cell_with_the_same_id(field):
    nuc, cells = field["nuclei"], field["cells"]
    assert nuc.max() >= 20 and cells.max() >= 20
    inside = nuc > 0
    np.testing.assert_array_equal(nuc[inside], cells[inside])
    ids = np.unique(cells[cells > 0])
    np.testing.assert_array_equal(ids, np.arange(1, len(ids) + 1))  # cells numbered 1..m
    assert set(np.unique(nuc[inside])) <= set(ids)


def test_some_cells_touch_so_membranes_separate_them(field):
    cells = field["cells"]
    touching = (cells[:, 1:] != cells[:, :-1]) & (cells[:, 1:] > 0) & (cells[:, :-1] > 0)
    assert touching.sum() > 100
    border = (ndi.maximum_filter(cells, 3) != ndi.minimum_filter(cells, 3)) & (cells > 0)
    interior = (cells > 0) & ~ndi.binary_dilation(border, iterations=2)
    assert field["cellmask"][border].mean() > 2 * field["cellmask"][interior].mean()


def test_dapi_is_bright_in_nuclei_and_dark_outside(field):
    nuc, cells = field["nuclei"] > 0, field["cells"] > 0
    assert field["dapi"][nuc].mean() > 10 * field["dapi"][~cells].mean()


def test_brightfield_contrast_inverts_through_focus(field):
    """Weak phase object: defocus by +z and -z gives opposite contrast (transport of intensity)."""
    bf = field["brightfield"]
    z = field["z_um"]
    i0, ip, im = int(np.argmin(np.abs(z))), int(np.argmax(z)), int(np.argmin(z))
    r = np.corrcoef((bf[ip] - bf[i0]).ravel(), (bf[im] - bf[i0]).ravel())[0, 1]
    assert r < -0.9
    assert bf[ip].std() > bf[i0].std()  # cells nearly vanish in focus


def test_phase_contrast_shows_nuclei_dark(field):
    nuc, cells = field["nuclei"] > 0, field["cells"] > 0
    assert field["phase"][nuc].mean() < field["phase"][~cells].mean() - 0.05


def test_label_free_to_dapi_is_learnable_but_no_single_plane_gives_it():
    """A linear model on blurred label-free planes predicts DAPI on a new field well, but not perfectly."""

    def features(f):
        out = []
        for p in list(f["brightfield"]) + [f["phase"]]:
            p = p - p.mean()
            out += [p, ndi.gaussian_filter(p, 2), ndi.gaussian_filter(p, 4),
                    ndi.gaussian_laplace(p, 2), ndi.gaussian_laplace(p, 4)]
        out.append(np.ones_like(out[0]))
        return np.stack([o.ravel() for o in out], 1)

    train = [make_field(192, seed=s) for s in range(3)]
    test = make_field(192, seed=100)
    X = np.concatenate([features(f) for f in train])
    y = np.concatenate([f["dapi"].ravel() for f in train])
    w, *_ = np.linalg.lstsq(X, y, rcond=None)
    pcc = np.corrcoef(features(test) @ w, test["dapi"].ravel())[0, 1]
    assert 0.6 < pcc < 0.97
    single = [abs(np.corrcoef(p.ravel(), test["dapi"].ravel())[0, 1]) for p in test["brightfield"]]
    assert max(single) < 0.6


def test_noise_is_shot_noise_around_the_expected_image():
    clean, noisy = make_field(128, seed=2, noise=False), make_field(128, seed=2)
    np.testing.assert_array_equal(clean["nuclei"], noisy["nuclei"])
    d = noisy["dapi"] - clean["dapi"]
    assert abs(d.mean()) < 0.5 and 0.5 < (d.var() / clean["dapi"].mean()) < 2.0
    assert (noisy["dapi"] >= 0).all() and np.array_equal(noisy["dapi"], np.rint(noisy["dapi"]))


@pytest.mark.parametrize("kwargs, match", [
    ({"size": 16}, "size must be an int >= 32"),
    ({"seed": -1}, "seed must be a non-negative int"),
    ({"density": 0}, "density"),
    ({"z_um": []}, "z_um must be"),
])
def test_bad_arguments_are_rejected_with_the_argument_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_field(**kwargs)


def test_make_field_output_is_pinned_to_the_values_before_its_split_into_sections():
    # sums of make_field(128, seed=4) computed before make_field was split into private functions
    f = make_field(128, seed=4)
    expected = {"nuclei": 48355.0, "cells": 224172.0, "dapi": 783396.0, "cellmask": 963194.0,
                "brightfield": 81742.53453141451, "phase": 16409.732503414154,
                "optical_path": 1888.2937167245027}
    for k, v in expected.items():
        total = float(np.asarray(f[k], np.float64).sum())
        if f[k].dtype.kind == "i":
            assert total == v, k
        else:
            assert total == pytest.approx(v, rel=1e-6), k


# --------------------------------------------------------------------------- the difficulty knob
def _nuclear_contrast(f):
    """|mean(nucleus) - mean(cytoplasm)| / sd(background) in each label-free image (3 bright-field planes, phase)."""
    nuc = f["nuclei"] > 0
    cyt = (f["cells"] > 0) & ~nuc
    bg = f["cells"] == 0
    imgs = [f["brightfield"][0], f["brightfield"][2], f["brightfield"][4], f["phase"]]
    return np.array([abs(im[nuc].mean() - im[cyt].mean()) / im[bg].std() for im in imgs])


def test_difficulty_zero_is_the_default_microscope_bit_for_bit():
    a, b = make_field(96, seed=7), make_field(96, seed=7, difficulty=0.0)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_difficulty_settings_map_one_knob_to_contrast_defocus_and_photons():
    from islteach.synth import difficulty_settings

    assert difficulty_settings(0) == {"nuclear_contrast": 1.0, "defocus": 1.0, "photons_bf": 1.0}
    s = difficulty_settings(1.0)
    assert s["nuclear_contrast"] == pytest.approx(0.15) and s["defocus"] == 2.0 and s["photons_bf"] == pytest.approx(0.1)
    half = difficulty_settings(0.5)
    assert half["nuclear_contrast"] == pytest.approx(0.575) and half["defocus"] == 1.5
    assert half["photons_bf"] == pytest.approx(1 / 5.5)
    for bad in (-0.1, 1.5, "hard", True):
        with pytest.raises(ValueError, match="difficulty"):
            difficulty_settings(bad)
    with pytest.raises(ValueError, match="difficulty"):
        make_field(64, seed=0, difficulty=2.0)


def test_difficulty_changes_the_imaging_not_the_specimen():
    easy, hard = make_field(96, seed=3), make_field(96, seed=3, difficulty=1.0)
    for k in ("nuclei", "cells", "dapi", "cellmask"):
        np.testing.assert_array_equal(easy[k], hard[k], err_msg=k)
    np.testing.assert_allclose(hard["z_um"], 2 * easy["z_um"])
    assert not np.array_equal(easy["phase"], hard["phase"])


def test_nuclear_contrast_in_the_label_free_planes_falls_monotonically_with_difficulty():
    ds = [0.0, 0.25, 0.5, 0.75, 1.0]
    cnr = np.array([_nuclear_contrast(make_field(192, seed=5, difficulty=d)) for d in ds])  # (difficulty, image)
    assert (np.diff(cnr, axis=0) < 0).all(), cnr
    # easy: nuclei plain in phase contrast (about 2.6 background sd); hardest: below half a background sd
    assert cnr[0, -1] > 2.0 and cnr[-1, -1] < 0.5
    assert (cnr[-1] < 0.25 * cnr[0]).all()


def test_nuclear_phase_contrast_alone_falls_without_noise_or_defocus():
    """Without noise the phase image's nuclear step shrinks in proportion to the nuclear optical path."""
    f0, f1 = make_field(128, seed=2, noise=False), make_field(128, seed=2, noise=False, difficulty=1.0)
    nuc = f0["nuclei"] > 0
    cyt = (f0["cells"] > 0) & ~nuc
    step0 = f0["optical_path"][nuc].mean() - f0["optical_path"][cyt].mean()
    step1 = f1["optical_path"][nuc].mean() - f1["optical_path"][cyt].mean()
    assert step0 > 0.1 and step1 < 0.5 * step0
