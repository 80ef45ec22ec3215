"""The course around the book: sections, exercises and objectives of each chapter, measured times,
the chapter dependency map and a five-day plan.

This module feeds the instructor page (``book/instructor.md``). Nothing in it is typed in by hand:
sections, exercises and learning objectives are read from the chapters' MyST sources (with
jupytext, as the book build reads them), times come from the per-cell timings that
:func:`islteach.provenance.setup_chapter` records while a chapter runs
(``results/<profile>/timings/<chapter>.json``) and from the cost model (:mod:`islteach.cost`),
and every dependency names the package function that reads the file, which the tests check
against the chapters' code.

How the timings map to the chapter: ``cells[k]`` of a timings file is the wall time of the
chapter's code cell number ``first_cell - 1 + k`` (0-based, in source order). nbclient numbers
the executed cells from 1 and ``setup_chapter`` runs in the chapter's second code cell, so
``first_cell`` is 2 and ``cells[0]`` is that second cell; the first cell (the Colab set-up) runs
before the timer starts and is not measured. (The chapter's own source locates the
``setup_chapter`` cell, see :func:`cell_times`.)
"""
from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

#: The repository's ``book`` folder (the chapters' sources).
BOOK = Path(__file__).resolve().parents[1] / "book"


def chapter_path(chapter: str, book_dir=None) -> Path:
    """``book/<chapter>.md``."""
    return Path(book_dir or BOOK) / f"{chapter}.md"


def _cells(md_path):
    import jupytext

    path = Path(md_path)
    if not path.is_file():
        raise FileNotFoundError(f"no chapter source at {path}")
    return jupytext.read(path).cells


def _markdown_lines(source: str):
    """The lines of a markdown cell outside fenced code blocks (``` or ~~~)."""
    fence = None
    for line in source.splitlines():
        m = re.match(r"^\s*(`{3,}|~{3,})", line)
        if m:
            mark = m.group(1)
            if fence is None:
                fence = mark
            elif mark[0] == fence[0] and len(mark) >= len(fence) and not line.strip()[len(mark):].strip():
                fence = None
            continue
        if fence is None:
            yield line


# ------------------------------------------------------------------------------ chapter structure
@dataclass(frozen=True)
class Section:
    """A major section (``##`` heading) of a chapter and the 0-based indices of its code cells."""

    heading: str
    cells: tuple = ()


def chapter_title(md_path) -> str:
    """The chapter's ``#`` title."""
    for cell in _cells(md_path):
        if cell.cell_type == "markdown":
            for line in _markdown_lines(cell.source):
                if line.startswith("# "):
                    return line[2:].strip()
    return Path(md_path).stem


def sections(md_path) -> list[Section]:
    """The ``##`` sections of a MyST chapter, each with the code cells under it, in order.

    Code cells before the first ``##`` heading belong to a section named after the ``#``
    title. ``###`` and deeper headings stay in their ``##`` section. Headings inside fenced
    code blocks are ignored.

    Parameters
    ----------
    md_path : path-like
        A jupytext MyST notebook (``book/<chapter>.md``).

    Returns
    -------
    list of Section
        ``heading`` and ``cells`` (0-based indices among the chapter's code cells).
    """
    out: list[list] = []
    code_index = 0
    title = None
    for cell in _cells(md_path):
        if cell.cell_type == "markdown":
            for line in _markdown_lines(cell.source):
                if line.startswith("# ") and title is None:
                    title = line[2:].strip()
                elif line.startswith("## "):
                    out.append([line[3:].strip(), []])
        elif cell.cell_type == "code":
            if not out:
                out.append([title or Path(md_path).stem, []])
            out[-1][1].append(code_index)
            code_index += 1
    return [Section(h, tuple(c)) for h, c in out]


def n_code_cells(md_path) -> int:
    """The number of code cells of a chapter."""
    return sum(c.cell_type == "code" for c in _cells(md_path))


