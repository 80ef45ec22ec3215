#!/usr/bin/env python
"""Benchmark islteach.synth.make_field: prints fields per second.

Usage::

    python benchmarks/bench_synth.py [--n 500] [--size 256] [--difficulty 0.0]
"""
from __future__ import annotations

import argparse
import os
import time

from islteach.synth import make_field


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="number of fields")
    ap.add_argument("--size", type=int, default=256, help="field side in pixels")
    ap.add_argument("--difficulty", type=float, default=0.0,
                    help="the synthetic microscope's difficulty in [0, 1] (islteach.synth.difficulty_settings)")
    args = ap.parse_args(argv)
    make_field(args.size, seed=0, difficulty=args.difficulty)  # warm-up (frequency grids, imports)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    for s in range(args.n):
        make_field(args.size, seed=s, difficulty=args.difficulty)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    print(f"make_field(size={args.size}, difficulty={args.difficulty:g}): {args.n} fields in {wall:.2f} s wall ({cpu:.2f} s CPU) "
          f"= {args.n / wall:.1f} fields/s wall, {args.n / max(cpu, 1e-9):.1f} fields/s per CPU-second "
          f"[{os.cpu_count()} CPUs visible, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}]")


if __name__ == "__main__":
    main()
