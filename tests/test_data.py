"""Specifications of islteach.data and islteach.ics: registry, errors, loaders, crops, tiles, PairDataset."""
from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from islteach import data
from islteach.ics import read_ics, read_ics_header, write_ics

SHARED = Path(os.environ.get("ISLTEACH_DATA_DIR", "/work/shared/data"))
HAVE_DATA = (SHARED / "stardist-sample" / "MANIFEST.tsv").is_file()
needs_data = pytest.mark.skipif(
    not HAVE_DATA, reason=f"real data not found at {SHARED} (set ISLTEACH_DATA_DIR to the data cache)"
)


@pytest.fixture
def shared_data(monkeypatch):
    monkeypatch.setenv("ISLTEACH_DATA_DIR", str(SHARED))
    return SHARED


@pytest.fixture
def offline(monkeypatch):
    """Every download attempt fails as it would without network."""
    calls = []

    def no_network(key, sha, url, root, progressbar):
        calls.append(key)
        raise ConnectionError("no network (test)")

    monkeypatch.setattr(data, "_download", no_network)
    return calls


# --------------------------------------------------------------------------- registry
@needs_data
def test_registry_has_every_manifest_row_with_same_hash_and_url():
    manifests = sorted(SHARED.glob("*/MANIFEST.tsv"))
    assert {m.parent.name for m in manifests} == set(data.list_datasets())
    total = 0
    for m in manifests:
        name = m.parent.name
        reg = data._registry(name)
        with open(m, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        assert len(reg) == len(rows), name
        for row in rows:
            key = f"{name}/{row['relative_path']}"
            assert reg[key] == (row["sha256"].lower(), row["raw_url_pinned"]), key
        meta = data.describe(name)
        assert meta["n_files"] == len(rows)
        assert meta["n_bytes"] == sum(int(r["size_bytes"]) for r in rows)
        total += len(rows)
    assert total == 3501


@needs_data
def test_registry_files_are_what_make_registry_generates_from_the_manifests():
    import runpy

    script = Path(__file__).resolve().parent.parent / "scripts" / "make_registry.py"
    mod = runpy.run_path(str(script))
    assert mod["main"](["--data-dir", str(SHARED), "--check"]) == 0


def test_registry_files_parse_with_pooch_including_keys_with_spaces():
    import pooch

    pup = pooch.create(path="/nonexistent", base_url="")
    pup.load_registry(data._registry_dir() / "sephace.txt")
    assert "sephace/Set 1/fl.ics" in pup.registry
    assert pup.registry["sephace/Set 1/fl.ics"].startswith("sha256:")
    assert pup.urls["sephace/Set 1/fl.ics"] == data._registry("sephace")["sephace/Set 1/fl.ics"][1]


def test_describe_gives_license_citation_and_counts():
    for name in data.list_datasets():
        d = data.describe(name)
        for field in ("title", "license", "citation", "upstream", "n_files", "n_bytes", "loader"):
            assert d[field], (name, field)
        assert hasattr(data, d["loader"])


def test_unknown_dataset_name_lists_the_known_ones():
    with pytest.raises(ValueError) as err:
        data.fetch("bbbc038")
    msg = str(err.value)
    assert "bbbc038" in msg
    for name in data.list_datasets():
        assert name in msg
    with pytest.raises(ValueError, match="known data sets"):
        data.describe("nope")


def test_data_dir_follows_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("ISLTEACH_DATA_DIR", str(tmp_path))
    assert data.data_dir() == tmp_path
    monkeypatch.delenv("ISLTEACH_DATA_DIR")
    assert "islteach" in str(data.data_dir())


# --------------------------------------------------------------------------- errors
def test_missing_file_offline_names_file_directory_url_and_fix(monkeypatch, tmp_path, offline):
    monkeypatch.setenv("ISLTEACH_DATA_DIR", str(tmp_path))
    with pytest.raises(data.DataFileMissingError) as err:
        data.fetch("stardist-sample", progressbar=False)
    msg = str(err.value)
    assert "stardist-sample/img2d.tif" in msg
    assert str(tmp_path) in msg
    assert "https://raw.githubusercontent.com/stardist/stardist/" in msg
    assert "ISLTEACH_DATA_DIR" in msg and "internet" in msg
    assert isinstance(err.value, FileNotFoundError)


@needs_data
def test_corrupted_file_is_named_removed_and_never_returned(monkeypatch, tmp_path, offline):
    cache = tmp_path / "cache"
    shutil.copytree(SHARED / "stardist-sample", cache / "stardist-sample")
    bad = cache / "stardist-sample" / "img2d.tif"
    raw = bytearray(bad.read_bytes())
    raw[1000] ^= 0xFF
    bad.write_bytes(bytes(raw))
    monkeypatch.setenv("ISLTEACH_DATA_DIR", str(cache))
    with pytest.raises(data.DataHashError) as err:
        data.load_stardist_sample()
    msg = str(err.value)
    assert "stardist-sample/img2d.tif" in msg and "sha256" in msg and "removed" in msg
    assert not bad.exists()  # nothing corrupted left behind as if valid
    assert (cache / "stardist-sample" / "mask2d.tif").exists()  # good files untouched
    # a second attempt is now a plain 'missing' error, not a silent success
    with pytest.raises(data.DataFileMissingError):
        data.load_stardist_sample()


@needs_data
def test_corrupted_file_is_replaced_when_the_download_works(monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(SHARED / "stardist-sample", cache / "stardist-sample")
    bad = cache / "stardist-sample" / "mask2d.tif"
    bad.write_bytes(b"not a tiff")

    def fake_download(key, sha, url, root, progressbar):
        dst = Path(root) / key
        shutil.copy(SHARED / key, dst)
        return dst

    monkeypatch.setattr(data, "_download", fake_download)
    monkeypatch.setenv("ISLTEACH_DATA_DIR", str(cache))
    image, labels = data.load_stardist_sample()
    assert len(np.unique(labels)) - 1 == 125


# --------------------------------------------------------------------------- ICS reader
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32])
@pytest.mark.parametrize("compression", ["gzip", "uncompressed"])
def test_ics_roundtrip_keeps_values_shape_and_dtype(tmp_path, dtype, compression):
    a = (np.random.default_rng(0).random((5, 7)) * 200).astype(dtype)
    p = tmp_path / "x.ics"
    write_ics(p, a, compression=compression)
    b = read_ics(p)
    assert b.shape == (5, 7) and b.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(a, b)