def learning_objectives(md_path) -> list[str]:
    """The bullet points of the chapter's *Learning objectives* section (``[]`` when it has none).

    Each point is one line of Markdown text (continuation lines joined).
    """
    items, inside, current = [], False, None
    for cell in _cells(md_path):
        if cell.cell_type != "markdown":
            if inside:
                break
            continue
        for line in _markdown_lines(cell.source):
            if re.match(r"^#{2,3} ", line):
                if inside:
                    inside = False
                    break
                inside = "learning objectives" in line.lower()
                continue
            if not inside:
                continue
            m = re.match(r"^\s*(?:[*+-]|\d+\.)\s+(.*)", line)
            if m:
                current = m.group(1).strip()
                items.append(current)
            elif line.strip() and items and line.startswith((" ", "\t")):
                items[-1] = f"{items[-1]} {line.strip()}"
        if items and not inside:
            break
    return items


_TEX = {r"\sum": "Σ", r"\prod": "Π", r"\mid": "|", r"\rho": "ρ", r"\sigma": "σ", r"\varphi": "φ",
        r"\phi": "φ", r"\alpha": "α", r"\beta": "β", r"\gamma": "γ", r"\lambda": "λ", r"\mu": "μ",
        r"\theta": "θ", r"\pi": "π", r"\delta": "δ", r"\le": "≤", r"\ge": "≥", r"\times": "×",
        r"\cdot": "·", r"\infty": "∞", r"\approx": "≈", r"\,": " ", r"\;": " ", r"\ ": " "}


def _plain_math(tex: str) -> str:
    for k in sorted(_TEX, key=len, reverse=True):
        tex = tex.replace(k, _TEX[k])
    tex = re.sub(r"\\[a-zA-Z]+", "", tex)          # any other command: dropped
    tex = re.sub(r"\^\{([^{}]*)\}", r"^\1", tex)    # x^{-1} -> x^-1
    tex = re.sub(r"_\{([^{}]*)\}", r"_\1", tex)
    tex = tex.replace("{", "").replace("}", "")
    return re.sub(r"(?<=\w)-(?=\s)|(?<=\s)-(?=\w)|^-", "−", tex)


def plain_text(md: str) -> str:
    """One line of chapter Markdown as plain text for a table cell: roles resolved, no backticks or TeX.

    Citations become "(Bonte et al. 2022)" (from the book's bibliography), ``{doc}`` and
    ``{ref}`` roles their text, inline code and emphasis lose their marks, and inline math
    ``$...$`` becomes readable Unicode (``$\\rho/\\sigma_k$`` -> ``ρ/σ_k``).
    """
    from .notebooks import bib_labels, plain_roles

    bib = BOOK / "references.bib"
    md = plain_roles(md, bib_labels(bib) if bib.exists() else {})
    md = re.sub(r"\$([^$]+)\$", lambda m: _plain_math(m.group(1)), md)
    md = re.sub(r"`([^`]*)`", r"\1", md)
    md = re.sub(r"\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*", lambda m: m.group(1) or m.group(2), md)
    return md


@dataclass(frozen=True)
class Exercise:
    """One exercise of a chapter: its label, title and kind (``"code"``: a stub to complete, ``"question"``)."""

    label: str
    title: str
    kind: str


def exercises(md_path) -> list[Exercise]:
    """The exercises of a chapter, in order (sphinx-exercise directives, see CONTRIBUTING.md).

    ``exercise-start`` blocks (a stub cell, a solution and a check) are ``"code"`` exercises;
    ``{exercise}`` directives are ``"question"`` exercises.
    """
    from .notebooks import exercises as _parse

    return [Exercise(ex["label"], ex["title"].strip(), ex["kind"]) for ex in _parse(md_path)]


# ------------------------------------------------------------------------------ measured times
def timings_file(chapter: str, profile: str | None = None) -> Path:
    """Where the chapter's per-cell times are (:func:`islteach.provenance.timings_path`)."""
    from .provenance import timings_path

    return timings_path(chapter, profile)


def load_timings(chapter: str, profile: str | None = None) -> dict | None:
    """The timings file of ``chapter`` in ``profile``, or None when the chapter has not been run.

    Returns
    -------
    dict or None
        ``chapter``, ``profile``, ``first_cell``, ``cells`` (seconds per executed code cell) and
        ``written`` (the file's modification time, UTC).
    """
    path = timings_file(chapter, profile)
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    for key in ("first_cell", "cells"):
        if key not in data:
            raise ValueError(f"{path} is not a timings file (no {key!r})")
    data["written"] = _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.timezone.utc)
    data["path"] = path
    return data


