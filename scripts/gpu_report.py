#!/usr/bin/env python
"""Run chosen chapters in the colab profile on a GPU machine; report wall time and peak GPU memory per chapter.

Usage::

    ISLTEACH_PROFILE=colab python scripts/gpu_report.py book/01_virtual_staining.md [...] [--json out.json]

Each chapter runs in a fresh kernel (scripts/run_chapter.py). While it runs, ``nvidia-smi`` is
polled every second for the memory used on the GPU (the kernel is another process, so this is
the whole device's peak, which on a dedicated machine is the chapter's). The report prints, per
chapter, the measured minutes and peak GiB next to the cost model's expected minutes for this
device class (``islteach.cost``, when it has an estimate for the chapter), so the model can be
calibrated against a real run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _gpu_memory_mib() -> float | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout
        return max(float(v) for v in out.split())
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def _gpu_name() -> str:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "no GPU"


def run(chapter: str, env: dict) -> dict:
    peak = {"mib": 0.0}
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            m = _gpu_memory_mib()
            if m is not None:
                peak["mib"] = max(peak["mib"], m)
            stop.wait(1.0)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    t0 = time.perf_counter()
    rc = subprocess.call([sys.executable, str(ROOT / "scripts" / "run_chapter.py"), chapter], env=env)
    dt = time.perf_counter() - t0
    stop.set()
    t.join()
    return {"chapter": Path(chapter).stem, "ok": rc == 0, "minutes": round(dt / 60, 2),
            "peak_gpu_gib": round(peak["mib"] / 1024, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("chapters", nargs="+")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    env = {**os.environ, "ISLTEACH_PROFILE": os.environ.get("ISLTEACH_PROFILE", "colab")}
    gpu = _gpu_name()
    print(f"profile {env['ISLTEACH_PROFILE']} on {gpu}", flush=True)
    expected = {}
    try:
        sys.path.insert(0, str(ROOT))
        import islteach.shape_prior  # noqa: F401  (registers chapter 5's network with the cost model)
        from islteach import cost

        expected = cost.expected_minutes(env["ISLTEACH_PROFILE"], device_class=cost.device_class_of(gpu))
    except Exception as e:  # noqa: BLE001 - the report still runs without the cost model
        print(f"(no cost-model estimate: {type(e).__name__}: {e})")
    rows = []
    for ch in args.chapters:
        r = run(ch, env)
        r["expected_minutes"] = expected.get(r["chapter"])
        rows.append(r)
        print(f"{r['chapter']:28s} {'ok' if r['ok'] else 'FAILED':6s} {r['minutes']:7.2f} min measured, "
              f"expected {r['expected_minutes'] if r['expected_minutes'] is not None else '-'} min, "
              f"peak GPU memory {r['peak_gpu_gib']:.2f} GiB", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"gpu": gpu, "profile": env["ISLTEACH_PROFILE"], "chapters": rows}, indent=1))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
