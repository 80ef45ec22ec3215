"""How long a chapter will take: FLOPs of its trainings and predictions, divided by a device's measured rate.

Guessing run times ("a few minutes") is how a course plan breaks. This module counts the
floating-point operations of the networks a chapter trains, on PyTorch's ``meta`` device (no
memory, no compute: a DenseNet-121 U-Net is counted in about two seconds) with
:class:`torch.utils.flop_counter.FlopCounterMode`, multiplies by batch size and steps, and divides
by an *effective* rate per device class (:data:`DEVICE_CLASSES`): the FLOP/s that such a device
reaches on these U-Nets in practice, far below its datasheet peak.

A chapter lists its work as :class:`Work` items (:func:`training`, :func:`prediction`, or a fixed
number of seconds for what is not a network, e.g. reading data) and prints :func:`report`.

Examples
--------
>>> w = training("U-Net", "unet", encoder_name="resnet18", in_channels=3, classes=1,
...              crop_size=128, batch_size=8, steps=220)
>>> round(w.flops / 1e12, 1)  # fwd + bwd of 8 crops of 128 px, 220 times
14.1
>>> seconds(w, "cpu") > seconds(w, "t4")
True
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

#: Effective training throughput (FLOP/s) per device class, and where the figure comes from.
#: ``cpu``: this project's CI machine (2 cores, AVX2), measured: chapter 1's quick training
#: (ResNet-18 U-Net, 220 steps of 8 crops of 128 px, 14.1 TFLOP) took 192 s in the build of
#: 3635bee, 73 GFLOP/s. ``t4``: Colab's T4 with mixed precision; not yet measured by this project
#: (no T4 here): 4.5 TFLOP/s, the middle of the 3-6 TFLOP/s that U-Net trainings reach on it
#: (its fp16 tensor peak is 65 TFLOP/s). ``h200``: a lent H200, likewise an assumption until
#: ``scripts/gpu_report.py`` measures it.
DEVICE_CLASSES = {
    "cpu": {"flops_per_s": 73e9, "label": "this CPU (2 cores)", "source": "measured (chapter 1, quick)"},
    "t4": {"flops_per_s": 4.5e12, "label": "Colab T4 (AMP)", "source": "assumed, 3-6 TFLOP/s"},
    "h200": {"flops_per_s": 60e12, "label": "H200 (AMP)", "source": "assumed"},
}


@dataclass(frozen=True)
class Work:
    """One piece of a chapter's work: ``flops`` to compute, or ``fixed_s`` seconds on any device."""

    name: str
    flops: float = 0.0
    fixed_s: float = 0.0


def device_class_of(device_name: str) -> str:
    """The device class of a GPU name (``"Tesla T4"`` -> ``"t4"``), ``"cpu"`` for anything else."""
    n = str(device_name).lower()
    for key in ("t4", "h200"):
        if key in n:
            return key
    return "cpu"


def _build(kind: str, **kw):
    """A network of ``kind`` with random weights (built on the meta device by the caller)."""
    if kind == "unet":
        import segmentation_models_pytorch as smp

        return smp.Unet(kw["encoder_name"], encoder_weights=None, in_channels=kw["in_channels"],
                        classes=kw["classes"], **({"encoder_depth": kw["encoder_depth"],
                                                   "decoder_channels": kw["decoder_channels"]}
                                                  if kw.get("decoder_channels") else {}))
    if kind == "fpn":
        import segmentation_models_pytorch as smp

        extra = {}
        if kw.get("fpn_channels"):
            extra = {"decoder_pyramid_channels": kw["fpn_channels"][0],
                     "decoder_segmentation_channels": kw["fpn_channels"][1]}
        return smp.FPN(kw["encoder_name"], encoder_weights=None, in_channels=kw["in_channels"],
                       classes=kw["classes"], **extra)
    if kind == "cellpose":
        from cellpose.resnet_torch import CPnet

        return CPnet(nbase=[kw["in_channels"], 32, 64, 128, 256], nout=3, sz=3)
    if callable(kind):  # a chapter's own builder (e.g. chapter 5's shape-prior model)
        return kind()
    raise ValueError(f"kind must be 'unet', 'fpn', 'cellpose' or a callable returning a model, got {kind!r}")


@functools.lru_cache(maxsize=64)
def _flops_per_sample(kind, side: int, backward: bool, frozen_kw: tuple) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    kw = dict(frozen_kw)
    with torch.device("meta"):
        model = _build(kind, **kw)
        x = torch.zeros(1, kw.get("in_channels", 1), side, side)
    counter = FlopCounterMode(display=False)
    with counter:
        out = model(x)
        if backward:
            out = out[0] if isinstance(out, (tuple, list)) else out
            if isinstance(out, dict):
                out = next(iter(out.values()))
            out.float().sum().backward()
    return float(counter.get_total_flops())


def _freeze(kw: dict) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in kw.items()))


def training(name: str, kind, *, crop_size: int, batch_size: int, steps: int, **model_kw) -> Work:
    """The FLOPs of ``steps`` optimisation steps (forward + backward) on ``batch_size`` crops of ``crop_size``.

    ``kind``: ``"unet"``, ``"fpn"`` (segmentation-models-pytorch, built from ``model_kw``),
    ``"cellpose"`` (Cellpose 3's network), or a callable returning the model (called on the
    meta device; pass ``in_channels`` in ``model_kw`` for the input).
    """
    for arg, v in (("crop_size", crop_size), ("batch_size", batch_size), ("steps", steps)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{arg} must be a non-negative integer, got {v!r}")
    per = _flops_per_sample(kind, int(crop_size), True, _freeze(model_kw))
    return Work(name, flops=per * batch_size * steps)


def prediction(name: str, kind: str, *, side: int, n: int, **model_kw) -> Work:
    """The FLOPs of ``n`` forward passes on ``side x side`` inputs (tiles or images)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    return Work(name, flops=_flops_per_sample(kind, int(side), False, _freeze(model_kw)) * n)


def seconds(work, device_class: str) -> float:
    """Expected seconds of one :class:`Work` (or a list of them) on ``device_class``."""
    if device_class not in DEVICE_CLASSES:
        raise ValueError(f"device_class must be one of {sorted(DEVICE_CLASSES)}, got {device_class!r}")
    items = work if isinstance(work, (list, tuple)) else [work]
    rate = DEVICE_CLASSES[device_class]["flops_per_s"]
    return float(sum(w.flops / rate + w.fixed_s for w in items))


def report(works, device_classes=("t4", "cpu"), title: str = "Expected time") -> str:
    """A short table: each piece of work and the total, in minutes per device class."""
    head = f"{title} (cost model: FLOPs / effective rate; " + "; ".join(
        f"{DEVICE_CLASSES[d]['label']}: {DEVICE_CLASSES[d]['flops_per_s'] / 1e12:g} TFLOP/s, "
        f"{DEVICE_CLASSES[d]['source']}" for d in device_classes) + ")"
    width = max([len(w.name) for w in works] + [5])
    lines = [head, f"  {'':{width}s} " + " ".join(f"{d:>8s}" for d in device_classes) + "   (minutes)"]
    for w in works:
        lines.append(f"  {w.name:{width}s} " + " ".join(f"{seconds(w, d) / 60:8.1f}" for d in device_classes))
    lines.append(f"  {'total':{width}s} " + " ".join(f"{seconds(list(works), d) / 60:8.1f}" for d in device_classes))
    return "\n".join(lines)
