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


_GLUE_ROLE = re.compile(r"\{glue(?::text)?\}`([^`]+)`")
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

    md = _CITE_ROLE.sub(cite, md)
    return _XREF_ROLE.sub(lambda m: m.group(1).strip() or m.group(2), md)


#: ``{doc}`text <target>``` and friends: Colab keeps the text (the target is a page of the built book)
_XREF_ROLE = re.compile(r"\{(?:doc|ref|numref|eq|term|download)\}`([^`<]*?)\s*(?:<([^`>]+)>)?`")



#: The cell tags a chapter may use: the exercise tags and Jupyter Book's own.
EXERCISE_TAGS = ("stub", "solution", "check")
BOOK_TAGS = ("remove-input", "remove-output", "remove-cell", "hide-input", "hide-output", "hide-cell",
             "raises-exception")
ALLOWED_TAGS = EXERCISE_TAGS + BOOK_TAGS
#: Cell metadata keys a chapter may use (anything else is refused by the notebook linter).
ALLOWED_METADATA = ("tags",)

_GATE = re.compile(r"^(`{3,}|:{3,})\{(exercise-start|exercise-end|solution-start|solution-end)\}[ \t]*([^\n]*)\n"
                   r"((?:[ \t]*:[a-z-]+:[^\n]*\n)*)\1[ \t]*$", re.M)
_BLOCK = re.compile(r"^(:{3,}|`{3,})\{(exercise|solution)\}[ \t]*([^\n]*)\n((?:[ \t]*:[a-z-]+:[^\n]*\n)*)(.*?)^\1[ \t]*$",
                    re.M | re.S)
_OPTION = re.compile(r":([a-z-]+):[ \t]*([^\n]*)")


def _options(text: str) -> dict:
    return {m.group(1): m.group(2).strip() for m in _OPTION.finditer(text or "")}


def _heading(title: str, label: str) -> str:
    title = title.strip()
    return f"**✏️ Exercise{': ' + title if title else ''}** (`{label}`)"


def _plain_blocks(md: str, labels: dict) -> str:
    """The one-cell exercise/solution blocks as plain Markdown: a bold heading, the answer in ``<details>``."""

    def block(m):
        kind, arg, opts, body = m.group(2), m.group(3), _options(m.group(4)), m.group(5).strip()
        if kind == "exercise":
            return _heading(arg, opts.get("label", "")) + "\n\n" + body + "\n"
        return f"<details><summary>Answer ({arg.strip()})</summary>\n\n{body}\n\n</details>\n"

    return _BLOCK.sub(block, md)


def _split_gates(md: str):
    """Split a markdown cell's text into ``("text", str)`` and ``("gate", kind, arg, options)`` pieces."""
    pieces, pos = [], 0
    for m in _GATE.finditer(md):
        pieces.append(("text", md[pos:m.start()]))
        pieces.append(("gate", m.group(2), m.group(3).strip(), _options(m.group(4))))
        pos = m.end()
    pieces.append(("text", md[pos:]))
    return pieces


