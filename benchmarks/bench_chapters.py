"""Per-chapter execution time in a profile (default quick): runs each chapter in a fresh kernel.

Usage: ISLTEACH_PROFILE=quick python benchmarks/bench_chapters.py [book/0X_*.md ...]

Prints one line per chapter (wall time, ok/FAILED) and the total. It prints and never
asserts: the time targets are in the issues and the book's appendix shows the times of
the last build (``scripts/exec_times.py`` prints them from a build directory).
"""
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    chapters = (argv or sys.argv[1:]) or sorted(str(p) for p in (ROOT / "book").glob("0*.md"))
    env = {**os.environ, "ISLTEACH_PROFILE": os.environ.get("ISLTEACH_PROFILE", "quick")}
    print(f"profile {env['ISLTEACH_PROFILE']}, {os.cpu_count()} CPUs")
    total = 0.0
    for ch in chapters:
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(ROOT / "scripts" / "run_chapter.py"), ch], env=env,
                             stdout=subprocess.DEVNULL)
        dt = time.perf_counter() - t0
        total += dt
        print(f"{Path(ch).name:35s} {dt:7.1f} s  {'ok' if rc == 0 else 'FAILED'}", flush=True)
    print(f"{'total':35s} {total:7.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
