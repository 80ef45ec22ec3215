"""One training loop for every chapter, and tiled prediction of whole fields.

:func:`fit` trains a model on a torch ``Dataset`` of ``(x, y)`` pairs for a fixed
number of optimisation steps. What it takes care of:

* reproducibility: the mini-batch of step ``s`` is drawn with a generator seeded
  from ``(seed, s)`` and the global RNGs (Python, NumPy, torch) are reseeded from
  ``(seed, s)`` before the dataset is asked for its random crops and flips, so a
  step does the same thing whether the run was interrupted before it or not;
* a tqdm progress bar, a validation history (``val_fn`` every ``val_every`` steps);
* mixed precision and ``cudnn.benchmark`` on CUDA only (CPU runs stay in float32);
* a checkpoint every ``checkpoint_every`` steps (model, optimiser, scheduler, AMP
  scaler, RNG states, step, history; atomic writes) and automatic resumption from the
  last checkpoint, e.g. after a Colab disconnect. :func:`checkpoint_dir_for` puts the
  checkpoints in the results folder, which the chapter's Drive switch puts on Google Drive.

Its loop is short because each part has a name: :func:`draw_batch` (the seeded
mini-batch of one step), :func:`train_step` (forward, loss, backward, update),
:func:`save_checkpoint` and :func:`resume_from`.

:func:`train_image_to_image` is the book's one image-to-image recipe (U-Net, L1 loss,
Adam, cosine schedule, random crops and flips): chapter 1's virtual staining and
chapter 3's synthetic pretext both train with it.

:func:`predict_tiled` predicts a whole field tile by tile with overlapping, smoothly
blended tiles, so that a 1024x1344 image never needs one forward pass; on a CUDA
out-of-memory error it retries with smaller tiles. With ``tta=True`` it averages the
predictions of the field's eight orientations (test-time augmentation, chapter 1).
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .provenance import shown_path

__all__ = ["History", "fit", "draw_batch", "train_step", "save_checkpoint", "resume_from", "train_image_to_image",
           "predict_tiled", "checkpoint_dir_for", "load_checkpoint", "release_memory", "keep_freed_memory"]

CHECKPOINT_NAME = "last.pt"


@dataclass
class History:
    """What happened during :func:`fit`.

    Attributes
    ----------
    step, loss : list
        Training loss of every optimisation step (1-based step numbers).
    val_step, val : list
        Steps at which ``val_fn`` ran and what it returned (a float or a dict).
    lr : list
        Learning rate at every step.
    resumed_from : int
        Step of the checkpoint the run resumed from (0: started fresh).
    seconds : float
        Wall time spent in :func:`fit` (summed over resumed runs).
    """

    step: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    val_step: list = field(default_factory=list)
    val: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    resumed_from: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "step": list(self.step), "loss": list(self.loss), "val_step": list(self.val_step),
            "val": list(self.val), "lr": list(self.lr), "resumed_from": self.resumed_from,
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def smoothed_loss(self, window: int = 20) -> np.ndarray:
        """Running mean of the training loss over ``window`` steps (for plots)."""
        x = np.asarray(self.loss, dtype=float)
        if len(x) == 0:
            return x
        w = max(1, min(int(window), len(x)))
        c = np.cumsum(np.insert(x, 0, 0.0))
        out = np.empty_like(x)
        for i in range(len(x)):
            lo = max(0, i + 1 - w)
            out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
        return out


# --------------------------------------------------------------------------- helpers
def _step_seed(seed: int, step: int) -> int:
    return (int(seed) * 1_000_003 + int(step) * 7919 + 12345) % (2**31 - 1)


def _seed_all(s: int) -> None:
    import torch

    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)


def _rng_state() -> dict:
    import torch

    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict) -> None:
    import torch

    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(st["cuda"])
        except Exception:  # different number of GPUs after a restart
            pass


def _make_optimizer(model, optimizer, lr, weight_decay):
    import torch

    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    params = [p for p in model.parameters() if p.requires_grad]
    name = str(optimizer).lower()
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'adam', 'adamw', 'sgd' or a torch optimizer, got {optimizer!r}")


def _make_scheduler(opt, scheduler, steps, warmup):
    import torch

    if scheduler is None or scheduler == "constant":
        fn = lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0  # noqa: E731
    elif scheduler == "cosine":
        def fn(s):
            if warmup and s < warmup:
                return (s + 1) / warmup
            t = (s - warmup) / max(1, steps - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    else:
        raise ValueError(f"scheduler must be None, 'constant' or 'cosine', got {scheduler!r}")
    return torch.optim.lr_scheduler.LambdaLR(opt, fn)


def _collate(items):
    import torch

    xs, ys = zip(*items)
    xs = [torch.as_tensor(x) for x in xs]
    ys = [torch.as_tensor(y) for y in ys]
    return torch.stack(xs).float(), torch.stack(ys).float()


def _atomic_torch_save(obj, path: Path) -> None:
    import torch

    from .provenance import atomic_path

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(checkpoint_dir) -> dict | None:
    """The last checkpoint written by :func:`fit` in ``checkpoint_dir`` (``None`` if none).

    Temporary files left by a process killed while it wrote a checkpoint (``.last.tmp<pid>.pt``,
    see :func:`islteach.provenance.atomic_path`) are removed: they are never complete.
    """
    import torch

    path = Path(checkpoint_dir) / CHECKPOINT_NAME
    for stale in Path(checkpoint_dir).glob(f".{path.stem}.tmp*{path.suffix}"):
        stale.unlink(missing_ok=True)
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


def checkpoint_dir_for(name: str, profile: str | None = None) -> Path:
    """Where :func:`fit` keeps the checkpoints of run ``name``: ``results_dir(profile)/"checkpoints"/<name>``.

    With the chapter's Drive switch on (``setup_chapter(..., drive=True)`` on Colab, see
    :func:`islteach.provenance.use_drive`) the results folder, and so the checkpoints, are on
    Google Drive and survive a disconnected or recycled runtime.
    """
    from .provenance import results_dir

    out = results_dir(profile) / "checkpoints" / name
    out.mkdir(parents=True, exist_ok=True)
    return out


# --------------------------------------------------------------------------- fit and its parts
def _check_fit_args(train_set, loss_fn, **sizes) -> None:
    for name, v in sizes.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if not hasattr(train_set, "__len__") or not hasattr(train_set, "__getitem__"):
        raise TypeError("train_set must be a map-style torch Dataset (with __len__ and __getitem__)")
    if len(train_set) < 1:
        raise ValueError("train_set must not be empty")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")


#: What :func:`keep_freed_memory` did in this process: None (not asked yet), True or False.
_FREED_MEMORY_KEPT = None
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Ask glibc's allocator to keep freed memory for reuse instead of handing it back to the system.

    A training step on the CPU allocates and frees its activations and gradients, buffers of
    several MiB each. glibc serves blocks above its mmap threshold with fresh pages, which the
    kernel must map and zero again at every step, and it returns freed memory to the system
    above its trim threshold. Raising both thresholds (``mallopt``) lets every step reuse the
    previous step's memory. It changes no number the training computes, only where its memory
    comes from; the process keeps its peak memory until it ends. :func:`fit` calls it when it
    trains on the CPU. It acts once per process and only where the C library is glibc (Linux);
    elsewhere it does nothing.

    Measured with chapter 1's DAPI recipe on the book's 2-core CPU (60 steps, three runs each,
    ``benchmarks/bench_train.py`` has the same comparison): 0.547 s per step without it, 0.496
    s with it, identical validation PCC. Over the whole 1200-step training of chapter 1 the gain
    was smaller: 594 s without, 579 s with it (two book runs on the same machine).

    Returns
    -------
    bool
        Whether glibc accepted both settings (in this call or an earlier one).
    """
    global _FREED_MEMORY_KEPT
    if _FREED_MEMORY_KEPT is None:
        import ctypes
        import ctypes.util
        import platform

        kept = False
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                # 1 GiB (glibc < 2.35 refuses thresholds over 32 MiB: then take that)
                mmap_ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)
                               or libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20))
                trim_ok = bool(libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30))
                kept = mmap_ok and trim_ok
            except (OSError, AttributeError):
                pass
        _FREED_MEMORY_KEPT = kept
    return _FREED_MEMORY_KEPT


