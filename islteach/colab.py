"""Google Colab: the first cell of every chapter, the repository address and the install plan, in one place.

Chapters cannot import the package before it is installed, so the set-up cell is plain
code generated here (:data:`SETUP_CELL`); ``scripts/make_notebooks.py`` writes it into every
chapter and a test checks that each chapter starts with exactly this cell and that every
other file of the repository names the same address (:data:`REPO_URL`, :data:`BRANCH`).

What the cell does on Colab, and why
------------------------------------
Colab brings its own numpy, torch, torchvision, ipywidgets, matplotlib, scipy,
scikit-image and OpenCV. Replacing any of them costs minutes (numpy below 2.1 has no wheel
for Colab's Python 3.13, so pip would compile it) and a kernel restart. Every cellpose 3.1.x
release asks for ``numpy<2.1`` although it runs with numpy 2.1 (this package's chapter 2
tests pass with it), so the cell

1. pins the versions of the packages above *as installed on this VM* in a constraints file
   (pip then fails loudly rather than replacing one of them);
2. installs cellpose (:data:`CELLPOSE`) and this package without their declared
   dependencies (``--no-deps``);
3. installs the few dependencies Colab lacks (:data:`COLAB_EXTRA`) under those constraints.

``scripts/check_colab_install.py`` replays steps 2 and 3 against Colab's published package
list (``pip install --dry-run --report`` on Python 3.13) and fails when any preinstalled
package would change.
"""
from __future__ import annotations

#: The repository every Colab badge, the set-up cell, the book's configuration and the
#: package metadata point to (a test checks that no file names another one).
REPO_URL = "https://github.com/islteach/islteach"
#: The branch the Colab notebooks and the set-up cell install from.
BRANCH = "main"

#: Preinstalled on Colab and never to be replaced by the set-up cell (distribution names).
PROTECTED = ("numpy", "torch", "torchvision", "ipywidgets", "matplotlib", "scipy", "scikit-image",
             "opencv-python", "opencv-python-headless", "opencv-contrib-python", "pillow", "tifffile",
             "numba", "llvmlite", "widgetsnbextension")
#: Installed with ``--no-deps``: its ``numpy<2.1`` pin would force a numpy build on Python 3.13.
CELLPOSE = "cellpose==3.1.1.3"
#: What this package and cellpose need that Colab does not preinstall (resolved with deps,
#: under :data:`PROTECTED` pinned to the VM's versions).
COLAB_EXTRA = ("segmentation-models-pytorch>=0.5", "fastremap", "fill-voids", "roifile", "imagecodecs")


def install_spec(repo_url: str = REPO_URL, branch: str = BRANCH) -> str:
    """The pip requirement of this package on Colab: ``islteach @ git+<repo>@<branch>``."""
    return f"islteach @ git+{repo_url}@{branch}"


_SETUP_TEMPLATE = '''# Set-up (the same first cell in every chapter). On Google Colab it installs islteach next to
# Colab's own numpy, torch and friends, replacing none of them, so no restart is needed.
# Elsewhere it installs nothing. Then it reports the accelerator.
import sys

if "google.colab" in sys.modules:
    import importlib.metadata as _md
    import subprocess
    import time

    _t0 = time.time()
    _PROTECTED = {protected}
    _EXTRA = {extra}
    _keep = []
    for _name in _PROTECTED:
        try:
            _keep.append(f"{{_name}}=={{_md.version(_name)}}")
        except _md.PackageNotFoundError:
            pass
    with open("/tmp/islteach-colab-constraints.txt", "w") as _f:
        _f.write("\\n".join(_keep) + "\\n")
    print("Installing islteach ({spec}) and {cellpose} without their pins, then "
          + ", ".join(_EXTRA) + ".\\nKept as Colab installed them: " + ", ".join(_keep))
    _pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run(_pip + ["--no-deps", "{cellpose}", "{spec}"], check=True)
    subprocess.run(_pip + ["-c", "/tmp/islteach-colab-constraints.txt", *_EXTRA], check=True)
    print(f"Installed in {{time.time() - _t0:.0f}} s.")

import torch

if torch.cuda.is_available():
    _p = torch.cuda.get_device_properties(0)
    print(f"GPU: {{_p.name}}, {{_p.total_memory / 2**30:.1f}} GiB")
else:
    print("No GPU: this chapter runs on the CPU, in the small 'quick' profile unless "
          "ISLTEACH_PROFILE says otherwise. On Colab choose Runtime > Change runtime type > T4 GPU, "
          "then run the notebook again from the top.")'''

#: The first code cell of every chapter (generated from the constants above).
def _py_list(items, indent: int = 4, width: int = 100) -> str:
    """``items`` as a Python list literal wrapped at ``width`` columns."""
    lines, line = [], "["
    for i, item in enumerate(items):
        piece = repr(item) + ("," if i < len(items) - 1 else "]")
        if len(line) + len(piece) + 1 > width - indent - 4 and line != "[":
            lines.append(line.rstrip())
            line = " " * (indent + 13)
        line += piece + " "
    lines.append(line.rstrip())
    return "\n".join(lines)


SETUP_CELL = _SETUP_TEMPLATE.format(protected=_py_list(PROTECTED), spec=install_spec(), cellpose=CELLPOSE,
                                    extra=_py_list(COLAB_EXTRA))


def colab_url(chapter_stem: str, student: bool = False) -> str:
    """The 'Open in Colab' address of ``notebooks/<chapter_stem>.ipynb`` (with solutions) or,
    with ``student=True``, of the exercise version ``notebooks/student/<chapter_stem>.ipynb``."""
    repo = REPO_URL.removeprefix("https://github.com/")
    folder = "notebooks/student" if student else "notebooks"
    return f"https://colab.research.google.com/github/{repo}/blob/{BRANCH}/{folder}/{chapter_stem}.ipynb"


def badge_markdown(chapter_stem: str) -> str:
    """Markdown for the 'Open in Colab' badge of a chapter."""
    return (
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"({colab_url(chapter_stem)})"
    )
