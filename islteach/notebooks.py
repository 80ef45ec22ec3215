"""The chapters of the book and how their Colab notebooks are generated (one source: ``book/*.md``)."""
from __future__ import annotations

from pathlib import Path

#: Chapter stems in reading order (``book/<stem>.md`` -> ``notebooks/<stem>.ipynb``).
CHAPTERS = (
    "01_virtual_staining",
    "02_cellpose_ground_truth",
    "03_transfer_learning",
    "04_distance_maps",
    "05_shape_priors",
)


COLAB_BADGE_SVG = "https://colab.research.google.com/assets/colab-badge.svg"

_CODE_CELL = "```{code-cell} ipython3\n"


def sync_setup_cell(md_text: str) -> str:
    """``md_text`` (a chapter's MyST source) with its first code cell replaced by :data:`islteach.colab.SETUP_CELL`.

    The set-up cell is generated from :mod:`islteach.colab` (repository address, branch,
    install plan); this keeps every chapter's copy identical to it.
    """
    from .colab import SETUP_CELL

    start = md_text.find(_CODE_CELL)
    if start < 0:
        raise ValueError("md_text has no code cell")
    body = start + len(_CODE_CELL)
    end = md_text.find("\n```", body - 1)
    if end < 0:
        raise ValueError("md_text: the first code cell is not closed")
    return md_text[:body] + SETUP_CELL.strip("\n") + md_text[end:]


def render_notebook(md_path) -> str:
    """The output-free ``.ipynb`` text for a MyST-markdown chapter (deterministic, for Colab).

    Jupyter-Book-only syntax stays as markdown text; code cells are copied
    verbatim, with no outputs and no execution counts.
    """
    import jupytext
    import nbformat

    nb = jupytext.read(Path(md_path))
    for cell in nb.cells:  # the book shows a local badge image; Colab needs the public one
        if cell.cell_type == "markdown":
            cell.source = cell.source.replace("_static/colab-badge.svg", COLAB_BADGE_SVG)
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "accelerator": "GPU",
        "colab": {"provenance": [], "gpuType": "T4"},
    }
    for i, cell in enumerate(nb.cells):
        cell.pop("id", None)
        cell["id"] = f"cell-{i:03d}"
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata = {k: v for k, v in cell.metadata.items() if k == "tags"}
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nbformat.writes(nb) + "\n"