def test_ics_reader_rejects_truncated_data_and_version_1(tmp_path):
    p = tmp_path / "x.ics"
    write_ics(p, np.ones((20, 30), np.uint16), compression="uncompressed")
    raw = p.read_bytes()
    p.write_bytes(raw[:-10])
    with pytest.raises(ValueError, match="header promises"):
        read_ics(p)
    p.write_bytes(raw.replace(b"ics_version\t2.0", b"ics_version\t1.0"))
    with pytest.raises(ValueError, match="version 2"):
        read_ics(p)


@needs_data
def test_ics_reader_reads_sephace_header_and_pixels():
    path = SHARED / "sephace" / "Set 1" / "fl.ics"
    h = read_ics_header(path)
    assert h["order"] == ["x", "y"] and h["sizes"] == [1344, 1024] and h["compression"] == "gzip"
    a = read_ics(path)
    assert a.shape == (1024, 1344) and a.dtype == np.uint8 and a.std() > 0


# --------------------------------------------------------------------------- loaders
@needs_data
def test_stardist_sample_has_125_nuclei(shared_data):
    image, labels = data.load_stardist_sample()
    assert image.shape == labels.shape == (512, 512)
    assert image.dtype == np.float32 and labels.dtype == np.int32
    assert len(np.unique(labels)) - 1 == 125


