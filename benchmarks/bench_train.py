"""CPU (or GPU) training throughput of the U-Net used in chapters 1, 3 and 4, by setting.

Usage: python benchmarks/bench_train.py [--encoder resnet18] [--batch 8] [--steps 8] [--compile]

Trains a randomly initialised smp U-Net on random tensors with :func:`islteach.train.train_step`
(forward, L1 loss, backward, Adam step: no data loading), once per setting, and prints a
table of steps/s and images/s with each setting's speed relative to the first row
(measured in the same run, so the ratios compare like with like). Settings varied:

* torch thread count (1 or all cores),
* ``channels_last`` memory format for the model and the batch,
* decoder width (smp's default ``(256, 128, 64, 32, 16)`` or half of it),
* crop size (96, 128, 192),
* ``torch.compile`` (with ``--compile``; its compile time is reported separately),
* glibc keeping freed memory for the next step (:func:`islteach.train.keep_freed_memory`,
  which ``fit`` calls on the CPU): ``channels_last`` measured in two fresh processes, one with
  glibc's defaults and one with the setting (it cannot be undone inside a process).

On CUDA the forward pass runs under float16 autocast as in ``fit``. This CPU has AVX2
only, so reduced precision is no win there and is not measured. The script prints and
never asserts.
"""
import argparse
import os
import time

import torch

from islteach.provenance import get_device
from islteach.train import keep_freed_memory, train_step

DEFAULT_DECODER = (256, 128, 64, 32, 16)
HALF_DECODER = (128, 64, 32, 16, 8)


def build(encoder, decoder_channels):
    import segmentation_models_pytorch as smp

    torch.manual_seed(0)
    return smp.Unet(encoder, encoder_weights=None, in_channels=3, classes=1,
                    decoder_channels=decoder_channels)


def measure(encoder, *, batch, crop, steps, threads, channels_last, decoder, compile_, device):
    torch.set_num_threads(threads)
    model = build(encoder, decoder).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, crop, crop, generator=g).to(device).contiguous(memory_format=fmt)
    y = torch.rand(batch, 1, crop, crop, generator=g).to(device)
    net = model
    t_compile = 0.0
    if compile_:
        net = torch.compile(model)
        t0 = time.perf_counter()
        train_step(net, (x, y), torch.nn.functional.l1_loss, opt, scaler)
        t_compile = time.perf_counter() - t0
    for _ in range(2):  # warm-up
        train_step(net, (x, y), torch.nn.functional.l1_loss, opt, scaler)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        train_step(net, (x, y), torch.nn.functional.l1_loss, opt, scaler)
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return steps / dt, t_compile


def _measure_fresh(kw, keep_freed):
    """``measure(**kw)`` in this (fresh, spawned) process, after ``keep_freed_memory()`` if asked."""
    if keep_freed:
        keep_freed_memory()
    return measure(**kw)


def measure_fresh(encoder, *, keep_freed, **kw):
    """:func:`measure` in a fresh process, with or without :func:`keep_freed_memory`."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(_measure_fresh, ({"encoder": encoder, **kw}, keep_freed))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder", default="resnet18")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--compile", action="store_true", help="also measure torch.compile (slow to compile)")
    args = ap.parse_args(argv)
    device = get_device()
    ncpu = os.cpu_count() or 1
    base = dict(batch=args.batch, crop=128, steps=args.steps, threads=ncpu, channels_last=False,
                decoder=DEFAULT_DECODER, compile_=False, device=device)
    rows = [("baseline: all threads, crop 128, default decoder", base)]
    if ncpu > 1:
        rows.append(("1 thread", {**base, "threads": 1}))
    rows += [
        ("channels_last", {**base, "channels_last": True}),
        ("half-width decoder", {**base, "decoder": HALF_DECODER}),
        ("half-width decoder + channels_last", {**base, "decoder": HALF_DECODER, "channels_last": True}),
        ("crop 96", {**base, "crop": 96}),
        ("crop 192", {**base, "crop": 192}),
    ]
    if args.compile:
        rows.append(("torch.compile", {**base, "compile_": True}))
    if device.type == "cpu":
        rows += [("channels_last, fresh process, glibc defaults", {**base, "channels_last": True, "fresh": False}),
                 ("channels_last, fresh process, keep_freed_memory", {**base, "channels_last": True, "fresh": True})]
    print(f"device {device}, cpus {ncpu}, torch {torch.__version__}, U-Net {args.encoder}, "
          f"batch {args.batch}, {args.steps} timed steps per row")
    print(f"{'setting':52s} {'steps/s':>8s} {'px/s (M)':>9s} {'vs baseline (px/s)':>19s}")
    ref = None
    for name, kw in rows:
        try:
            if "fresh" in kw:
                kw = dict(kw)
                sps, tc = measure_fresh(args.encoder, keep_freed=kw.pop("fresh"), **kw)
            else:
                sps, tc = measure(args.encoder, **kw)
        except Exception as e:  # e.g. torch.compile without a C compiler
            print(f"{name:52s} failed: {type(e).__name__}: {str(e).splitlines()[0][:80]}")
            continue
        pxs = sps * kw["batch"] * kw["crop"] ** 2 / 1e6
        ref = ref or pxs
        extra = f"  (compile {tc:.0f} s)" if kw["compile_"] else ""
        print(f"{name:52s} {sps:8.2f} {pxs:9.2f} {pxs / ref:18.2f}x{extra}")


if __name__ == "__main__":
    main()
