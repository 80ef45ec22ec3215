#!/usr/bin/env python
"""Post-processing of many images: the plain loop against islteach.postprocess.map_images (threads).

On BBBC039 test images: Bonte et al.'s h-maxima watershed and FPN2-WS's seeded watershed on
maps made from the true labels (the distance map plus noise, the mask), and the classical
pipeline on the images themselves. For each step the script times the plain loop and
``map_images`` with every core in the same run, prints the ratio, and checks that the labels
are identical.

Usage::

    ISLTEACH_DATA_DIR=../shared/data python benchmarks/bench_postprocess.py [--n 16] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from islteach import data, distance_maps, groundtruth
from islteach.postprocess import map_images


def _best(fn, rounds):
    best, out = float("inf"), None
    for _ in range(rounds):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16, help="test images")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per setting; the best is reported")
    args = ap.parse_args()
    x_test, y_test = data.load_bbbc039("test")
    xs = [data.normalize_percentile(x) for x in x_test[:args.n]]
    rng = np.random.default_rng(0)
    maps = []
    for y in y_test[:args.n]:
        d = distance_maps.bonte_targets(y)[0].astype(np.float32)
        maps.append(np.stack([d + rng.normal(0, 0.3, d.shape).astype(np.float32),
                              np.where(y > 0, 2.0, -2.0).astype(np.float32)]))
    steps = {"Bonte h-maxima watershed (h=1)": (lambda m: distance_maps.bonte_instances(m, 1.0, min_size=16), maps),
             "FPN2-WS seeded watershed": (lambda m: distance_maps.to_instances(
                 np.clip(m, 0, 1), "fpn2ws", (0.6, 0.1), min_size=16), maps),
             "classical pipeline (Otsu + watershed)": (groundtruth.classical_labels, xs)}
    print(f"{len(xs)} BBBC039 test images, {os.cpu_count()} cores, best of {args.rounds} rounds")
    print(f"{'step':40s} {'loop s/img':>10s} {'threads s/img':>13s} {'ratio':>6s}  identical")
    for name, (fn, items) in steps.items():
        t_loop, a = _best(lambda: [fn(i) for i in items], args.rounds)
        t_thr, b = _best(lambda: map_images(fn, items), args.rounds)
        same = all(np.array_equal(u, v) for u, v in zip(a, b))
        print(f"{name:40s} {t_loop / len(items):10.3f} {t_thr / len(items):13.3f} {t_loop / t_thr:6.2f}  {same}")


if __name__ == "__main__":
    main()