@needs_data
def test_loaders_return_fresh_arrays_so_caching_is_safe(shared_data):
    a, _ = data.load_stardist_sample()
    a[:] = -1
    b, _ = data.load_stardist_sample()
    assert b.min() >= 0


@needs_data
def test_isl_finkbeiner_phase_is_ordered_by_z(shared_data):
    d = data.load_isl_finkbeiner()
    assert d["phase"].shape == (13, 1024, 1024)
    for k in ("dapi", "map2", "nfh"):
        assert d[k].shape == (1024, 1024) and d[k].dtype == np.float32
    files = {p.name: p for p in data.fetch("isl-finkbeiner-b")}
    for z in (2, 10):  # lexicographic order would put z_depth-10 at index 2
        name = next(n for n in files if f"z_depth-{z}," in n)
        np.testing.assert_array_equal(d["phase"][z], data._imread(files[name]).astype(np.float32))
    assert d["dapi"][data.ISL_TEST_REGION].shape == (512, 512)


@needs_data
@pytest.mark.parametrize("field", [1, 2])
def test_sephace_planes_sorted_by_focus(shared_data, field):
    d = data.load_sephace(field)
    assert d["brightfield"].shape == (6, 1024, 1344) and d["dapi"].shape == (1024, 1344)
    assert np.all(np.diff(d["focus_um"]) > 0) and 1300 < d["focus_um"][0] < 1400
    assert d["brightfield"].dtype == np.float32


def test_sephace_rejects_unknown_field():
    with pytest.raises(ValueError, match="field must be 1 or 2"):
        data.load_sephace(3)


@needs_data
def test_bbbc039_has_200_images_and_about_23600_nuclei_split_100_50_50(shared_data):
    images, labels = data.load_bbbc039("all")
    assert images.shape == labels.shape == (200, 520, 696)
    assert images.dtype == np.float32 and labels.dtype == np.int32
    counts = np.array([np.count_nonzero(np.bincount(l.ravel())[1:]) for l in labels])
    assert np.array_equal(counts, labels.reshape(200, -1).max(1))  # labels are 1..n per image
    assert 23_000 <= counts.sum() <= 24_200
    names = {s: data.bbbc039_names(s) for s in ("train", "val", "test", "all")}
    assert [len(names[s]) for s in ("train", "val", "test")] == [100, 50, 50]
    assert names["train"] + names["val"] + names["test"] == sorted(names["all"]) == names["all"]
    test_images, test_labels = data.load_bbbc039("test")
    np.testing.assert_array_equal(test_images, images[150:])
    np.testing.assert_array_equal(test_labels, labels[150:])


def test_bbbc039_rejects_unknown_split():
    with pytest.raises(ValueError, match="split must be one of"):
        data.load_bbbc039("training")


@needs_data
def test_dsb2018_has_100_images_with_one_label_per_mask_file(shared_data):
    images, labels, ids = data.load_dsb2018_fluo256(return_ids=True)
    assert images.shape == labels.shape == (100, 256, 256) and len(ids) == 100
    n_masks = sum(1 for p in data.fetch("dsb2018-fluo256") if "/masks/" in p.as_posix())
    assert sum(len(np.unique(l)) - 1 for l in labels) == n_masks


def test_color_mask_components_of_one_value_are_separate_instances():
    m = np.zeros((6, 6), np.uint8)
    m[0:2, 0:2] = 1  # two touching nuclei with different values
    m[0:2, 2:4] = 2
    m[4:6, 4:6] = 1  # same value as the first, not connected
    lab = data.labels_from_color_mask(m)
    assert lab.max() == 3 and len(np.unique(lab)) == 4
    assert lab[0, 0] != lab[0, 2] and lab[0, 0] != lab[5, 5]
    with pytest.raises(ValueError, match="mask must be a 2-D integer array"):
        data.labels_from_color_mask(m.astype(float))


