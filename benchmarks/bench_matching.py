#!/usr/bin/env python
"""Benchmark islteach.metrics.matching against cellpose.metrics.average_precision.

Over all 200 BBBC039 ground-truth label images, each compared with a realistically perturbed
copy (``tests/fixtures.py``'s ``perturb_labels``: eroded, dilated, shifted, merged, split, dropped
and spurious objects), at the ten IoU thresholds 0.50:0.05:0.95. Both functions run on the
same pairs in the same process, interleaved image by image, several rounds; the best round of
each is reported (the machine may be shared: the best round is the least disturbed one), as
wall time and as CPU time of this process. The script first checks that tp, fp, fn and ap are
identical at every threshold, and also counts the pairs whose IoU is exactly 0.6 (the
``np.arange`` threshold pitfall).

Usage::

    ISLTEACH_DATA_DIR=../shared/data python benchmarks/bench_matching.py [--rounds 5] [--n 200]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.fixtures


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="timing rounds (best is reported)")
    ap.add_argument("--n", type=int, default=200, help="number of BBBC039 images (max 200)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the perturbations")
    args = ap.parse_args(argv)

    from cellpose.metrics import average_precision

    from islteach.data import load_bbbc039
    from islteach.metrics import THRESHOLDS, _pairs_iou, matching
    from tests.fixtures import perturb_labels

    t0 = time.perf_counter()
    _, labels = load_bbbc039("all")
    gts = [np.ascontiguousarray(y) for y in labels[: args.n]]
    preds = [perturb_labels(y, seed=args.seed + i) for i, y in enumerate(gts)]
    ths = list(THRESHOLDS)
    n_obj = sum(int(y.max()) for y in gts)
    print(f"{len(gts)} BBBC039 label pairs ({n_obj} true objects, {sum(int(p.max()) for p in preds)} predicted), "
          f"{len(ths)} thresholds; data + perturbations in {time.perf_counter() - t0:.1f} s")

    # identical numbers first (also warms up numba's JIT of Cellpose's overlap loop)
    arange = np.arange(0.5, 1, 0.05)  # 0.6000000000000001, 0.6500000000000001, ...
    exact06 = lost = 0
    for y, p in zip(gts, preds):
        m = matching(y, p, ths)
        cap, ctp, cfp, cfn = average_precision(y, p, threshold=ths)
        if not (np.array_equal(m.tp, ctp) and np.array_equal(m.fp, cfp) and np.array_equal(m.fn, cfn)
                and np.allclose(m.ap, cap, rtol=0, atol=1e-6)):
            raise SystemExit(f"MISMATCH with Cellpose: tp {m.tp} vs {ctp}")
        exact06 += int(np.count_nonzero(_pairs_iou(y, p)[2] == 0.6))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lost += int((m.tp - matching(y, p, arange).tp).sum())
    print(f"identical tp, fp, fn, ap at all {len(ths)} thresholds on all {len(gts)} pairs")
    print(f"np.arange(0.5, 1, 0.05) instead of exact decimals loses {lost} true positives over the 10 thresholds "
          f"({exact06} pairs have IoU exactly 0.6)")

    ours_w, cp_w, ours_c, cp_c = [], [], [], []
    for _ in range(args.rounds):
        ow = cw = oc = cc = 0.0
        for y, p in zip(gts, preds):
            w, c = time.perf_counter(), time.process_time()
            matching(y, p, ths)
            ow += time.perf_counter() - w
            oc += time.process_time() - c
            w, c = time.perf_counter(), time.process_time()
            average_precision(y, p, threshold=ths)
            cw += time.perf_counter() - w
            cc += time.process_time() - c
        ours_w.append(ow), cp_w.append(cw), ours_c.append(oc), cp_c.append(cc)
    n = len(gts)
    ow, cw, oc, cc = min(ours_w), min(cp_w), min(ours_c), min(cp_c)
    print(f"islteach.metrics.matching            : {ow:.3f} s wall ({1e3 * ow / n:.2f} ms/image), {oc:.3f} s CPU")
    print(f"cellpose.metrics.average_precision   : {cw:.3f} s wall ({1e3 * cw / n:.2f} ms/image), {cc:.3f} s CPU")
    print(f"ratio (Cellpose / ours)              : {cw / ow:.2f}x wall, {cc / max(oc, 1e-9):.2f}x CPU "
          f"[best of {args.rounds} rounds; {os.cpu_count()} CPUs visible, "
          f"load average {os.getloadavg()[0]:.1f}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}]")
    print(f"ratio (ours / Cellpose time)         : {ow / cw:.2f} wall, {oc / max(cc, 1e-9):.2f} CPU")


if __name__ == "__main__":
    main()