def _prepare(model, *, device, amp, optimizer, lr, weight_decay, scheduler, steps, warmup):
    """Device, optimiser, learning-rate schedule and AMP gradient scaler of a :func:`fit` run.

    Mixed precision and ``cudnn.benchmark`` are switched on for CUDA only, glibc keeps freed
    memory for the next step on the CPU (:func:`keep_freed_memory`); the model is
    moved to the device, in the ``channels_last`` memory format (1.3x faster training on
    this book's CPU, ``benchmarks/bench_train.py``; recommended for AMP on GPUs too), before
    the optimiser is built.

    Returns
    -------
    device : torch.device
    opt : torch.optim.Optimizer
    sched : torch.optim.lr_scheduler.LambdaLR
    scaler : torch.amp.GradScaler
        Enabled (``scaler.is_enabled()``) exactly when mixed precision is used.
    """
    import torch

    from .provenance import get_device

    device = get_device(device)
    on_cuda = device.type == "cuda"
    if on_cuda:
        torch.backends.cudnn.benchmark = True
    else:
        keep_freed_memory()
    model.to(device, memory_format=torch.channels_last)
    opt = _make_optimizer(model, optimizer, lr, weight_decay)
    sched = _make_scheduler(opt, scheduler, steps, warmup)
    scaler = torch.amp.GradScaler("cuda", enabled=bool(amp) and on_cuda)
    return device, opt, sched, scaler


