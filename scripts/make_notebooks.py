"""Generate the output-free Colab notebooks from ``book/<chapter>.md``: two sets from one source.

- ``notebooks/<chapter>.ipynb``: the chapter with the exercises' solutions (the stubs left out);
- ``notebooks/student/<chapter>.ipynb``: the exercise version, each exercise with its stub and
  none of the solutions (code or text); the checks fall back to the package when a stub is left.

It first writes :data:`islteach.colab.SETUP_CELL` into the first code cell of every chapter and the
two Colab badges (:func:`islteach.notebooks.badge_line`) into its badge line, so that both have one
source (:mod:`islteach.colab`).

The notebooks are derived files: never edit them by hand. ``tests/test_book.py`` and
``tests/test_exercises.py`` fail when one is out of date. Usage::

    python scripts/make_notebooks.py          # write notebooks/ and notebooks/student/
    python scripts/make_notebooks.py --check  # exit 1 when any notebook is stale
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from islteach.notebooks import CHAPTERS, render_notebook, sync_badges, sync_setup_cell  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="only check, write nothing")
    args = ap.parse_args(argv)
    out_dir = ROOT / "notebooks"
    stale = []
    for stem in CHAPTERS:
        md = ROOT / "book" / f"{stem}.md"
        source = md.read_text()
        synced = sync_badges(sync_setup_cell(source), stem)
        if synced != source:
            stale.append(md.name)
            if not args.check:
                md.write_text(synced)
        for student, folder in ((False, out_dir), (True, out_dir / "student")):
            text = render_notebook(md, student=student)
            target = folder / f"{stem}.ipynb"
            if not target.exists() or target.read_text() != text:
                stale.append(str(target.relative_to(ROOT)))
                if not args.check:
                    folder.mkdir(parents=True, exist_ok=True)
                    target.write_text(text)
    if args.check and stale:
        print("out of date: " + ", ".join(stale) + " (run python scripts/make_notebooks.py)")
        return 1
    print(("checked " if args.check else "wrote ") + f"{2 * len(CHAPTERS)} notebooks" +
          (f" ({len(stale)} updated)" if stale and not args.check else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