def exercises(md_path) -> list:
    """The exercises of a chapter's MyST source, in order, for the notebook linter and the tests.

    Each is a dict: ``label``, ``kind`` (``"code"``: gated exercise with code cells, or
    ``"question"``), ``title``, ``stub`` / ``solution`` (lists of code-cell sources inside the
    exercise and inside its solution), ``has_solution`` (a solution block refers to the label),
    ``check`` (the source of the ``check``-tagged cell whose ``checks.run`` names the label, or
    None), and ``problems``: what the linter refuses (code cells inside a block without the
    right tag, a tagged cell outside any block, an exercise-start without an end...).
    """
    import jupytext

    nb = jupytext.read(Path(md_path))
    found: dict = {}
    order: list = []
    problems: list = []
    state, current = None, None  # state: None, "exercise" or "solution"; current: its label

    def get(label):
        if label not in found:
            found[label] = {"label": label, "kind": "question", "title": "", "stub": [], "solution": [],
                            "has_solution": False, "check": None, "problems": []}
            order.append(label)
        return found[label]

    for i, cell in enumerate(nb.cells):
        tags = list(cell.metadata.get("tags", []))
        if cell.cell_type == "markdown":
            for m in _BLOCK.finditer(cell.source):
                kind, arg, opts = m.group(2), m.group(3).strip(), _options(m.group(4))
                if kind == "exercise":
                    ex = get(opts.get("label", ""))
                    ex["title"] = arg
                else:
                    get(arg)["has_solution"] = True
            for piece in _split_gates(cell.source):
                if piece[0] != "gate":
                    continue
                _, kind, arg, opts = piece
                if kind == "exercise-start":
                    if state:
                        problems.append(f"cell {i}: exercise-start inside an open {state} block")
                    current = opts.get("label", "")
                    if not current:
                        problems.append(f"cell {i}: exercise-start without :label:")
                    ex = get(current)
                    ex["kind"], ex["title"], state = "code", arg, "exercise"
                elif kind == "solution-start":
                    if state:
                        problems.append(f"cell {i}: solution-start inside an open {state} block")
                    current, state = arg, "solution"
                    get(current)["has_solution"] = True
                    if opts.get("class") != "dropdown":
                        problems.append(f"solution of {arg}: needs ':class: dropdown' (collapsed in the book)")
                elif kind in ("exercise-end", "solution-end"):
                    if state != kind.split("-")[0]:
                        problems.append(f"cell {i}: {kind} without a matching start")
                    state = None
            continue
        bad = [t for t in tags if t not in ALLOWED_TAGS]
        if bad:
            problems.append(f"cell {i}: unknown tag(s) {bad} (allowed: {', '.join(ALLOWED_TAGS)})")
        extra = [k for k in cell.metadata if k not in ALLOWED_METADATA]
        if extra:
            problems.append(f"cell {i}: unknown metadata key(s) {extra} (allowed: {', '.join(ALLOWED_METADATA)})")
        if state == "exercise":
            if "stub" not in tags:
                problems.append(f"cell {i}: a code cell inside exercise {current} must be tagged 'stub'")
            get(current)["stub"].append(cell.source)
        elif state == "solution":
            if "solution" not in tags:
                problems.append(f"cell {i}: a code cell inside the solution of {current} must be tagged 'solution'")
            get(current)["solution"].append(cell.source)
        else:
            for t in ("stub", "solution"):
                if t in tags:
                    problems.append(f"cell {i}: tagged {t!r} outside an exercise/solution block")
            if "check" in tags:
                m = re.fullmatch(r"\s*(\w+)\s*=\s*checks\.run\(\s*[\"'](ex-[\w-]+)[\"']\s*,\s*(\w+)\s*\)\s*", cell.source)
                if not m or m.group(1) != m.group(3):
                    problems.append(f"cell {i}: a check cell must be exactly `name = checks.run(\"ex-..\", name)`")
                elif m.group(2) in found:
                    found[m.group(2)]["check"] = cell.source
                else:
                    problems.append(f"cell {i}: check for {m.group(2)}, which no exercise defines before it")
    if state:
        problems.append(f"{state} block of {current} is never closed")
    out = [found[k] for k in order]
    if out:
        out[0]["problems"] = problems + out[0]["problems"]
    elif problems:
        out.append({"label": "", "kind": "none", "problems": problems})
    return out


def _student_and_solution_cells(nb, student: bool):
    """The cells of a chapter's notebook for Colab: exercise blocks as plain Markdown; the stubs dropped
    from the solution notebook, the solutions (code and text) dropped from the student notebook."""
    import nbformat

    cells, in_solution, label = [], False, None
    for cell in nb.cells:
        if cell.cell_type == "code":
            tags = cell.metadata.get("tags", [])
            if (student and (in_solution or "solution" in tags)) or (not student and "stub" in tags):
                continue
            cells.append(cell)
            continue
        text_out = []
        for piece in _split_gates(cell.source):
            if piece[0] == "text":
                if not (student and in_solution):
                    text_out.append(piece[1])
                continue
            _, kind, arg, opts = piece
            if kind == "exercise-start":
                text_out.append("\n" + _heading(arg, opts.get("label", "")) + "\n")
            elif kind == "solution-start":
                in_solution, label = True, arg
                if student:
                    text_out.append(f"\n*The solution of `{arg}` is in the book and in the solution notebook "
                                    "(`notebooks/` instead of `notebooks/student/`). Write yours in the cell "
                                    "above; the check below tells you what is right.*\n")
                else:
                    text_out.append(f"\n**Solution** (`{arg}`)\n")
            elif kind == "solution-end":
                in_solution = False
        text = re.sub(r"\n{3,}", "\n\n", "".join(text_out)).strip("\n")
        if text.strip():
            cells.append(nbformat.v4.new_markdown_cell(text))
    return cells


