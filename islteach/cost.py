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

    def count(device: str) -> float:
        with torch.device(device):
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

    try:  # shapes only: no memory, no arithmetic
        return count("meta")
    except (RuntimeError, NotImplementedError, TypeError):  # a module that makes CPU tensors itself
        return count("cpu")


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


def show_report(works, device_classes=("t4", "cpu"), title: str = "Expected time") -> None:
    """:func:`report` as a table (:func:`islteach.viz.show_table`): each piece of work and the total, in minutes.

    The caption says how the minutes are estimated (FLOPs over each device class's effective rate).
    """
    from .viz import show_table

    works = list(works)
    rates = "; ".join(f"{DEVICE_CLASSES[d]['label']}: {DEVICE_CLASSES[d]['flops_per_s'] / 1e12:g} TFLOP/s, "
                      f"{DEVICE_CLASSES[d]['source']}" for d in device_classes)
    rows = [[w.name] + [seconds(w, d) / 60 for d in device_classes] for w in works]
    rows.append(["total"] + [seconds(works, d) / 60 for d in device_classes])
    show_table(rows, ["work"] + [f"{DEVICE_CLASSES[d]['label']} (min)" for d in device_classes],
               caption=f"{title} (cost model: FLOPs / effective rate; {rates})", floatfmt="{:.1f}")


# --------------------------------------------------------------------------------- chapter plans
#: Builders a chapter module registers for networks this shared module does not know (chapter 5
#: registers ``"shape_prior"`` when it is imported), so that no shared module imports a chapter.
BUILDERS: dict = {}


def _unet(encoder_name, in_channels, classes, **kw):
    return {"kind": "unet", "encoder_name": encoder_name, "in_channels": in_channels, "classes": classes, **kw}


def _finetunes(name, n_values, seeds, inits, ft, side, tests, unet_kw) -> list:
    """Fine-tunings of one learning curve: one training per (N, seed, init) and its evaluations."""
    points = len(n_values) * len(seeds) * inits
    per = training(name, crop_size=ft["crop_size"], batch_size=ft["batch_size"], steps=ft["steps"], **unet_kw)
    evals = prediction(name, side=side, n=tests * int(ft.get("n_last", 1)), **{**unet_kw, "kind": unet_kw["kind"]})
    return [Work(f"{name} ({points} fine-tunings)", flops=points * (per.flops + evals.flops))]


def difficulty_sweep_works(ch3, reused: int = 1) -> list:
    """The trainings of chapter 3's difficulty sweep (:func:`islteach.transfer.difficulty_sweep`) as :class:`Work`.

    Parameters
    ----------
    ch3 : profile section or dict
        Chapter 3's sizes (``P.ch3``): ``synth_difficulties``, ``seeds``, ``synth_pretext``,
        ``synth_finetune``, ``synth_size``, ``synth_bf_planes``, ``synth_phase``, ``synth_test_fields``.
    reused : int
        How many of the difficulties (the easiest ones) come from another track's cache (chapter
        3's track A is the easiest microscope), so cost nothing here.

    Examples
    --------
    >>> ch3 = {"synth_difficulties": [0.0, 0.5, 1.0], "seeds": [0, 1, 2], "synth_size": 128,
    ...        "synth_bf_planes": [0, 4], "synth_phase": True, "synth_test_fields": 8,
    ...        "synth_pretext": {"encoder_name": "resnet18", "steps": 300, "batch_size": 8, "crop_size": 64},
    ...        "synth_finetune": {"steps": 60, "batch_size": 4, "crop_size": 64, "n_last": 3}}
    >>> [w.name for w in difficulty_sweep_works(ch3)]
    ['difficulty sweep: 2 pretexts', 'difficulty sweep: 12 fine-tunings']
    """
    pretext, finetune = ch3["synth_pretext"], ch3["synth_finetune"]
    todo = max(0, len(list(ch3["synth_difficulties"])) - int(reused))
    unet_kw = {"encoder_name": pretext["encoder_name"],
               "in_channels": len(ch3["synth_bf_planes"]) + int(bool(ch3["synth_phase"])), "classes": 1}
    pre = training("", "unet", crop_size=int(pretext["crop_size"]), batch_size=int(pretext["batch_size"]),
                        steps=int(pretext["steps"]), **unet_kw)
    ft = training("", "unet", crop_size=int(finetune["crop_size"]), batch_size=int(finetune["batch_size"]),
                       steps=int(finetune["steps"]), **unet_kw)
    ev = prediction("", "unet", side=int(ch3["synth_size"]),
                         n=int(ch3["synth_test_fields"]) * int(finetune.get("n_last", 1)), **unet_kw)
    points = todo * len(list(ch3["seeds"])) * 2
    return [Work(f"difficulty sweep: {todo} pretexts", flops=todo * pre.flops),
            Work(f"difficulty sweep: {points} fine-tunings", flops=points * (ft.flops + ev.flops))]