def draw_batch(train_set, step: int, *, seed: int, batch_size: int, device):
    """The mini-batch of optimisation step ``step``: the same for a given ``(seed, step)``, resumed or not.

    The item indices come from a generator seeded with ``(seed, step)``; the global RNGs
    (Python, NumPy, torch) are reseeded from it too before the dataset draws its random
    crops and flips.

    Returns
    -------
    x, y : torch.Tensor
        Stacked float32 inputs and targets on ``device``.
    """
    import torch

    s = _step_seed(seed, step)
    g = torch.Generator().manual_seed(s)
    idx = torch.randint(len(train_set), (batch_size,), generator=g).tolist()
    _seed_all(s)
    draw = getattr(train_set, "draw", None)  # augmentations drawn from (seed, index, step), see PairDataset
    x, y = _collate([draw(i, step) if draw is not None else train_set[i] for i in idx])
    x = x.to(device, non_blocking=True)
    if x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device, non_blocking=True)


def train_step(model, batch, loss_fn, opt, scaler, grad_clip: float | None = None) -> float:
    """One optimisation step on ``batch = (x, y)``: forward, loss, backward, optimiser step.

    The forward pass runs under float16 autocast when ``scaler`` is enabled (CUDA); the
    loss is computed in float32.

    Returns
    -------
    float
        The loss of this step (before the update).

    Raises
    ------
    FloatingPointError
        When the loss is NaN or infinite.
    """
    import torch

    x, y = batch
    opt.zero_grad(set_to_none=True)
    with torch.autocast(device_type=x.device.type, dtype=torch.float16, enabled=scaler.is_enabled()):
        pred = model(x)
    loss = loss_fn(pred.float(), y)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss became {loss.item()}; lower lr?")
    scaler.scale(loss).backward()
    if grad_clip is not None:
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(opt)
    scaler.update()
    return float(loss.detach().item())


def _validate(model, val_fn):
    """``val_fn(model)`` in eval mode under ``torch.no_grad``, as a plain Python number (or dict)."""
    import torch

    was_training = model.training
    model.eval()
    with torch.no_grad():
        v = val_fn(model)
    if was_training:
        model.train()
    if isinstance(v, torch.Tensor):
        v = v.item()
    if isinstance(v, np.generic):
        v = v.item()
    return v