# --------------------------------------------------------------------------- normalisation
def test_normalize_percentile_maps_percentiles_to_0_and_1():
    x = np.arange(1001, dtype=np.uint16)
    y = data.normalize_percentile(x, 10, 90)
    assert y.dtype == np.float32
    assert y[100] == pytest.approx(0) and y[900] == pytest.approx(1)
    assert data.normalize_percentile(x, 10, 90, clip=True).max() == 1
    stack = np.stack([x, 10 * x]).astype(np.float32)
    per_plane = data.normalize_percentile(stack, 0, 100, axis=(-1,))
    np.testing.assert_allclose(per_plane[0], per_plane[1], atol=1e-6)


def test_normalize_percentile_rejects_bad_input():
    with pytest.raises(TypeError, match="x must be"):
        data.normalize_percentile(np.array(["a", "b"]))
    with pytest.raises(ValueError, match="pmin"):
        data.normalize_percentile(np.ones(3), 50, 10)


# --------------------------------------------------------------------------- crops, splits, tiles
def test_random_crops_are_seeded_and_aligned_across_arrays():
    rng = np.random.default_rng(1)
    x = rng.random((3, 100, 120))
    y = rng.random((100, 120))
    (cx, cy), pos = data.random_crops([x, y], 32, k=5, seed=7, return_positions=True)
    assert cx.shape == (5, 3, 32, 32) and cy.shape == (5, 32, 32)
    for i, (py, px) in enumerate(pos):
        np.testing.assert_array_equal(cy[i], y[py:py + 32, px:px + 32])
        np.testing.assert_array_equal(cx[i], x[:, py:py + 32, px:px + 32])
    again = data.random_crops([x, y], 32, k=5, seed=7)
    np.testing.assert_array_equal(again[0], cx)
    other = data.random_crops([x, y], 32, k=5, seed=8)
    assert not np.array_equal(other[0], cx)


def test_random_crops_stay_inside_the_training_region():
    train, test = data.spatial_split((1024, 1024), margin=16)
    _, pos = data.random_crops(np.zeros((1024, 1024)), 256, k=200, seed=0, allowed=train, return_positions=True)
    for y, x in pos:
        assert train[y:y + 256, x:x + 256].all()
        assert not test[y:y + 256, x:x + 256].any()
    with pytest.raises(ValueError, match="no 600x600 crop fits"):
        data.random_crops(np.zeros((1024, 1024)), 600, k=1, allowed=train)


def test_spatial_split_is_disjoint_and_margin_removes_a_band():
    tr, te = data.spatial_split((1024, 1024))
    assert te.sum() == 512 * 512 and not (tr & te).any() and (tr | te).all()
    tr8, _ = data.spatial_split((1024, 1024), margin=8)
    assert tr8.sum() == 1024 * 1024 - (512 + 8) ** 2


def test_tiles_cover_the_image_and_stitch_back_exactly():
    img = np.random.default_rng(0).random((2, 300, 410)).astype(np.float32)
    tiles, pos = data.extract_tiles(img, 128, overlap=32)
    assert tiles.shape[1:] == (2, 128, 128)
    np.testing.assert_allclose(data.stitch_tiles(tiles, pos, (300, 410)), img, rtol=1e-6)
    small = np.ones((50, 60))
    t, p = data.extract_tiles(small, 64)
    assert t.shape == (1, 64, 64)
    np.testing.assert_array_equal(data.stitch_tiles(t, p, (50, 60)), small)