def setup_cell_index(md_path) -> int:
    """The 0-based index of the code cell that calls ``setup_chapter`` (where the timer starts)."""
    for i, c in enumerate(c for c in _cells(md_path) if c.cell_type == "code"):
        if "setup_chapter(" in c.source:
            return i
    raise ValueError(f"{md_path} has no code cell that calls setup_chapter: its cells are not timed")


def cell_times(timings: dict, setup_index: int | None = None) -> dict:
    """``{0-based code-cell index: seconds}`` of a timings file (see the module docstring).

    ``cells[k]`` belongs to code cell ``first_cell - 1 + k``: nbclient numbers cells from 1 and
    ``first_cell`` is the number of the cell that called ``setup_chapter``. When that cell's index
    in the source is known (``setup_index``, from :func:`setup_cell_index`), it is used instead, so
    that a run in a kernel that executed other cells first (a test harness) still maps right.
    """
    first = int(timings["first_cell"])
    if first < 1:
        raise ValueError(f"first_cell must be >= 1 (nbclient counts from 1), got {first}")
    start = first - 1 if setup_index is None else int(setup_index)
    return {start + k: float(s) for k, s in enumerate(timings["cells"])}


@dataclass
class ChapterTimes:
    """The measured times of one chapter: per section and in total, with the state of the file."""

    chapter: str
    profile: str
    status: str                     # "measured", "missing", "incomplete", "stale"
    note: str = ""
    total_s: float | None = None
    sections: list = field(default_factory=list)  # (heading, n code cells, seconds or None)
    written: object = None


def section_times(chapter: str, profile: str | None = None, md_path=None, book_dir=None) -> ChapterTimes:
    """The chapter's measured wall time per ``##`` section and in total, from its timings file.

    The set-up cells (up to the one that calls ``setup_chapter``) form their own first row,
    ``"Set-up"``; the cells before ``setup_chapter``'s run before the timer starts and are not
    measured, so their seconds are left out.

    ``status`` says how far to trust the numbers: ``"missing"`` (no timings file: the chapter
    was not run in this profile; no numbers are given), ``"incomplete"`` (the run stopped
    before the last cell: the sections it did not reach have no time), ``"stale"`` (the
    chapter's source changed after it was timed, or its cells no longer match) or
    ``"measured"``.
    """
    from .profiles import get_profile

    profile = profile or get_profile().name
    md_path = Path(md_path) if md_path is not None else chapter_path(chapter, book_dir)
    secs = sections(md_path)
    n_code = sum(len(s.cells) for s in secs)
    setup = setup_cell_index(md_path)
    t = load_timings(chapter, profile)
    per_cell, status, note, written, total = {}, "missing", "", None, None
    if t is None:
        note = (f"no timings file ({display_path(timings_file(chapter, profile))}): the chapter has not run "
                f"in the {profile} profile here")
    else:
        per_cell, status, written = cell_times(t, setup), "measured", t["written"]
        total = round(sum(per_cell.values()), 1)
        last = max(per_cell) if per_cell else -1
        if last >= n_code:
            status, note = "stale", (f"the timings hold {len(per_cell)} cells, but the chapter has {n_code} code "
                                     "cells: it changed after it was timed")
        elif last < n_code - 1:
            status, note = "incomplete", f"the run stopped after code cell {last + 1} of {n_code}"
        elif md_path.stat().st_mtime > Path(t["path"]).stat().st_mtime:
            status, note = "stale", "the chapter's source was edited after this run"
    rows = []
    head = list(range(min(setup + 1, n_code)))  # the Colab set-up cell(s) and setup_chapter's cell
    measured = [per_cell[i] for i in head if i in per_cell]
    rows.append(("Set-up", len(head), round(sum(measured), 1) if measured else None))
    for sec in secs:
        cells = [i for i in sec.cells if i > setup]
        if not cells:
            continue
        got = [per_cell[i] for i in cells if i in per_cell]  # fewer than cells when the run stopped here
        rows.append((sec.heading, len(cells), round(sum(got), 1) if got else None))
    return ChapterTimes(chapter, profile, status, note, total, rows, written)


