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
  checkpoints on Google Drive when running in Colab with Drive mounted.

:func:`predict_tiled` predicts a whole field tile by tile with overlapping, smoothly
blended tiles, so that a 1024x1344 image never needs one forward pass; on a CUDA
out-of-memory error it retries with smaller tiles.
"""
from __future__ import annotations

import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["History", "fit", "predict_tiled", "checkpoint_dir_for", "load_checkpoint", "release_memory"]

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
    """The last checkpoint written by :func:`fit` in ``checkpoint_dir`` (``None`` if none)."""
    import torch

    path = Path(checkpoint_dir) / CHECKPOINT_NAME
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


def checkpoint_dir_for(name: str, use_drive: bool = True, profile: str | None = None) -> Path:
    """Where :func:`fit` should keep the checkpoints of run ``name``.

    In Google Colab with Google Drive mounted at ``/content/drive`` (or mountable:
    this asks for permission once) and ``use_drive``, checkpoints go to
    ``MyDrive/islteach/checkpoints/<profile>/<name>`` so that they survive a
    disconnected runtime. Otherwise ``results_dir(profile)/"checkpoints"/<name>``.
    """
    from .provenance import in_colab, results_dir

    if use_drive and in_colab():
        drive = Path("/content/drive")
        try:
            if not (drive / "MyDrive").exists():
                from google.colab import drive as gdrive  # type: ignore

                gdrive.mount(str(drive))
            if (drive / "MyDrive").exists():
                out = drive / "MyDrive" / "islteach" / "checkpoints" / results_dir(profile).name / name
                out.mkdir(parents=True, exist_ok=True)
                return out
        except Exception as e:  # pragma: no cover - Colab only
            print(f"Google Drive not available ({type(e).__name__}: {e}); checkpoints stay local.")
    out = results_dir(profile) / "checkpoints" / name
    out.mkdir(parents=True, exist_ok=True)
    return out


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
    import torch

    for name, v in (("steps", steps), ("batch_size", batch_size), ("val_every", val_every),
                    ("checkpoint_every", checkpoint_every)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if not hasattr(train_set, "__len__") or not hasattr(train_set, "__getitem__"):
        raise TypeError("train_set must be a map-style torch Dataset (with __len__ and __getitem__)")
    n = len(train_set)
    if n < 1:
        raise ValueError("train_set must not be empty")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")

    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    on_cuda = device.type == "cuda"
    use_amp = bool(amp) and on_cuda
    if on_cuda:
        torch.backends.cudnn.benchmark = True

    model.to(device)
    opt = _make_optimizer(model, optimizer, lr, weight_decay)
    sched = _make_scheduler(opt, scheduler, steps, warmup)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    history = History()
    start = 0
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckpt_dir is not None and resume:
        ck = load_checkpoint(ckpt_dir)
        if ck is not None:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            if use_amp and ck.get("scaler"):
                scaler.load_state_dict(ck["scaler"])
            _set_rng_state(ck["rng"])
            if ck.get("dataset") is not None and hasattr(train_set, "load_state_dict"):
                train_set.load_state_dict(ck["dataset"])
            history = History.from_dict(ck["history"])
            start = int(ck["step"])
            history.resumed_from = start
            if ck.get("steps") != steps or ck.get("seed") != seed or ck.get("batch_size") != batch_size:
                print(f"Note: checkpoint in {ckpt_dir} was written with steps={ck.get('steps')}, "
                      f"seed={ck.get('seed')}, batch_size={ck.get('batch_size')}; continuing with "
                      f"steps={steps}, seed={seed}, batch_size={batch_size}.")
            print(f"Resuming from checkpoint {ckpt_dir / CHECKPOINT_NAME} at step {start}/{steps}.")

    def save_ckpt(step):
        if ckpt_dir is None:
            return
        _atomic_torch_save({
            "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "scaler": scaler.state_dict() if use_amp else None,
            "rng": _rng_state(), "step": step, "steps": steps, "seed": seed,
            "batch_size": batch_size, "history": history.to_dict(),
            "dataset": train_set.state_dict() if hasattr(train_set, "state_dict") else None,
        }, ckpt_dir / CHECKPOINT_NAME)

    def run_val(step):
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
        history.val_step.append(step)
        history.val.append(v)
        return v

    bar = None
    if progress and start < steps:
        from .provenance import in_colab

        if in_colab():  # a live notebook widget; elsewhere plain text, which a built book can show
            from tqdm.auto import tqdm
        else:
            from tqdm import tqdm
        bar = tqdm(total=steps, initial=start, desc="training", unit="step", file=sys.stdout,
                   mininterval=1.0 if in_colab() else 10.0, ascii=not in_colab())
    t0 = time.perf_counter()
    model.train()
    step = start
    try:
        for step in range(start + 1, steps + 1):
            s = _step_seed(seed, step)
            g = torch.Generator().manual_seed(s)
            idx = torch.randint(n, (batch_size,), generator=g).tolist()
            _seed_all(s)
            x, y = _collate([train_set[i] for i in idx])
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                pred = model(x)
            loss = loss_fn(pred.float(), y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower lr?")
            scaler.scale(loss).backward()
            if grad_clip is not None:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(opt)
            scaler.update()
            history.lr.append(float(opt.param_groups[0]["lr"]))
            sched.step()
            lv = float(loss.detach().item())
            history.step.append(step)
            history.loss.append(lv)
            postfix = {"loss": f"{lv:.4f}"}
            if val_fn is not None and (step % val_every == 0 or step == steps):
                v = run_val(step)
                postfix["val"] = (f"{v:.4f}" if isinstance(v, float) else str(v))
            if ckpt_dir is not None and (step % checkpoint_every == 0 or step == steps):
                history.seconds += time.perf_counter() - t0
                t0 = time.perf_counter()
                save_ckpt(step)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(postfix, refresh=False)
            if callback is not None:
                callback(step, lv)
    except KeyboardInterrupt:
        print(f"Interrupted at step {step}; the last checkpoint is at step "
              f"{(step // checkpoint_every) * checkpoint_every if ckpt_dir else 'none'}.")
        raise
    finally:
        if bar is not None:
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


def _starts(size: int, tile: int, stride: int) -> list:
    if size <= tile:
        return [0]
    s = list(range(0, size - tile + 1, stride))
    if s[-1] != size - tile:
        s.append(size - tile)
    return s


def _predict_tiles(model, image, tile, overlap, batch_size, device, use_amp):
    import torch

    c, h, w = image.shape
    # pad to at least one tile and to a multiple of 32 (U-Net downsampling)
    ph, pw = max(tile, h), max(tile, w)
    pad_h, pad_w = ph - h, pw - w
    if pad_h or pad_w:
        mode = "reflect" if (pad_h < h and pad_w < w) else "edge"
        image = np.pad(image, ((0, 0), (0, pad_h), (0, pad_w)), mode=mode)
    stride = tile - overlap
    ys, xs = _starts(ph, tile, stride), _starts(pw, tile, stride)
    wnd = _blend_window(tile, overlap)
    out = None
    norm = np.zeros((ph, pw), dtype=np.float32)
    coords = [(y, x) for y in ys for x in xs]
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
                  device=None, amp: bool = True) -> np.ndarray:
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
    if device is None:
        try:
            device = next(model.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
        if device.type == "cpu" and torch.cuda.is_available():
            device = torch.device("cuda")
    device = torch.device(device)
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
