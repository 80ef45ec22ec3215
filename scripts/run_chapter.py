"""Execute one or more chapters (MyST markdown notebooks) outside the book build and time them.

Usage: python scripts/run_chapter.py book/01_virtual_staining.md [--out DIR]

Each chapter runs in a fresh kernel with ``book/`` as working directory (as in
``jupyter-book build``). Prints the wall time per chapter; exits 1 when a cell raises.
"""
import argparse
import sys
import time
from pathlib import Path

import jupytext
import nbclient
import nbformat


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("chapters", nargs="+")
    ap.add_argument("--out", default=None, help="write executed notebooks here")
    ap.add_argument("--timeout", type=int, default=1200, help="seconds per cell")
    args = ap.parse_args(argv)
    failed = []
    for ch in args.chapters:
        path = Path(ch).resolve()
        nb = jupytext.read(path)
        t0 = time.perf_counter()
        client = nbclient.NotebookClient(
            nb, timeout=args.timeout, kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        )
        try:
            client.execute()
            status = "ok"
        except nbclient.exceptions.CellExecutionError as e:
            status = "FAILED"
            failed.append(ch)
            print(str(e)[-3000:], file=sys.stderr)
        dt = time.perf_counter() - t0
        print(f"{path.name}: {status} in {dt:.1f} s", flush=True)
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, Path(args.out) / (path.stem + ".ipynb"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