def display_path(path) -> str:
    """``path`` as a reader can use it (:func:`islteach.provenance.shown_path`), never a build folder."""
    from .provenance import shown_path

    return shown_path(path)


def measured_times(chapters=None, profile: str | None = None, book_dir=None) -> dict:
    """``{chapter: ChapterTimes}`` for every chapter (default :data:`islteach.notebooks.CHAPTERS`)."""
    from .notebooks import CHAPTERS

    return {c: section_times(c, profile, book_dir=book_dir) for c in (chapters or CHAPTERS)}


# ------------------------------------------------------------------------------ the cost model
def _register_chapter5() -> None:
    """Import :mod:`islteach.shape_prior`, which registers chapter 5's network with the cost model."""
    import importlib

    importlib.import_module(".shape_prior", __package__)


def estimated_minutes(profiles=("colab", "paper"), device_classes=("t4",)) -> dict:
    """``{(profile, device class): {chapter: minutes}}`` from the cost model (trainings only).

    Imports :mod:`islteach.shape_prior` first (it registers chapter 5's network).
    """
    from . import cost

    _register_chapter5()
    return {(p, d): cost.expected_minutes(p, d) for p in profiles for d in device_classes}


def work_minutes(chapter_key: str, work_name: str, profile: str, device_class: str = "t4") -> float:
    """Minutes of one named piece of a chapter's work (e.g. ``"ch1"``, ``"ISL DAPI model"``) in ``profile``."""
    from . import cost
    from .profiles import get_profile

    _register_chapter5()

    p = get_profile(profile, smoke=False)
    sizes = getattr(p, chapter_key).as_dict()
    if chapter_key in ("ch3", "ch4"):
        sizes["isl_encoder_name"] = p.ch1.encoder_name
    works = [w for w in cost.chapter_works(chapter_key, **sizes) if w.name.startswith(work_name)]
    if not works:
        raise ValueError(f"{chapter_key} has no work named {work_name!r}")
    return round(cost.seconds(works, device_class) / 60, 1)


# ------------------------------------------------------------------------------ dependencies
@dataclass(frozen=True)
class Dependency:
    """A file one chapter reads that an earlier chapter makes, and what happens without it.

    ``reads`` and ``made_by`` are regular expressions that the reading and the making chapter's
    code must contain (the tests check them, so the map cannot drift from the chapters).
    """

    reader: str
    maker: str
    what: str
    path: str          # relative to results/<profile>/
    call: str          # the package function the reader calls
    if_missing: str
    reads: str
    made_by: str
    optional: bool = False  # read only in some profiles or when another file is missing
    work: tuple | None = None  # (chapter key, cost-model work name) that remaking the file costs