def badge_line(stem: str) -> str:
    """The chapter's Colab badges: the notebook with solutions and the student (exercise) notebook."""
    from .colab import colab_url

    return (f"[![Open In Colab](_static/colab-badge.svg)]({colab_url(stem)}) with solutions · "
            f"[![Open In Colab](_static/colab-badge.svg)]({colab_url(stem, student=True)}) exercises only")


def sync_badges(md_text: str, stem: str) -> str:
    """``md_text`` with its Colab badge line (the first line that starts with ``[![Open In Colab]``) set to :func:`badge_line`."""
    lines = md_text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("[![Open In Colab]"):
            lines[i] = badge_line(stem)
            return "\n".join(lines)
    raise ValueError(f"md_text of {stem}: no Colab badge line (a line starting with '[![Open In Colab]')")


def render_notebook(md_path, student: bool = False) -> str:
    """The output-free ``.ipynb`` text for a MyST-markdown chapter (deterministic, for Colab).

    Code cells are copied verbatim, with no outputs and no execution counts; in markdown
    cells the Jupyter Book roles are replaced (:func:`plain_roles`), the exercise and solution
    directives become plain Markdown (answers to questions in a collapsed ``<details>``), and
    the badge points to Colab's public image. With ``student=True`` it is the exercise
    notebook: every solution (its code cells and its text) is left out and each exercise keeps
    its stub; otherwise the stubs are left out and the solutions kept.
    """
    import jupytext
    import nbformat

    md_path = Path(md_path)
    nb = jupytext.read(md_path)
    bib = md_path.parent / "references.bib"
    labels = bib_labels(bib) if bib.exists() else {}
    nb.cells = _student_and_solution_cells(nb, student)
    for cell in nb.cells:  # the book shows a local badge image; Colab needs the public one
        if cell.cell_type == "markdown":
            src = cell.source.replace("_static/colab-badge.svg", COLAB_BADGE_SVG)
            cell.source = re.sub(r"\n{3,}", "\n\n", plain_roles(_plain_blocks(src, labels), labels)).strip("\n")
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
        else:
            cell.metadata = {}
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nbformat.writes(nb) + "\n"


def lint(md_path) -> list:
    """What the notebook linter refuses in a chapter's MyST source (an empty list when all is well).

    Unknown cell tags or metadata keys (a typo such as ``soluton`` would leak a solution into the
    student notebook), blocks not closed or mis-tagged code cells (:func:`exercises`), an exercise
    without a solution, a code exercise without a stub, a solution or a check cell, and a label
    that does not look like ``ex-NN-name`` with the chapter's number, or is used twice.
    """
    md_path = Path(md_path)
    out, seen = [], set()
    chapter = md_path.stem[:2]
    for ex in exercises(md_path):
        out += ex["problems"]
        label = ex["label"]
        if ex["kind"] == "none":
            continue
        if not re.fullmatch(rf"ex-{re.escape(chapter)}-[a-z0-9-]+", label or ""):
            out.append(f"label {label!r}: expected 'ex-{chapter}-<name>' (lower case, digits, dashes)")
        if label in seen:
            out.append(f"label {label!r} is used twice")
        seen.add(label)
        if not ex["has_solution"]:
            out.append(f"{label}: an exercise without a solution")
        if ex["kind"] == "code":
            if not ex["stub"]:
                out.append(f"{label}: a code exercise without a stub cell")
            if not ex["solution"]:
                out.append(f"{label}: a code exercise without a solution cell")
            if ex["check"] is None:
                out.append(f"{label}: a code exercise without a check cell (`name = checks.run({label!r}, name)`)")
    return out
