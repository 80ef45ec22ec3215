"""Specifications for islteach.train: fit (seeded, checkpoint/resume) and predict_tiled."""
from pathlib import Path

import numpy as np
import pytest
import torch

from islteach.train import History, fit, load_checkpoint, predict_tiled


class RandomCropPairs(torch.utils.data.Dataset):
    """Random 16x16 crops (numpy RNG) with random flips (torch RNG) of a fixed field pair."""

    def __init__(self, n=32):
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(2, 48, 48)).astype(np.float32)
        self.y = (0.7 * self.x[:1] - 0.3 * self.x[1:]).astype(np.float32)
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        r, c = np.random.randint(0, 32, size=2)
        x = torch.from_numpy(self.x[:, r:r + 16, c:c + 16].copy())
        y = torch.from_numpy(self.y[:, r:r + 16, c:c + 16].copy())
        if torch.rand(()) < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        return x, y


def small_net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(2, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 1, 3, padding=1),
    )


KW = dict(steps=12, batch_size=4, lr=1e-2, scheduler="cosine", seed=3, device="cpu",
          progress=False, checkpoint_every=4)


class Crash(Exception):
    pass


def test_fit_resumed_after_a_crash_ends_with_the_same_weights_and_losses_as_an_uninterrupted_run(tmp_path):
    loss = torch.nn.functional.l1_loss
    ref_net = small_net()
    ref = fit(ref_net, RandomCropPairs(), loss, checkpoint_dir=tmp_path / "ref", **KW)

    def crash_at_6(step, value):
        if step == 6:  # after the checkpoint of step 4, before the one of step 8
            raise Crash

    net = small_net()
    with pytest.raises(Crash):
        fit(net, RandomCropPairs(), loss, checkpoint_dir=tmp_path / "run", callback=crash_at_6, **KW)
    assert load_checkpoint(tmp_path / "run")["step"] == 4
    np.random.seed(999)  # a different global RNG state must not matter after resuming
    fresh = small_net(seed=123)  # a new process would start from other weights
    resumed = fit(fresh, RandomCropPairs(), loss, checkpoint_dir=tmp_path / "run", **KW)

    assert resumed.resumed_from == 4
    assert resumed.step == list(range(1, 13))
    assert resumed.loss == ref.loss
    for (k, a), b in zip(ref_net.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k


def test_fit_with_the_same_seed_is_reproducible_and_another_seed_differs():
    loss = torch.nn.functional.l1_loss
    kw = {**KW, "checkpoint_every": 100}
    a = fit(small_net(), RandomCropPairs(), loss, **kw).loss
    b = fit(small_net(), RandomCropPairs(), loss, **kw).loss
    c = fit(small_net(), RandomCropPairs(), loss, **{**kw, "seed": 4}).loss
    assert a == b
    assert a != c


def test_fit_learns_a_linear_mapping_and_records_validation_every_k_steps():
    ds = RandomCropPairs()
    xv = torch.from_numpy(ds.x[None])
    yv = torch.from_numpy(ds.y[None])

    def val_l1(model):
        return float(torch.nn.functional.l1_loss(model(xv), yv))

    h = fit(small_net(), ds, torch.nn.functional.l1_loss, steps=60, batch_size=8, lr=1e-2,
            val_fn=val_l1, val_every=20, device="cpu", progress=False)
    assert h.val_step == [20, 40, 60]
    assert h.val[-1] < 0.5 * h.val[0] or h.val[-1] < 0.1
    assert np.mean(h.loss[-10:]) < np.mean(h.loss[:10])
    assert History.from_dict(h.to_dict()).loss == h.loss


def test_fit_resume_false_ignores_an_existing_checkpoint(tmp_path):
    loss = torch.nn.functional.l1_loss
    fit(small_net(), RandomCropPairs(), loss, checkpoint_dir=tmp_path, **KW)
    h = fit(small_net(), RandomCropPairs(), loss, checkpoint_dir=tmp_path, resume=False, **KW)
    assert h.resumed_from == 0 and len(h.loss) == 12
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("kwargs", [{"steps": 0}, {"batch_size": -1}, {"steps": 2.5}])
def test_fit_rejects_bad_sizes(kwargs):
    args = {"steps": 2, "batch_size": 2, "progress": False, **kwargs}
    with pytest.raises(ValueError):
        fit(small_net(), RandomCropPairs(), torch.nn.functional.l1_loss, **args)


class ShapeRecorder(torch.nn.Module):
    """A pointwise model (1x1 convolution) that records the input shape of every call."""

    def __init__(self, cin=2, cout=1, max_side=None):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(cin, cout, 1)
        self.shapes = []
        self.max_side = max_side

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        if self.max_side is not None and x.shape[-1] > self.max_side:
            raise torch.cuda.OutOfMemoryError("simulated")
        return self.conv(x)


def test_predict_tiled_matches_a_single_pass_for_a_pointwise_model_and_keeps_the_field_size():
    rng = np.random.default_rng(1)
    img = rng.normal(size=(2, 300, 200)).astype(np.float32)
    m = ShapeRecorder()
    out = predict_tiled(m, img, tile=128, overlap=32, batch_size=3, device="cpu")
    with torch.no_grad():
        full = m.conv(torch.from_numpy(img[None]))[0].numpy()
    assert out.shape == (1, 300, 200) and out.dtype == np.float32
    np.testing.assert_allclose(out, full, atol=1e-5)


def test_predict_tiled_never_feeds_a_whole_1024x1344_field_in_one_pass():
    img = np.zeros((1, 1024, 1344), np.float32)
    m = ShapeRecorder(cin=1, cout=2)
    out = predict_tiled(m, img, tile=256, overlap=32, batch_size=4, device="cpu")
    assert out.shape == (2, 1024, 1344)
    assert all(s[-2:] == (256, 256) for s in m.shapes)
    assert all(s[0] <= 4 for s in m.shapes)


def test_predict_tiled_pads_a_field_smaller_than_one_tile():
    img = np.ones((2, 40, 70), np.float32)
    out = predict_tiled(ShapeRecorder(), img, tile=64, overlap=16, device="cpu")
    assert out.shape == (1, 40, 70)


def test_predict_tiled_retries_with_smaller_tiles_after_out_of_memory(capsys):
    img = np.random.default_rng(0).normal(size=(2, 256, 256)).astype(np.float32)
    m = ShapeRecorder(max_side=64)
    out = predict_tiled(m, img, tile=256, overlap=32, batch_size=2, device="cpu")
    assert out.shape == (1, 256, 256)
    assert "out of memory" in capsys.readouterr().out
    with torch.no_grad():
        full = m.conv(torch.from_numpy(img[None]))[0].numpy()
    np.testing.assert_allclose(out, full, atol=1e-5)


def test_predict_tiled_tta_undoes_each_orientation_for_a_pointwise_model():
    # a 1x1 convolution commutes with rotations and mirrors: the mean over the eight orientations
    # equals one plain prediction only if each prediction is turned back exactly (non-square field)
    rng = np.random.default_rng(2)
    img = rng.normal(size=(2, 150, 100)).astype(np.float32)
    m = ShapeRecorder()
    plain = predict_tiled(m, img, tile=64, overlap=16, device="cpu")
    out = predict_tiled(m, img, tile=64, overlap=16, device="cpu", tta=True)
    assert out.shape == (1, 150, 100) and out.dtype == np.float32
    np.testing.assert_allclose(out, plain, atol=1e-5)
    assert len(m.shapes) > 8 and {s[-1] for s in m.shapes} == {64}


def test_predict_tiled_tta_is_the_mean_of_the_eight_orientations_for_a_model_that_has_a_direction():
    # a convolution that copies the pixel to the right: its eight orientations see eight
    # different neighbours, and their mean (turned back) is the mean of the 4 neighbours
    net = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        net.weight.zero_()
        net.weight[0, 0, 1, 2] = 1.0
    img = np.random.default_rng(3).normal(size=(1, 64, 64)).astype(np.float32)  # one tile
    out = predict_tiled(net, img, tile=64, overlap=0, device="cpu", tta=True)[0]
    plain = predict_tiled(net, img, tile=64, overlap=0, device="cpu")[0]
    inner = (img[0, :-2, 1:-1] + img[0, 2:, 1:-1] + img[0, 1:-1, :-2] + img[0, 1:-1, 2:]) / 4
    ix = (slice(1, -1), slice(1, -1))  # away from the field's border (zero padding there)
    np.testing.assert_allclose(out[ix], inner, atol=1e-5)
    np.testing.assert_allclose(plain[ix], img[0, 1:-1, 2:], atol=1e-6)
    assert not np.allclose(out[ix], plain[ix], atol=1e-2)


def test_predict_tiled_rejects_a_tta_that_is_not_a_bool():
    with pytest.raises(TypeError, match="tta"):
        predict_tiled(torch.nn.Conv2d(1, 1, 1), np.zeros((1, 64, 64), np.float32), tta="yes")


@pytest.mark.parametrize("image, kwargs, exc", [
    (np.zeros((64, 64), np.float32), {}, ValueError),
    (np.zeros((1, 64, 64), np.float32), {"tile": 100}, ValueError),
    (np.zeros((1, 64, 64), np.float32), {"overlap": 200}, ValueError),
    (np.zeros((1, 64, 64), dtype=object), {}, TypeError),
])
def test_predict_tiled_rejects_bad_input(image, kwargs, exc):
    with pytest.raises(exc):
        predict_tiled(ShapeRecorder(cin=1), image, **{"tile": 64, **kwargs})


class CountingFlips(RandomCropPairs):
    """Flips decided by a per-item draw counter (own state, like islteach.data.PairDataset)."""

    def __init__(self, n=32):
        super().__init__(n)
        self.draws = np.zeros(n, np.int64)

    def __getitem__(self, i):
        r = np.random.default_rng((0, i, int(self.draws[i])))
        self.draws[i] += 1
        x = torch.from_numpy(self.x[:, :16, :16].copy())
        y = torch.from_numpy(self.y[:, :16, :16].copy())
        if r.integers(0, 2):
            x, y = x.flip(-1) * 2, y.flip(-1) * 2
        return x, y

    def state_dict(self):
        return {"draws": self.draws.copy()}

    def load_state_dict(self, d):
        self.draws = np.asarray(d["draws"]).copy()


def test_fit_checkpoints_and_restores_the_dataset_state_when_it_has_one(tmp_path):
    loss = torch.nn.functional.l1_loss
    ref = fit(small_net(), CountingFlips(), loss, **KW)

    def crash_at_7(step, value):
        if step == 7:
            raise Crash

    with pytest.raises(Crash):
        fit(small_net(), CountingFlips(), loss, checkpoint_dir=tmp_path, callback=crash_at_7, **KW)
    resumed = fit(small_net(), CountingFlips(), loss, checkpoint_dir=tmp_path, **KW)
    assert resumed.resumed_from == 4
    assert resumed.loss == ref.loss


def test_release_memory_reports_the_device_and_never_fails_on_cpu():
    from islteach.train import release_memory

    info = release_memory(verbose=False)
    assert info["device"] in ("cpu", "cuda")
    assert info["allocated_mb"] >= 0 and info["reserved_mb"] >= 0


def test_predict_tiled_places_its_tiles_where_data_tile_positions_says(monkeypatch):
    from islteach import data

    calls = []
    original = data.tile_positions

    def recording(shape, tile, overlap=0):
        calls.append((tuple(shape), tile, overlap))
        return original(shape, tile, overlap)

    monkeypatch.setattr(data, "tile_positions", recording)
    img = np.random.default_rng(2).normal(size=(2, 300, 200)).astype(np.float32)
    m = ShapeRecorder()
    predict_tiled(m, img, tile=128, overlap=32, batch_size=100, device="cpu")
    assert calls == [((300, 200), 128, 32)]
    assert m.shapes[0][0] == len(original((300, 200), 128, 32))


def test_draw_batch_depends_only_on_seed_and_step():
    from islteach.train import draw_batch

    ds = CountingFlips()
    np.random.seed(1)
    torch.manual_seed(1)
    x1, y1 = draw_batch(ds, 5, seed=3, batch_size=4, device="cpu")
    ds2 = CountingFlips()
    np.random.seed(2)
    torch.manual_seed(2)
    x2, y2 = draw_batch(ds2, 5, seed=3, batch_size=4, device="cpu")
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    x3, _ = draw_batch(CountingFlips(), 6, seed=3, batch_size=4, device="cpu")
    assert x3.shape == x1.shape == (4, 2, 16, 16)


def test_train_step_lowers_the_loss_on_its_batch_and_rejects_a_nan_loss():
    from islteach.train import train_step

    net = small_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    ds = RandomCropPairs()
    batch = (torch.from_numpy(ds.x[None]), torch.from_numpy(ds.y[None]))
    first = train_step(net, batch, torch.nn.functional.l1_loss, opt, scaler)
    for _ in range(5):
        last = train_step(net, batch, torch.nn.functional.l1_loss, opt, scaler)
    assert isinstance(first, float) and last < first
    with pytest.raises(FloatingPointError):
        train_step(net, batch, lambda p, t: (p * float("nan")).sum(), opt, scaler)


def test_train_image_to_image_takes_one_image_or_a_list_and_names_a_bad_argument():
    from islteach.train import train_image_to_image

    rng = np.random.default_rng(0)
    xs = [rng.random((2, 40, 40)).astype(np.float32) for _ in range(2)]
    kw = dict(encoder_name="resnet18", encoder_weights=None, steps=2, crop_size=32, batch_size=2, lr=1e-3,
              n_crops=2, seed=0, progress=False, device="cpu")
    model, h = train_image_to_image(xs, [x[:1] for x in xs], **kw)
    assert len(h.loss) == 2 and model.islteach_init == "random"
    with pytest.raises(ValueError, match="x must be"):
        train_image_to_image(np.zeros((40, 40), np.float32), xs[0][:1], **kw)
    with pytest.raises(ValueError, match="as many images"):
        train_image_to_image(xs, [xs[0][:1]], **kw)


def test_load_checkpoint_removes_the_half_written_file_of_a_killed_process(tmp_path):
    stale = tmp_path / ".last.tmp99999.pt"
    stale.write_bytes(b"half a checkpoint")
    assert load_checkpoint(tmp_path) is None
    assert not stale.exists()


def _fake_full_disk(monkeypatch, free_bytes):
    import collections
    import shutil

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(2**40, 2**40 - free_bytes, free_bytes))


