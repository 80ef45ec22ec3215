"""Compare the results files of two builds: same values at the same paths, and numbers that moved to new keys.

Usage: python scripts/compare_results.py OLD_DIR NEW_DIR   (e.g. ../ci-base/results/quick results/quick)

Timings, paths and the provenance panel are left out. A pure refactor must print "0 differ" and
"0 numbers lost" for every chapter (renamed keys show as "found under new keys").
"""
import json, re, sys
from pathlib import Path

TIMING = re.compile(r"(second|time|_s$|elapsed|provenance|model_files|path|/tmp|wall)", re.I)

def flat(x, p=""):
    if isinstance(x, dict):
        for k, v in x.items():
            yield from flat(v, f"{p}/{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from flat(v, f"{p}[{i}]")
    else:
        yield p, x

def norm(v):
    if isinstance(v, float):
        return round(v, 9)
    return v

a_dir, b_dir = Path(sys.argv[1]), Path(sys.argv[2])
for fa in sorted(a_dir.glob("*.json")):
    fb = b_dir / fa.name
    A = {k: v for k, v in flat(json.load(open(fa))) if not TIMING.search(k)}
    B = {k: v for k, v in flat(json.load(open(fb))) if not TIMING.search(k)} if fb.exists() else {}
    same = sum(1 for k in A if k in B and norm(A[k]) == norm(B[k]))
    diff = [k for k in A if k in B and norm(A[k]) != norm(B[k])]
    gone = [k for k in A if k not in B]
    new = [k for k in B if k not in A]
    # numbers of removed keys found among the new keys' numbers
    newvals = {}
    for k in new:
        if isinstance(B[k], (int, float)) and not isinstance(B[k], bool):
            newvals.setdefault(norm(B[k]), []).append(k)
    moved = [k for k in gone if isinstance(A[k], (int, float)) and not isinstance(A[k], bool) and norm(A[k]) in newvals]
    lost = [k for k in gone if k not in moved and isinstance(A[k], (int, float)) and not isinstance(A[k], bool)]
    print(f"{fa.name}: {same} identical, {len(diff)} differ, {len(gone)} keys gone ({len(moved)} of them numbers found under new keys), {len(new)} new keys, {len(lost)} numbers lost")
    for k in diff[:12]:
        print(f"   differ {k}: {A[k]!r} -> {B[k]!r}")
    for k in lost[:8]:
        print(f"   lost   {k}: {A[k]!r}")