def dependency_map(profile: str | None = None) -> list[Dependency]:
    """What chapters 3 and 4 read from chapters 1 and 2 (chapter 5 reads nothing), per file.

    Paths come from the package functions that write and read the files, relative to
    ``results/<profile>/``; ``if_missing`` describes what the reading function does, in
    ``profile`` (its sizes decide, e.g., whether chapter 3's MAP2 control runs).
    """
    from . import groundtruth as gt
    from .profiles import get_profile
    from .provenance import results_dir
    from .virtual_staining import isl_model_path

    p = get_profile(profile, smoke=False)
    root = results_dir(p.name)

    def rel(path) -> str:
        return Path(path).relative_to(root).as_posix()

    dapi, map2 = rel(isl_model_path("dapi", p.name)), rel(isl_model_path("map2", p.name))
    labels_dir = root / "labels"
    isl_labels = rel(labels_dir / f"{gt.ISL_LABELS}.npz")
    test_labels = rel(labels_dir / f"{gt.BBBC039_TEST_LABELS}.npz")
    scratch = rel(root / "models" / gt.SCRATCH_MODEL)
    ch1, ch2, ch3, ch4 = ("01_virtual_staining", "02_cellpose_ground_truth", "03_transfer_learning",
                          "04_distance_maps")
    retrain = (f"retrains it with chapter 1's recipe ({p.ch1.steps} steps in the {p.name} profile) and saves it, "
               "which adds chapter 1's DAPI training time")
    remake = ("makes them with chapter 2's recipe and saves them: Cellpose's pretrained 'nuclei' model when its "
              f"weights can be had, else chapter 2's from-scratch model ({scratch}), trained now if it is missing "
              "too")
    control = {"always": f"retrains it with chapter 1's recipe ({p.ch1.steps_map2} steps)",
               "if-saved": "skips the MAP2 control (this profile runs it only when the file exists)",
               "never": "never reads it (this profile runs no MAP2 control)"}[p.ch3.isl_control]
    deps = [
        Dependency(ch3, ch1, "ISL DAPI model (the pretext network)", dapi, "virtual_staining.get_isl_model",
                   retrain, r'get_isl_model\(\s*"dapi"', r'train_isl_model\(\s*TARGET',
                   work=("ch1", "ISL DAPI model")),
        Dependency(ch3, ch1, "ISL MAP2 model (the control pretext)", map2, "virtual_staining.get_isl_model",
                   control, r'get_isl_model\(\s*"map2"', r'train_isl_model\(\s*"map2"',
                   optional=p.ch3.isl_control != "always",
                   work=("ch1", "ISL MAP2 model") if p.ch3.isl_control == "always" else None),
        Dependency(ch3, ch2, "ISL field nucleus labels", isl_labels, "groundtruth.isl_nuclei_labels", remake,
                   r"isl_nuclei_labels\(", r"save_labels\(\s*gt\.ISL_LABELS"),
        Dependency(ch3, ch2, "Cellpose model trained from scratch", scratch, "groundtruth.default_cellpose_model",
                   "trains it on the BBBC039 training split with chapter 2's sizes (read only when the labels "
                   "are missing and the pretrained weights cannot be downloaded)",
                   r"isl_nuclei_labels\(", r"model_name=gt\.SCRATCH_MODEL", optional=True,
                   work=("ch2", "Cellpose from scratch")),
        Dependency(ch4, ch1, "ISL DAPI model (the pretext network)", dapi, "virtual_staining.get_isl_model",
                   retrain, r'get_isl_model\(\s*"dapi"', r'train_isl_model\(\s*TARGET',
                   work=("ch1", "ISL DAPI model")),
        Dependency(ch4, ch2, "ISL field nucleus labels", isl_labels, "groundtruth.isl_nuclei_labels", remake,
                   r"isl_nuclei_labels\(", r"save_labels\(\s*gt\.ISL_LABELS"),
        Dependency(ch4, ch2, "Cellpose model trained from scratch", scratch, "groundtruth.default_cellpose_model",
                   "trains it on the BBBC039 training split with chapter 2's sizes (read only when the labels "
                   "are missing and the pretrained weights cannot be downloaded)",
                   r"isl_nuclei_labels\(", r"model_name=gt\.SCRATCH_MODEL",
                   optional=True, work=("ch2", "Cellpose from scratch")),
        Dependency(ch4, ch2, "Cellpose labels of the BBBC039 test images", test_labels,
                   "groundtruth.load_saved_labels",
                   "prints that chapter 2's labels are missing and compares the other methods without the "
                   "Cellpose row", r"load_saved_labels\(\s*groundtruth\.BBBC039_TEST_LABELS",
                   r"save_labels\(\s*gt\.BBBC039_TEST_LABELS"),
    ]
    return deps


def remake_minutes(deps, profile: str, device_class: str = "t4", include_optional: bool = False) -> dict:
    """``{reader chapter: minutes}``: what a chapter adds when the earlier chapters' files are missing.

    The sum of the cost model's trainings that remake them (:attr:`Dependency.work`), once per
    file, for the files always read (and the optional ones with ``include_optional``).
    """
    out: dict = {}
    for d in deps:
        if d.work is None or (d.optional and not include_optional):
            continue
        out.setdefault(d.reader, {})[d.work] = work_minutes(*d.work, profile=profile, device_class=device_class)
    return {reader: round(sum(w.values()), 1) for reader, w in out.items()}


