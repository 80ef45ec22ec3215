"""Print how long each page took to execute in the last book build (read from Sphinx's environment).

Usage: python scripts/exec_times.py [_build]
"""
import pickle
import sys
from pathlib import Path


def main(argv=None) -> int:
    build = Path((argv or sys.argv[1:] or ["_build"])[0])
    env_file = build / ".doctrees" / "environment.pickle"
    if not env_file.exists():
        print(f"no build environment at {env_file}")
        return 1
    from myst_nb.sphinx_ import NbMetadataCollector

    with open(env_file, "rb") as f:
        env = pickle.load(f)
    total = 0.0
    print("page execution times (this build):")
    for doc in sorted(env.all_docs):
        data = NbMetadataCollector.get_exec_data(env, doc)
        if not data:
            continue
        rt = data.get("runtime") or 0.0
        total += rt
        ok = "ok" if data.get("succeeded") else "FAILED"
        print(f"  {doc:40s} {rt:8.1f} s  {ok}")
    print(f"  {'total':40s} {total:8.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
