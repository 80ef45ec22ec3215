"""The first cell of every chapter, kept in one place.

Chapters cannot import the package before it is installed, so the set-up cell
is plain code; :data:`SETUP_CELL` is its single source and a test checks that
every chapter starts with exactly this cell.
"""
REPO_URL = "https://github.com/islteach/islteach"
BRANCH = "main"

SETUP_CELL = '''# Set-up. On Google Colab this installs the islteach package next to Colab's own torch
# (torch is not pinned, so pip keeps the preinstalled CUDA build). Elsewhere it does nothing.
import sys

if "google.colab" in sys.modules:
    import subprocess

    import numpy

    numpy_before = numpy.__version__
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "islteach @ git+https://github.com/islteach/islteach@main"], check=True)
    numpy_after = subprocess.run([sys.executable, "-c", "import numpy; print(numpy.__version__)"],
                                 capture_output=True, text=True).stdout.strip()
    if numpy_after != numpy_before:
        print(f"numpy changed from {numpy_before} to {numpy_after}: restarting the runtime now. "
              "Run this notebook again from the top when it has restarted.")
        import os

        os.kill(os.getpid(), 9)'''


def colab_url(chapter_stem: str) -> str:
    """The 'Open in Colab' address of the generated notebook ``notebooks/<chapter_stem>.ipynb``."""
    repo = REPO_URL.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{repo}/blob/{BRANCH}/notebooks/{chapter_stem}.ipynb"


def badge_markdown(chapter_stem: str) -> str:
    """Markdown for the 'Open in Colab' badge of a chapter."""
    return (
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"({colab_url(chapter_stem)})"
    )