def code_of(md_path) -> str:
    """All code cells of a chapter, joined (what the dependency patterns are checked against)."""
    return "\n".join(c.source for c in _cells(md_path) if c.cell_type == "code")


def plot_dependency_map(deps=None, titles=None):
    """A small diagram: one box per chapter, an arrow per pair of chapters with the files it carries.

    Solid arrows: files always read; dashed: files read only in some profiles or when another
    file is missing (marked ``*``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import textwrap

    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyBboxPatch

    from .notebooks import CHAPTERS

    deps = dependency_map() if deps is None else deps
    titles = titles or {}
    w, h = 3.0, 1.0  # box size (data units)
    pos = {CHAPTERS[0]: (0.0, 2.2), CHAPTERS[1]: (0.0, 0.0), CHAPTERS[2]: (6.0, 2.2), CHAPTERS[3]: (6.0, 0.0),
           CHAPTERS[4]: (9.6, 1.1)}
    fig, ax = plt.subplots(figsize=(10.0, 4.2), layout="constrained")
    for stem, (x, y) in pos.items():
        n = int(stem[:2])
        name = textwrap.fill(titles.get(stem, stem[3:].replace("_", " ")), 26)
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05",
                                    fc="0.93" if n != 5 else "white", ec="0.3"))
        ax.text(x, y, f"Chapter {n}\n{name}", ha="center", va="center", fontsize=8.5)
    pairs: dict = {}
    for d in deps:
        pairs.setdefault((d.maker, d.reader), []).append(d)
    for (maker, reader), ds in pairs.items():
        (x0, y0), (x1, y1) = pos[maker], pos[reader]
        colour = "C0" if maker == CHAPTERS[0] else "C1"
        style = "-" if any(not d.optional for d in ds) else "--"
        a = (x0 + w / 2, y0 + (0.25 if y1 > y0 else -0.25 if y1 < y0 else 0.0))
        b = (x1 - w / 2, y1 + (-0.25 if y1 > y0 else 0.25 if y1 < y0 else 0.0))
        ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle="-|>", lw=1.5, ls=style, color=colour,
                                                        shrinkA=0, shrinkB=0))
        label = "\n".join(sorted({Path(d.path).name + (" *" if d.optional else "") for d in ds}))
        if y0 == y1:  # horizontal: above the upper arrow, below the lower one
            lx, ly, va = (a[0] + b[0]) / 2, a[1] + (0.12 if y0 > 1 else -0.12), "bottom" if y0 > 1 else "top"
        else:  # diagonal: near its start, where the two diagonals are still apart
            lx, ly, va = a[0] + 0.3 * (b[0] - a[0]), a[1] + 0.3 * (b[1] - a[1]), "center"
        ax.text(lx, ly, label, fontsize=7.5, ha="center", va=va, color=colour,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.9))
    x5, y5 = pos[CHAPTERS[4]]
    ax.text(x5, y5 - h / 2 - 0.15, "reads no file of\nanother chapter", ha="center", va="top", fontsize=7.5,
            color="0.3")
    ax.set_xlim(-w / 2 - 0.2, x5 + w / 2 + 0.2)
    ax.set_ylim(-1.5, 2.9)
    ax.set_aspect("auto")
    ax.axis("off")
    ax.legend(handles=[Line2D([0], [0], color="0.3", lw=1.5, label="always read"),
                       Line2D([0], [0], color="0.3", lw=1.5, ls="--",
                              label="* read only in some profiles, or when another file is missing")],
              loc="lower center", ncol=2, fontsize=7.5, frameon=False)
    ax.set_title("What each chapter reads from earlier ones (files under results/<profile>/)", fontsize=10)
    return fig


# ------------------------------------------------------------------------------ the course plan
@dataclass(frozen=True)
class Day:
    """One day of the course plan."""

    day: int
    chapters: tuple
    before_class: str
    in_class: str
    exercises: tuple
    compute_min: float | None


def course_plan(gpu_minutes: dict, cpu_minutes: dict | None = None, exercises_by_chapter: dict | None = None,
                deps=None, session_compute_min: float = 30.0, gpu_profile: str = "colab",
                cpu_profile: str = "quick", retrain_min: dict | None = None) -> list[Day]:
    """Five days, one chapter a day in the book's order, with what to run before class.

    Chapters 3 and 4 read what chapters 1 and 2 write, so the order follows the dependency
    map. A chapter whose run in ``gpu_profile`` on a Colab T4 (``gpu_minutes``, from the cost
    model) takes longer than ``session_compute_min`` is to be started before class; the others
    run in class. ``cpu_minutes`` (measured, the ``cpu_profile`` on a CPU) give the fallback for
    participants without a GPU. ``retrain_min`` (``{chapter: minutes}``) is what a chapter adds
    when it has to remake an earlier chapter's files.

    Returns
    -------
    list of Day
    """
    from .notebooks import CHAPTERS

    if len(CHAPTERS) != 5:
        raise ValueError("the five-day plan expects five chapters")
    deps = dependency_map() if deps is None else deps
    exercises_by_chapter = exercises_by_chapter or {}
    cpu_minutes = cpu_minutes or {}
    retrain_min = retrain_min or {}
    days = []
    for i, stem in enumerate(CHAPTERS, 1):
        g = gpu_minutes.get(stem)
        c = cpu_minutes.get(stem)
        needs = sorted({d.maker for d in deps if d.reader == stem and not d.optional})
        before = []
        if needs:
            before.append(("make sure chapter " if len(needs) == 1 else "make sure chapters ")
                          + " and ".join(str(int(m[:2])) for m in needs)
                          + " ran in the same results folder (on Colab: with DRIVE = True in every chapter), "
                          + "or the chapter remakes their files"
                          + (f", about {retrain_min[stem]:.0f} min more on a T4" if stem in retrain_min else ""))
        makers_for = sorted({int(d.reader[:2]) for d in deps if d.maker == stem and not d.optional})
        if makers_for:
            before.append("on Colab, set DRIVE = True: " + ("chapter " if len(makers_for) == 1 else "chapters ")
                          + " and ".join(map(str, makers_for)) + " read what this one saves")
        if g is not None and g > session_compute_min:
            before.append(f"start the {gpu_profile} run before class: its trainings take about {g:.0f} min on a T4")
            in_class = "discuss the results of the run made before class; do the exercises"
        else:
            in_class = (f"run it from the top ({gpu_profile} profile, about {g:.0f} min of training on a T4) "
                        "and do the exercises while it trains" if g is not None else "run it and do the exercises")
        if c is not None:
            in_class += f"; without a GPU, the {cpu_profile} profile ran in {c:.0f} min on the build's CPU"
        days.append(Day(i, (stem,), "; ".join(before) or "nothing", in_class,
                        tuple(exercises_by_chapter.get(stem, ())), g))
    return days


# ------------------------------------------------------------------------------ tables for the page
def _number(stem: str) -> int:
    return int(stem[:2])


def objectives_table(chapters=None, book_dir=None):
    """``(rows, columns)``: per chapter its learning objectives, one a row, and its exercises.

    The chapter's number, title and exercise count are on its first row only.
    """
    from .notebooks import CHAPTERS

    rows = []
    for stem in chapters or CHAPTERS:
        md = chapter_path(stem, book_dir)
        objectives = learning_objectives(md) or ["(no learning objectives stated in the chapter)"]
        ex = exercises(md)
        n_code = sum(e.kind == "code" for e in ex)
        first = [_number(stem), chapter_title(md).split(": ", 1)[-1],
                 f"{len(ex)}: {n_code} to code, {len(ex) - n_code} questions"]
        for k, text in enumerate(objectives):
            rows.append((first if k == 0 else ["", "", ""])[:2] + [plain_text(text).rstrip(";.")]
                        + [(first if k == 0 else ["", "", ""])[2]])
    return rows, ["chapter", "title", "after it, participants can", "exercises"]


def dependency_table(deps):
    """``(rows, columns)``: which chapter reads which file of which earlier chapter."""
    rows = [[_number(d.reader), d.what, d.path + (" *" if d.optional else ""), _number(d.maker)] for d in deps]
    return rows, ["chapter", "reads", "file under results/<profile>/", "made by chapter"]


def missing_table(deps):
    """``(rows, columns)``: per file (once), the function that reads it and what it does when the file is missing."""
    rows, seen = [], set()
    for d in deps:
        if d.path in seen:
            continue
        seen.add(d.path)
        readers = sorted({_number(e.reader) for e in deps if e.path == d.path})
        rows.append([d.path, f"{d.call}() " + d.if_missing,
                     " and ".join(map(str, readers))])
    return rows, ["file", "when it is missing, the reading function", "in chapter"]


#: Statuses whose total is the time of a whole run (an incomplete run's total is not).
COMPLETE = ("measured", "stale")


def times_table(measured: dict, estimates: dict, build_profile: str, build_device: str = "cpu"):
    """``(rows, columns)``: per chapter the measured minutes of this build and the cost model's estimates.

    ``measured`` is :func:`measured_times`; ``estimates`` is :func:`estimated_minutes`'s dict,
    whose ``(build_profile, build_device)`` entry (if present) is shown next to the measurement.
    The ``timings`` column gives the status only (:func:`timing_notes` has the reasons).
    """
    keys = [k for k in estimates if k != (build_profile, build_device)]
    rows = []
    for stem, t in measured.items():
        row = [_number(stem), None if t.total_s is None else round(t.total_s / 60, 1), t.status]
        if (build_profile, build_device) in estimates:
            row.append(estimates[(build_profile, build_device)].get(stem))
        row += [estimates[k].get(stem) for k in keys]
        rows.append(row)
    cols = ["chapter", "measured (min)", "timings"]
    if (build_profile, build_device) in estimates:
        cols.append(f"cost model: {build_profile}, {build_device.upper()}")
    cols += [f"cost model: {p}, {d.upper()}" for p, d in keys]
    return rows, cols


def timing_notes(measured: dict) -> list[str]:
    """One sentence per chapter whose timings are not a plain measurement (missing, incomplete, stale, foreign)."""
    return [f"Chapter {_number(stem)}: {t.status}: {t.note}." for stem, t in measured.items() if t.note]


def section_table(t: ChapterTimes):
    """``(rows, columns)`` of one chapter's :func:`section_times` (seconds per ``##`` section)."""
    return [[h, n, s] for h, n, s in t.sections], ["section", "code cells", "seconds"]