def save_checkpoint(checkpoint_dir, step: int, model, opt, sched, scaler, train_set, history: History,
                    **run) -> None:
    """Write ``checkpoint_dir/last.pt`` atomically: everything :func:`resume_from` needs to continue.

    Parameters
    ----------
    checkpoint_dir : path-like
    step : int
        Steps done.
    model, opt, sched, scaler
        As returned by :func:`_prepare`; their states are saved.
    train_set : Dataset
        Its ``state_dict()`` is saved when it has one.
    history : History
    **run
        ``steps``, ``seed``, ``batch_size`` of the run (checked when resuming).
    """
    _atomic_torch_save({
        "model": model.state_dict(), "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(), "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "rng": _rng_state(), "step": step, **run, "history": history.to_dict(),
        "dataset": train_set.state_dict() if hasattr(train_set, "state_dict") else None,
    }, Path(checkpoint_dir) / CHECKPOINT_NAME)


def restore_training_state(ck: dict, model, opt, sched, scaler) -> None:
    """Load a checkpoint's model, optimiser, scheduler, AMP scaler and RNG states (every loop resumes so)."""
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    sched.load_state_dict(ck["scheduler"])
    if scaler.is_enabled() and ck.get("scaler"):
        scaler.load_state_dict(ck["scaler"])
    _set_rng_state(ck["rng"])


def resume_from(checkpoint_dir, model, opt, sched, scaler, train_set, *, steps: int, seed: int,
                batch_size: int) -> tuple[History, int]:
    """Restore the last checkpoint in ``checkpoint_dir`` (model, optimiser, RNGs ...), if there is one.

    Returns
    -------
    history : History
        The history up to the checkpoint (empty when there is none).
    start : int
        The step of the checkpoint (0: start fresh).
    """
    ck = load_checkpoint(checkpoint_dir)
    if ck is None:
        return History(), 0
    ckpt_dir = Path(checkpoint_dir)
    restore_training_state(ck, model, opt, sched, scaler)
    if ck.get("dataset") is not None and hasattr(train_set, "load_state_dict"):
        train_set.load_state_dict(ck["dataset"])
    history = History.from_dict(ck["history"])
    start = int(ck["step"])
    history.resumed_from = start
    if ck.get("steps") != steps or ck.get("seed") != seed or ck.get("batch_size") != batch_size:
        print(f"Note: checkpoint in {shown_path(ckpt_dir)} was written with steps={ck.get('steps')}, "
              f"seed={ck.get('seed')}, batch_size={ck.get('batch_size')}; continuing with "
              f"steps={steps}, seed={seed}, batch_size={batch_size}.")
    print(f"Resuming from checkpoint {shown_path(ckpt_dir / CHECKPOINT_NAME)} at step {start}/{steps}.")
    return history, start


class _Progress:
    """A tqdm bar for :func:`fit` (a live widget in Colab, plain text elsewhere); a no-op when disabled."""

    def __init__(self, enabled: bool, start: int, steps: int):
        self.bar = None
        if enabled and start < steps:
            from .provenance import progress

            self.bar = progress(steps, "training", "step", initial=start)

    def update(self, loss: float, val=None) -> None:
        if self.bar is None:
            return
        postfix = {"loss": f"{loss:.4f}"}
        if val is not None:
            postfix["val"] = f"{val:.4f}" if isinstance(val, float) else str(val)
        self.bar.update(1)
        self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------- fit
