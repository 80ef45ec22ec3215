"""The chapters of the book and how their Colab notebooks are generated (one source: ``book/*.md``)."""
from __future__ import annotations

import re
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


_GLUE_ROLE = re.compile(r"\{glue:text\}`([^`]+)`")
_CITE_ROLE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")


def bib_labels(bib_path) -> dict:
    """``{key: "Bonte et al. 2022"}`` for every entry of a BibTeX file (first author's surname, year)."""
    text = Path(bib_path).read_text(encoding="utf-8")
    out = {}
    for m in re.finditer(r"@\w+\{([^,\s]+),(.*?)\n\}", text, flags=re.S):
        key, body = m.group(1), m.group(2)
        author = re.search(r"author\s*=\s*\{(.*?)\}\s*,?\s*\n", body, flags=re.S)
        year = re.search(r"year\s*=\s*\{?(\d{4})", body)
        names = [a.strip() for a in author.group(1).split(" and ")] if author else []
        surname = names[0].split(",")[0].strip() if names else key
        etal = " et al." if len(names) > 2 or "others" in names else (f" and {names[1].split(',')[0].strip()}"
                                                                    if len(names) == 2 else "")
        out[key] = f"{surname}{etal} {year.group(1) if year else ''}".strip()
    return out


def plain_roles(md: str, labels: dict) -> str:
    """Markdown for a plain notebook: Jupyter Book roles replaced by what Colab can show.

    ``{glue:text}`name``` becomes ``name`` in code style (on Colab, :func:`islteach.viz.glue`
    prints ``name = value`` where the value is computed), ``{cite}`a,b``` becomes
    "(Author et al. 2022; ...)" from the book's bibliography.
    """
    md = _GLUE_ROLE.sub(lambda m: f"`{m.group(1)}`", md)

    def cite(m):
        keys = [k.strip() for k in m.group(1).split(",")]
        return "(" + "; ".join(labels.get(k, k) for k in keys) + ")"

    return _CITE_ROLE.sub(cite, md)


def render_notebook(md_path) -> str:
    """The output-free ``.ipynb`` text for a MyST-markdown chapter (deterministic, for Colab).

    Code cells are copied verbatim, with no outputs and no execution counts; in markdown
    cells the Jupyter Book roles are replaced (:func:`plain_roles`) and the badge points to
    Colab's public image.
    """
    import jupytext
    import nbformat

    md_path = Path(md_path)
    nb = jupytext.read(md_path)
    bib = md_path.parent / "references.bib"
    labels = bib_labels(bib) if bib.exists() else {}
    for cell in nb.cells:  # the book shows a local badge image; Colab needs the public one
        if cell.cell_type == "markdown":
            cell.source = plain_roles(cell.source.replace("_static/colab-badge.svg", COLAB_BADGE_SVG), labels)
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