def plan_table(days):
    """``(rows, columns)`` of :func:`course_plan`'s days."""
    rows = [[d.day, ", ".join(f"{_number(c)}" for c in d.chapters), d.before_class, d.in_class,
             ", ".join(d.exercises) or "–"] for d in days]
    return rows, ["day", "chapter", "before class", "in class", "exercises"]


def _minutes_text(minutes) -> str:
    if minutes is None:
        return "an unknown time"
    if minutes >= 120:
        return f"about {minutes / 60:.0f} hours"
    return f"about {minutes:.0f} minutes"


def summary_values(measured: dict, estimates: dict, build_profile: str) -> dict:
    """Text for the page's prose (glued): totals of the measured and the estimated times, and what is missing.

    Only whole runs count as timed (:data:`COMPLETE`); an incomplete run is listed as missing.
    """
    got = {c: t for c, t in measured.items() if t.status in COMPLETE and t.total_s is not None}
    missing = [str(_number(c)) for c in measured if c not in got]
    out = {"build_profile": build_profile,
           "n_measured": f"{len(got)} of {len(measured)}",
           "missing": ("none" if not missing else ("chapter " if len(missing) == 1 else "chapters ")
                       + ", ".join(missing))}
    total_s = sum(t.total_s for t in got.values()) if got else None
    out["total_build"] = _minutes_text(total_s / 60) if total_s is not None else "an unknown time"
    for (p, d), m in estimates.items():
        out[f"total_{p}_{d}"] = _minutes_text(sum(v for v in m.values() if v is not None))
    return out