def fit(
    model,
    train_set,
    loss_fn,
    *,
    steps: int,
    batch_size: int = 8,
    lr: float = 1e-3,
    optimizer="adam",
    weight_decay: float = 0.0,
    scheduler=None,
    warmup: int = 0,
    val_fn=None,
    val_every: int = 100,
    checkpoint_dir=None,
    checkpoint_every: int = 200,
    resume: bool = True,
    seed: int = 0,
    device=None,
    amp: bool = True,
    grad_clip: float | None = None,
    progress: bool = True,
    callback=None,
) -> History:
    """Train ``model`` on ``train_set`` for ``steps`` optimisation steps.

    Parameters
    ----------
    model : torch.nn.Module
    train_set : torch.utils.data.Dataset
        Items are ``(x, y)`` tensors or arrays of fixed shape; random crops and flips
        happen inside the dataset (they are reproducible because :func:`fit` reseeds
        the global RNGs before each step). A dataset with its own random state
        (e.g. per-item draw counters) should offer ``state_dict()`` and
        ``load_state_dict(d)``: that state then goes into the checkpoints too.
    loss_fn : callable
        ``loss_fn(prediction, target) -> scalar tensor``.
    steps : int
        Total number of optimisation steps (including steps done before a resume).
    batch_size : int
        Items per step, drawn at random with replacement (seeded per step).
    lr : float
        Learning rate.
    optimizer : {"adam", "adamw", "sgd"} or torch.optim.Optimizer
    weight_decay : float
    scheduler : {None, "constant", "cosine"}
        Learning-rate schedule over ``steps`` (after ``warmup`` linear warm-up steps).
    warmup : int
        Steps of linear learning-rate warm-up.
    val_fn : callable, optional
        ``val_fn(model) -> float or dict``, called in eval mode under ``torch.no_grad``
        every ``val_every`` steps and at the last step.
    val_every : int
    checkpoint_dir : path-like, optional
        Directory for ``last.pt``; see :func:`checkpoint_dir_for`. ``None``: no checkpoints.
    checkpoint_every : int
        Write a checkpoint every this many steps (and at the end).
    resume : bool
        Continue from ``checkpoint_dir/last.pt`` when it exists.
    seed : int
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.
    amp : bool
        Mixed precision (float16 autocast + gradient scaling); used on CUDA only.
    grad_clip : float, optional
        Clip the gradient norm to this value.
    progress : bool
        Show a tqdm progress bar.
    callback : callable, optional
        ``callback(step, loss)`` after every step (after any checkpoint of that step);
        an exception raised there stops training like a crash would.

    Returns
    -------
    History

    Examples
    --------
    >>> import torch
    >>> ds = torch.utils.data.TensorDataset(torch.randn(16, 1, 8, 8), torch.randn(16, 1, 8, 8))
    >>> net = torch.nn.Conv2d(1, 1, 3, padding=1)
    >>> h = fit(net, ds, torch.nn.functional.l1_loss, steps=5, batch_size=4, progress=False)
    >>> len(h.loss)
    5
    """
    _check_fit_args(train_set, loss_fn, steps=steps, batch_size=batch_size, val_every=val_every,
                    checkpoint_every=checkpoint_every)
    device, opt, sched, scaler = _prepare(model, device=device, amp=amp, optimizer=optimizer, lr=lr,
                                          weight_decay=weight_decay, scheduler=scheduler, steps=steps,
                                          warmup=warmup)
    run = {"steps": steps, "seed": seed, "batch_size": batch_size}
    history, start = History(), 0
    if checkpoint_dir is not None and resume:
        history, start = resume_from(checkpoint_dir, model, opt, sched, scaler, train_set, **run)
    bar = _Progress(progress, start, steps)
    t0 = time.perf_counter()
    model.train()
    step = start
    try:
        for step in range(start + 1, steps + 1):
            batch = draw_batch(train_set, step, seed=seed, batch_size=batch_size, device=device)
            loss = train_step(model, batch, loss_fn, opt, scaler, grad_clip)
            history.step.append(step)
            history.loss.append(loss)
            history.lr.append(float(opt.param_groups[0]["lr"]))
            sched.step()
            val = None
            if val_fn is not None and (step % val_every == 0 or step == steps):
                val = _validate(model, val_fn)
                history.val_step.append(step)
                history.val.append(val)
            if checkpoint_dir is not None and (step % checkpoint_every == 0 or step == steps):
                history.seconds += time.perf_counter() - t0
                t0 = time.perf_counter()
                save_checkpoint(checkpoint_dir, step, model, opt, sched, scaler, train_set, history, **run)
            bar.update(loss, val)
            if callback is not None:
                callback(step, loss)
    except KeyboardInterrupt:
        last = (step // checkpoint_every) * checkpoint_every if checkpoint_dir is not None else "none"
        print(f"Interrupted at step {step}; the last checkpoint is at step {last}.")
        raise
    finally:
        bar.close()
    history.seconds += time.perf_counter() - t0
    model.eval()
    return history


# --------------------------------------------------------------------------- prediction
def _blend_window(tile: int, overlap: int) -> np.ndarray:
    """2-D weight that ramps from ~0 to 1 over ``overlap`` pixels at each border."""
    w = np.ones(tile, dtype=np.float32)
    if overlap > 0:
        ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        ramp = 0.5 - 0.5 * np.cos(np.pi * ramp)
        w[:overlap] = ramp
        w[-overlap:] = ramp[::-1]
    return np.outer(w, w)


def _predict_tiles(model, image, tile, overlap, batch_size, device, use_amp):
    import torch

    from .data import tile_positions

    c, h, w = image.shape
    # pad to at least one tile and to a multiple of 32 (U-Net downsampling)
    ph, pw = max(tile, h), max(tile, w)
    pad_h, pad_w = ph - h, pw - w
    if pad_h or pad_w:
        mode = "reflect" if (pad_h < h and pad_w < w) else "edge"
        image = np.pad(image, ((0, 0), (0, pad_h), (0, pad_w)), mode=mode)
    coords = tile_positions((ph, pw), tile, overlap)  # the tiling of islteach.data.extract_tiles
    wnd = _blend_window(tile, overlap)
    out = None
    norm = np.zeros((ph, pw), dtype=np.float32)
    for i in range(0, len(coords), batch_size):
        chunk = coords[i:i + batch_size]
        batch = np.stack([image[:, y:y + tile, x:x + tile] for y, x in chunk])
        xb = torch.from_numpy(np.ascontiguousarray(batch)).float().to(device)
        with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.float16,
                                             enabled=use_amp):
            pred = model(xb)
        pred = pred.float().cpu().numpy()
        if out is None:
            out = np.zeros((pred.shape[1], ph, pw), dtype=np.float32)
        for (y, x), p in zip(chunk, pred):
            out[:, y:y + tile, x:x + tile] += p * wnd
            norm[y:y + tile, x:x + tile] += wnd
    out /= np.maximum(norm, 1e-8)
    return out[:, :h, :w]