def test_a_checkpoint_that_fills_the_disk_says_so_and_leaves_the_last_one_intact(tmp_path, monkeypatch):
    import errno

    import torch

    from islteach.train import _atomic_torch_save

    target = tmp_path / "last.pt"
    _atomic_torch_save({"step": 1}, target)

    def full(obj, f, *a, **k):  # what torch.save raises when the disk fills while it writes
        Path(f).write_bytes(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 110891072 vs 110890964")

    monkeypatch.setattr(torch, "save", full)
    _fake_full_disk(monkeypatch, 3 * 2**20)
    with pytest.raises(OSError, match="disk is full") as info:
        _atomic_torch_save({"step": 2}, target)
    assert info.value.errno == errno.ENOSPC
    assert str(target) in str(info.value) and "ISLTEACH_RESULTS_DIR" in str(info.value)
    assert "unexpected pos" in str(info.value)             # the library's own words are kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]   # no half-written file
    monkeypatch.undo()
    assert torch.load(target, weights_only=False) == {"step": 1}


def test_a_failed_write_on_a_disk_with_room_raises_the_original_error(tmp_path, monkeypatch):
    from islteach.provenance import atomic_path

    _fake_full_disk(monkeypatch, 50 * 2**30)
    with pytest.raises(RuntimeError, match="not the disk"):
        with atomic_path(tmp_path / "a.json") as tmp:
            tmp.write_text("{")
            raise RuntimeError("not the disk")
    assert list(tmp_path.iterdir()) == []


def test_an_enospc_write_is_reported_as_a_full_disk_whatever_the_free_space(tmp_path, monkeypatch):
    import errno

    from islteach.provenance import atomic_path

    _fake_full_disk(monkeypatch, 50 * 2**30)
    with pytest.raises(OSError, match="disk is full") as info:
        with atomic_path(tmp_path / "a.npz"):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert info.value.errno == errno.ENOSPC and "a.npz" in str(info.value)


def test_an_oserror_of_another_kind_is_raised_unchanged_even_on_a_nearly_full_disk(tmp_path, monkeypatch):
    import errno

    from islteach.provenance import atomic_path

    _fake_full_disk(monkeypatch, 1 * 2**20)
    with pytest.raises(PermissionError) as info:
        with atomic_path(tmp_path / "a.json"):
            raise PermissionError(errno.EACCES, "Permission denied")
    assert info.value.errno == errno.EACCES and "disk is full" not in str(info.value)


def test_keep_freed_memory_acts_once_and_fit_asks_for_it_on_the_cpu():
    import platform

    import torch

    from islteach import train

    ds = torch.utils.data.TensorDataset(torch.randn(8, 1, 8, 8), torch.randn(8, 1, 8, 8))
    train.fit(torch.nn.Conv2d(1, 1, 3, padding=1), ds, torch.nn.functional.l1_loss, steps=2, batch_size=2,
              progress=False, device="cpu")
    assert train._FREED_MEMORY_KEPT is not None  # fit on the CPU asked glibc
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert train.keep_freed_memory() is glibc and train.keep_freed_memory() is glibc