def chapter_works(chapter: str, **sizes) -> list:
    """The trainings and predictions of one chapter with the sizes of its profile section, as :class:`Work`.

    ``sizes`` are the chapter's profile section as keyword arguments (``**P.ch1.as_dict()``);
    chapter 3 and 4 also take ``isl_encoder_name`` (chapter 1's encoder, which their ISL models
    use). Reading data, post-processing and Cellpose's flow following are not counted: the
    estimates are lower bounds dominated by the trainings.
    """
    s = sizes
    imagenet = s.get("encoder_weights") == "imagenet"
    if chapter == "ch1":
        enc = s["encoder_name"]
        dapi = _unet(enc, len(s["planes"]), 1)
        seph = _unet(enc, len(s["sephace_planes"]), 1)
        tiles = 2 * (1024 // s["tile"]) ** 2  # test quadrant, validation block and the full field
        return [training("ISL DAPI model", crop_size=s["crop_size"], batch_size=s["batch_size"], steps=s["steps"], **dapi),
                training("ISL MAP2 model", crop_size=s["crop_size"], batch_size=s["batch_size"],
                         steps=s["steps_map2"], **dapi),
                training("SEPhACE model", crop_size=s["crop_size"], batch_size=s["batch_size"],
                         steps=s["steps_sephace"], **seph),
                prediction("predictions", side=s["tile"], n=3 * tiles, **dapi)]
    if chapter == "ch2":
        steps = s["n_epochs"] * s["nimg_per_epoch"]  # images seen (Cellpose counts images, not batches)
        test = s["test_images"] or 50
        return [training("Cellpose from scratch", "cellpose", crop_size=s["crop_size"], batch_size=1, steps=steps,
                         in_channels=2),
                prediction("Cellpose on BBBC039 + ISL", "cellpose", side=512, n=2 * (test + s["train_images"]) + 8,
                           in_channels=2)]
    if chapter == "ch3":
        sp, ft_s, ft_i = s["synth_pretext"], s["synth_finetune"], s["isl_finetune"]
        n_in = len(s["synth_bf_planes"]) + int(s["synth_phase"])
        synth = _unet(sp["encoder_name"], n_in, 1)
        isl = _unet(s["isl_encoder_name"], 3, 1)
        pretexts = 1 + int(bool(s["synth_control"]))
        inits = 2 + int(sp["encoder_weights"] == "imagenet") + int(bool(s["synth_control"]))
        isl_inits = 2 + int(sp["encoder_weights"] == "imagenet")
        works = [Work("synthetic pretext(s)", flops=pretexts * training(
            "", crop_size=sp["crop_size"], batch_size=sp["batch_size"], steps=sp["steps"], **synth).flops)]
        works += _finetunes("synthetic track", s["synth_n_values"], s["seeds"], inits, ft_s, s["synth_size"],
                            s["synth_test_fields"], synth)
        works += _finetunes("ISL-field track", s["isl_n_values"], s["seeds"], isl_inits, ft_i, 256, 4, isl)
        if s["isl_control"] != "never":
            works += _finetunes("MAP2 control", s["control_n_values"], s["seeds"], 1, ft_i, 256, 4, isl)
        if s.get("synth_difficulties"):
            works += difficulty_sweep_works(s)
        return works
    if chapter == "ch4":
        bonte = _unet(s["encoder_name"], 1, 2, **({"encoder_depth": s["encoder_depth"],
                                                  "decoder_channels": s["decoder_channels"]}
                                                 if s.get("decoder_channels") else {}))
        fpn = {"kind": "fpn", "encoder_name": s["encoder_name"], "in_channels": 1, "classes": 1,
               "fpn_channels": s["fpn_channels"]}
        side = int(round(512 * s["scale"]))
        n_eval = s["test_images"] + s["val_images"] * (len(s["h_values"]) > 0)
        inits = 2 + int(imagenet)
        cells = _unet(s["encoder_name"], 5, 2)
        isl = _unet(s.get("isl_encoder_name", s["encoder_name"]), 3, 2)
        n_bonte = len(s.get("bonte_seeds") or [0])
        works = [Work(f"Bonte U-Net ({n_bonte} seed{'s' if n_bonte > 1 else ''})",
                      flops=n_bonte * training("", crop_size=s["crop_size"], batch_size=s["batch_size"],
                                               steps=s["bonte_steps"], **bonte).flops),
                 Work("FPN2-WS (two FPNs)", flops=2 * training("", crop_size=s["crop_size"], batch_size=s["batch_size"],
                                                              steps=s["fpn_steps"], **fpn).flops),
                 prediction("predictions (test + validation)", side=side, n=(1 + n_bonte) * n_eval, **bonte)]
        if s["transfer_n"]:  # the synthetic-cells experiment (an empty transfer_n skips it)
            works += [training("synthetic cells pretext", crop_size=s["crop_size"], batch_size=s["transfer_batch"],
                               steps=s["transfer_pretext_steps"], **cells),
                      Work(f"synthetic cells transfer ({len(s['transfer_n']) * len(s['transfer_seeds']) * inits} points)",
                           flops=len(s["transfer_n"]) * len(s["transfer_seeds"]) * inits * training(
                               "", crop_size=s["crop_size"], batch_size=s["transfer_batch"], steps=s["transfer_steps"],
                               **cells).flops)]
        return works + [Work(f"ISL-field transfer ({len(s['isl_n']) * len(s['isl_seeds']) * inits} points)",
                             flops=len(s["isl_n"]) * len(s["isl_seeds"]) * inits * training(
                                 "", crop_size=s["isl_crop"], batch_size=s["isl_batch"], steps=s["isl_steps"],
                                 **isl).flops)]
    if chapter == "ch5":
        if "shape_prior" not in BUILDERS:
            raise ValueError("chapter 5's network is not registered: import islteach.shape_prior first")
        sp = BUILDERS["shape_prior"]
        kw = dict(encoder_name=s["encoder_name"], encoder_weights=None, presence_prior=s["presence_prior"],
                  shape_init=s["shape_init"], verbose=False)
        model = (lambda: sp(**kw))
        ref = _unet(s["reference_encoder"], 1, 2, encoder_depth=4, decoder_channels=[128, 64, 32, 16])
        one = training("", model, crop_size=s["crop_size"], batch_size=s["batch_size"], steps=1, in_channels=1).flops
        n_seeds = len(s.get("seeds") or [0])
        return [Work(f"DSB models (2 settings x {n_seeds} seeds)", flops=2 * n_seeds * s["steps"] * one),
                Work(f"BBBC039 models ({n_seeds} seeds)", flops=n_seeds * s["bbbc039_steps"] * one),
                training("fully supervised reference", crop_size=s["crop_size"], batch_size=s["reference_batch_size"],
                         steps=s["reference_steps"], **ref)]
    raise ValueError(f"chapter must be one of 'ch1' ... 'ch5', got {chapter!r}")


def expected_minutes(profile: str, device_class: str = "t4") -> dict:
    """``{chapter stem: expected minutes}`` of every chapter in ``profile`` on ``device_class``.

    Import :mod:`islteach.shape_prior` first (it registers chapter 5's network in :data:`BUILDERS`).
    """
    from .notebooks import CHAPTERS
    from .profiles import get_profile

    p = get_profile(profile, smoke=False)
    out = {}
    for i, stem in enumerate(CHAPTERS, 1):
        sizes = getattr(p, f"ch{i}").as_dict()
        if i in (3, 4):
            sizes["isl_encoder_name"] = p.ch1.encoder_name
        out[stem] = round(seconds(chapter_works(f"ch{i}", **sizes), device_class) / 60, 1)
    return out