def predict_tiled(model, image, tile: int = 256, overlap: int = 32, batch_size: int = 4,
                  device=None, amp: bool = True, tta: bool = False) -> np.ndarray:
    """Predict a whole field with overlapping tiles blended by a smooth window.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(B, C, tile, tile)`` to ``(B, K, tile, tile)``.
    image : ndarray, shape (C, H, W)
        Already normalised as the model expects. Any ``H, W``: the field is padded
        (reflection) where it is smaller than a tile.
    tile : int
        Tile side in pixels, a multiple of 32 (U-Net downsampling).
    overlap : int
        Pixels shared by neighbouring tiles; their predictions are blended with a
        raised-cosine ramp, which hides tile seams.
    batch_size : int
        Tiles per forward pass.
    device : optional
        Default: CUDA when available, else CPU.
    amp : bool
        float16 autocast on CUDA.
    tta : bool
        Test-time augmentation: predict the field in its eight orientations (four 90-degree
        rotations, each also mirrored), turn each prediction back and return their mean.
        Only for outputs that do not change under a rotation of the image (a stain, a
        mask, a distance map), not for vector fields such as flows. It costs eight predictions.

    Returns
    -------
    ndarray, shape (K, H, W), float32

    Notes
    -----
    On a CUDA out-of-memory error the tile side and batch are halved (down to 64
    pixels, one tile) and the prediction is retried, with a printed message.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Conv2d(2, 1, 1)
    >>> predict_tiled(net, np.zeros((2, 100, 150), np.float32), tile=64, overlap=16).shape
    (1, 100, 150)
    """
    import torch

    from .provenance import get_device

    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"image must have shape (C, H, W), got shape {image.shape}")
    if not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
        raise TypeError(f"image must be real-valued numeric, got {image.dtype}")
    if image.size == 0:
        raise ValueError(f"image must not be empty, got shape {image.shape}")
    if not np.all(np.isfinite(image)):
        raise ValueError("image contains NaN or inf values; clean or normalise it first")
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 32 or tile % 32:
        raise ValueError(f"tile must be a positive multiple of 32, got {tile!r}")
    if not isinstance(overlap, (int, np.integer)) or not 0 <= overlap < tile // 2 + 1:
        raise ValueError(f"overlap must be an integer in [0, tile/2], got {overlap!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(tta, (bool, np.bool_)):
        raise TypeError(f"tta must be True or False, got {tta!r}")
    if tta:
        total = None
        for k in range(4):
            for mirror in (False, True):
                view = np.rot90(image, k, axes=(1, 2))
                view = view[:, :, ::-1] if mirror else view
                p = predict_tiled(model, np.ascontiguousarray(view), tile=tile, overlap=overlap,
                                  batch_size=batch_size, device=device, amp=amp)
                p = np.rot90(p[:, :, ::-1] if mirror else p, -k, axes=(1, 2)).astype(np.float64)
                total = p if total is None else total + p
        return (total / 8.0).astype(np.float32)
    if device is None:  # the model's own GPU, else provenance.get_device's choice
        params = list(model.parameters())
        device = params[0].device if params and params[0].device.type != "cpu" else None
    device = get_device(device)
    model.to(device)
    was_training = model.training
    model.eval()
    image = image.astype(np.float32, copy=False)
    try:
        while True:
            try:
                return _predict_tiles(model, image, int(tile), int(overlap), int(batch_size), device,
                                      bool(amp) and device.type == "cuda")
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                if tile <= 64 and batch_size == 1:
                    raise
                if batch_size > 1:
                    batch_size = max(1, batch_size // 2)
                else:
                    tile = max(64, (tile // 2) // 32 * 32)
                    overlap = min(overlap, tile // 4)
                print(f"CUDA out of memory: retrying with tile={tile}, overlap={overlap}, "
                      f"batch_size={batch_size}.")
    finally:
        if was_training:
            model.train()


# --------------------------------------------------------------------------- image-to-image recipe
def _image_list(a, name: str, ndims: tuple, what: str) -> list:
    if isinstance(a, np.ndarray) and a.ndim in ndims:
        return [a]
    a = list(a) if isinstance(a, (list, tuple)) else None
    if not a or not all(isinstance(v, np.ndarray) and v.ndim in ndims for v in a):
        raise ValueError(f"{name} must be a {what} array or a non-empty list of them")
    return a


def train_image_to_image(x, y, *, allowed=None, encoder_name: str, encoder_weights=None, steps: int,
                         crop_size: int, batch_size: int, lr: float, n_crops: int, val=None,
                         val_every: int = 50, warmup: int = 20, seed: int = 0, checkpoint_dir=None,
                         checkpoint_every: int = 100, progress: bool = True, device=None):
    """The book's image-to-image recipe (virtual staining, In Silico Labeling pretexts).

    A U-Net (:func:`islteach.models.unet`, one output channel) trained with the L1 loss
    and Adam, with a linear warm-up and a cosine learning-rate decay, on random crops
    with random flips and 90-degree rotations (:class:`islteach.data.PairDataset`),
    through :func:`fit`. The initial weights are drawn after ``torch.manual_seed(seed)``,
    so they depend on ``seed`` only, not on what ran before.

    Parameters
    ----------
    x : (C, H, W) array or list of them
        Normalised label-free inputs, one entry per image.
    y : (1, H, W) or (H, W) array, or list of them
        Normalised targets (e.g. a fluorescence channel), aligned with ``x``.
    allowed : (H, W) bool array or list of them, optional
        Where training crops may lie (entirely); default everywhere.
    encoder_name, encoder_weights : str
        Passed to :func:`islteach.models.unet`.
    steps : int
        Optimisation steps.
    crop_size : int
        Side of the training crops.
    batch_size : int
        Crops per step.
    lr : float
        Peak learning rate.
    n_crops : int
        Distinct crop positions drawn per image.
    val : (x_val, y_val) arrays, optional
        A validation block ``(C, h, w)``, ``(1, h, w)``; its Pearson correlation is
        recorded every ``val_every`` steps (``history.val``).
    val_every : int
    warmup : int
        Warm-up steps, capped at ``steps // 10``.
    seed : int
        Seeds the initial weights, the crop positions, the flips and the batches.
    checkpoint_dir : path-like, optional
        See :func:`fit` (resume after an interruption).
    checkpoint_every : int
    progress : bool
    device : optional
        See :func:`islteach.provenance.get_device`.

    Returns
    -------
    model : torch.nn.Module
        ``model.islteach_init`` says how its encoder started.
    history : History
    """
    import torch

    from .data import PairDataset
    from .metrics import pcc
    from .models import unet

    xs, ys = _image_list(x, "x", (3,), "(C, H, W)"), _image_list(y, "y", (2, 3), "(1, H, W) or (H, W)")
    if len(xs) != len(ys):
        raise ValueError(f"x and y must hold as many images, got {len(xs)} and {len(ys)}")
    torch.manual_seed(int(seed))  # the initial weights depend on ``seed`` only, not on earlier work
    model = unet(encoder_name, encoder_weights=encoder_weights, in_channels=int(xs[0].shape[0]), classes=1)
    ds = PairDataset(xs, ys, crop_size=int(crop_size), n_crops=int(n_crops), seed=int(seed), allowed=allowed,
                     flips=True)
    val_fn = None
    if val is not None:
        if len(val) != 2:
            raise ValueError(f"val must be a pair (x_val, y_val), got {len(val)} items")
        xv = torch.from_numpy(np.ascontiguousarray(val[0], np.float32))[None]
        yv = np.squeeze(val[1])

        def val_fn(m):
            dev = next(m.parameters()).device
            return pcc(m(xv.to(dev)).float().cpu().numpy()[0, 0], yv)

    history = fit(model, ds, torch.nn.functional.l1_loss, steps=int(steps), batch_size=int(batch_size),
                  lr=float(lr), optimizer="adam", scheduler="cosine", warmup=min(int(warmup), int(steps) // 10),
                  val_fn=val_fn, val_every=int(val_every), checkpoint_dir=checkpoint_dir,
                  checkpoint_every=int(checkpoint_every), seed=int(seed), device=device, progress=progress)
    return model, history


def release_memory(verbose: bool = True) -> dict:
    """Free memory between a chapter's sections: Python garbage, then PyTorch's CUDA cache.

    Call it after ``del model`` (or when a section's large arrays are no longer needed),
    so a long Colab session does not run out of GPU memory in a later section. On a CPU
    it only collects garbage.

    Returns
    -------
    dict
        ``{"device": ..., "allocated_mb": ..., "reserved_mb": ...}`` after the release
        (zeros on CPU).
    """
    import gc

    import torch

    gc.collect()
    info = {"device": "cpu", "allocated_mb": 0.0, "reserved_mb": 0.0}
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        info = {
            "device": "cuda",
            "allocated_mb": round(torch.cuda.memory_allocated() / 2**20, 1),
            "reserved_mb": round(torch.cuda.memory_reserved() / 2**20, 1),
        }
        if verbose:
            print(f"GPU memory after release: {info['allocated_mb']} MB allocated, "
                  f"{info['reserved_mb']} MB reserved")
    return info