# --------------------------------------------------------------------------- PairDataset
def test_pair_dataset_yields_aligned_crops_with_reproducible_flips():
    import torch

    rng = np.random.default_rng(0)
    x = rng.random((2, 64, 64)).astype(np.float32)
    target = x[0] * 2  # target is a function of input channel 0 -> must stay aligned under flips
    labels = (x[1] > 0.5).astype(np.int32)
    a = data.PairDataset(x, target, crop_size=32, n_crops=6, seed=3)
    b = data.PairDataset(x, target, crop_size=32, n_crops=6, seed=3)
    assert len(a) == 6
    seen = set()
    for i in range(len(a)):
        for step in range(3):
            (xa, ya), (xb, yb) = a.draw(i, step), b.draw(i, step)
            assert xa.dtype == torch.float32 and tuple(xa.shape) == (2, 32, 32) and tuple(ya.shape) == (1, 32, 32)
            torch.testing.assert_close(ya[0], xa[0] * 2)
            torch.testing.assert_close(xa, xb)
            seen.add(xa.numpy().tobytes())
    assert len(seen) > 6  # flips vary between steps
    with pytest.raises(ValueError, match="step"):
        a.draw(0, -1)
    ds = data.PairDataset([x, x], [labels, labels], crop_size=16, n_crops=2, seed=0, flips=False)
    xl, yl = ds[3]
    assert yl.dtype == torch.int64 and len(ds) == 4


def test_pair_dataset_draws_depend_on_seed_index_and_step_not_on_earlier_reads():
    """Reading items (a figure, a probe) must not change what a later training step sees."""
    import torch

    x = np.random.default_rng(1).random((1, 48, 48)).astype(np.float32)
    fresh = data.PairDataset(x, x[0], crop_size=16, n_crops=8, seed=5)
    probed = data.PairDataset(x, x[0], crop_size=16, n_crops=8, seed=5)
    for i in range(len(probed)):  # a probe cell reads every item a few times
        for _ in range(3):
            probed[i]
    for i in range(len(fresh)):
        for step in (0, 7, 100):
            torch.testing.assert_close(fresh.draw(i, step)[0], probed.draw(i, step)[0])
        torch.testing.assert_close(fresh[i][0], fresh.draw(i, 0)[0])


def test_pair_dataset_crops_respect_allowed_area_and_reject_mismatch():
    x = np.zeros((1, 128, 128), np.float32)
    allowed = np.zeros((128, 128), bool)
    allowed[:64, :64] = True
    ds = data.PairDataset(x, x[0], crop_size=32, n_crops=20, seed=0, allowed=allowed)
    assert all(y + 32 <= 64 and xx + 32 <= 64 for _, y, xx in ds.index)
    with pytest.raises(ValueError, match="differ in"):
        data.PairDataset(x, np.zeros((100, 128)), crop_size=32)


# --------------------------------------------------------------------------- downloads (network faked)
@needs_data
def test_fetch_downloads_only_missing_files_in_parallel(monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    (cache / "sephace" / "Set 1").mkdir(parents=True)
    shutil.copy(SHARED / "sephace" / "Set 1" / "fl.ics", cache / "sephace" / "Set 1" / "fl.ics")
    calls = []

    def fake_download(key, sha, url, root, progressbar):
        calls.append(key)
        dst = Path(root) / key
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SHARED / key, dst)
        return dst

    monkeypatch.setattr(data, "_download", fake_download)
    monkeypatch.setenv("ISLTEACH_DATA_DIR", str(cache))
    paths = data.fetch("sephace", progressbar=False, workers=4)
    assert len(paths) == 14 and all(p.is_file() for p in paths)
    assert sorted(calls) == sorted(k for k in data._registry("sephace") if not k.endswith("Set 1/fl.ics"))
    assert data.load_sephace(2)["brightfield"].shape == (6, 1024, 1344)


def test_a_download_with_the_wrong_hash_is_reported_as_such(monkeypatch, tmp_path):
    def bad_download(key, sha, url, root, progressbar):  # what pooch raises on a hash mismatch
        raise ValueError(f"SHA256 hash of downloaded file ({key}) does not match the known hash")

    monkeypatch.setattr(data, "_download", bad_download)
    monkeypatch.setenv("ISLTEACH_DATA_DIR", str(tmp_path))
    with pytest.raises(data.DataHashError, match="stardist-sample/img2d.tif.*does not match"):
        data.fetch("stardist-sample", progressbar=False)
    assert not (tmp_path / "stardist-sample" / "img2d.tif").exists()
