"""Generate the output-free Colab notebooks ``notebooks/<chapter>.ipynb`` from ``book/<chapter>.md``.

It first writes :data:`islteach.colab.SETUP_CELL` into the first code cell of every chapter
(the set-up cell has one source: :mod:`islteach.colab`).

The notebooks are derived files: never edit them by hand. ``tests/test_book.py``
fails when one is out of date. Usage::

    python scripts/make_notebooks.py          # write notebooks/
    python scripts/make_notebooks.py --check  # exit 1 when any notebook is stale
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from islteach.notebooks import CHAPTERS, render_notebook, sync_setup_cell  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="only check, write nothing")
    args = ap.parse_args(argv)
    out_dir = ROOT / "notebooks"
    out_dir.mkdir(exist_ok=True)
    stale = []
    for stem in CHAPTERS:
        md = ROOT / "book" / f"{stem}.md"
        source = md.read_text()
        synced = sync_setup_cell(source)
        if synced != source:
            stale.append(md.name)
            if not args.check:
                md.write_text(synced)
        text = render_notebook(md)
        target = out_dir / f"{stem}.ipynb"
        if not target.exists() or target.read_text() != text:
            stale.append(target.name)
            if not args.check:
                target.write_text(text)
    if args.check and stale:
        print("out of date: " + ", ".join(stale) + " (run python scripts/make_notebooks.py)")
        return 1
    print(("checked " if args.check else "wrote ") + f"{len(CHAPTERS)} notebooks" +
          (f" ({len(stale)} updated)" if stale and not args.check else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
