"""islteach.course: chapter sections, per-section timings, the dependency map and the course plan."""
import json
import os
import re
import time
from pathlib import Path

import pytest
from fixtures import MYST_HEADER as HEADER

from islteach import course
from islteach.notebooks import CHAPTERS

ROOT = Path(__file__).resolve().parents[1]

#: A small chapter: 7 code cells, set-up in cells 0 and 1, three sections with code, one heading in a fence.
SMALL = HEADER + """
# Chapter 9: A small chapter

Intro text.

## Learning objectives

After this chapter you can

* write a **distance map** with `ndi.distance_transform_edt`
  one nucleus at a time;
* read the count loss $(\\sum_i p(z_i) - K)^2$ ({cite}`bonte2022`).

## Time

```{code-cell} ipython3
import sys
```

```{code-cell} ipython3
from islteach.provenance import setup_chapter
P = setup_chapter("09_small")
```

## Data

```{code-cell} ipython3
x = 1
```

```{code-cell} ipython3
y = 2
```

An example of the source format, not a heading:

````md
## Not a section
```{code-cell} ipython3
z = 0
```
````

## Training

````{exercise-start} Write the target
:label: ex-09-target
````

```{code-cell} ipython3
:tags: [stub]
def f():
    raise NotImplementedError
```

````{exercise-end}
````

### A subsection stays in its section

```{code-cell} ipython3
w = 4
```

:::{exercise} Which error dominates?
:label: ex-09-read
Look at the figure.
:::

## Provenance

```{code-cell} ipython3
print("done")
```
"""


@pytest.fixture
def small(tmp_path):
    md = tmp_path / "09_small.md"
    md.write_text(SMALL)
    old = time.time() - 3600
    os.utime(md, (old, old))  # written an hour before any timings file of the tests
    return md


@pytest.fixture
def results(tmp_path, monkeypatch):
    root = tmp_path / "results"
    monkeypatch.setenv("ISLTEACH_RESULTS_DIR", str(root))
    monkeypatch.delenv("ISLTEACH_SMOKE", raising=False)
    return root


def write_timings(results, cells, first_cell=2, chapter="09_small", profile="quick"):
    path = results / profile / "timings" / f"{chapter}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"chapter": chapter, "profile": profile, "first_cell": first_cell, "cells": cells}))
    return path


# ---------------------------------------------------------------------------- chapter structure
def test_sections_list_each_h2_heading_with_its_code_cells_and_ignore_headings_in_fences(small):
    secs = course.sections(small)
    assert [(s.heading, s.cells) for s in secs] == [
        ("Learning objectives", ()), ("Time", (0, 1)), ("Data", (2, 3)), ("Training", (4, 5)), ("Provenance", (6,))]
    assert course.n_code_cells(small) == 7
    assert course.setup_cell_index(small) == 1
    assert course.chapter_title(small) == "Chapter 9: A small chapter"


def test_code_cells_before_the_first_section_belong_to_the_title(tmp_path):
    md = tmp_path / "x.md"
    md.write_text(HEADER + "\n# Title\n\n```{code-cell} ipython3\na = 1\n```\n\n## Next\n\n```{code-cell} ipython3\nb = 2\n```\n")
    assert [(s.heading, s.cells) for s in course.sections(md)] == [("Title", (0,)), ("Next", (1,))]


def test_learning_objectives_join_continuation_lines_and_plain_text_drops_markup(small):
    obj = course.learning_objectives(small)
    assert obj == ["write a **distance map** with `ndi.distance_transform_edt` one nucleus at a time;",
                   "read the count loss $(\\sum_i p(z_i) - K)^2$ ({cite}`bonte2022`)."]
    assert course.plain_text(obj[0]) == "write a distance map with ndi.distance_transform_edt one nucleus at a time;"
    assert course.plain_text(obj[1]) == "read the count loss (Σ_i p(z_i) - K)^2 ((Bonte et al. 2022))."
    assert course.plain_text("semi-axes $\\rho/\\sigma_k(L)$, centre $-L^{-1}t$") == "semi-axes ρ/σ_k(L), centre −L^-1t"


def test_exercises_are_found_with_their_kind(small):
    assert course.exercises(small) == [course.Exercise("ex-09-target", "Write the target", "code"),
                                       course.Exercise("ex-09-read", "Which error dominates?", "question")]


@pytest.mark.parametrize("stem", CHAPTERS)
def test_every_chapter_has_sections_with_code_and_a_setup_cell(stem):
    md = course.chapter_path(stem)
    secs = course.sections(md)
    assert sum(len(s.cells) for s in secs) == course.n_code_cells(md)
    assert course.setup_cell_index(md) == 1  # the timings map from there
    assert len([s for s in secs if s.cells]) >= 4


# ---------------------------------------------------------------------------- timings
def test_cell_times_map_cells_from_first_cell_minus_one():
    t = {"first_cell": 2, "cells": [0.5, 1.0, 2.0]}
    assert course.cell_times(t) == {1: 0.5, 2: 1.0, 3: 2.0}
    assert course.cell_times({"first_cell": 3, "cells": [0.5]}, setup_index=1) == {1: 0.5}
    with pytest.raises(ValueError, match="first_cell"):
        course.cell_times({"first_cell": 0, "cells": []})


def test_section_times_sum_the_cells_of_each_section(small, results):
    write_timings(results, [0.5, 1.0, 2.0, 3.0, 4.0, 5.0])  # code cells 1 .. 6
    t = course.section_times("09_small", "quick", md_path=small)
    assert t.status == "measured" and t.note == ""
    assert t.sections == [("Set-up", 2, 0.5), ("Data", 2, 3.0), ("Training", 2, 7.0), ("Provenance", 1, 5.0)]
    assert t.total_s == 15.5
    assert t.written is not None


def test_a_missing_timings_file_gives_no_numbers_and_says_so_without_an_absolute_path(small, results):
    t = course.section_times("09_small", "quick", md_path=small)
    assert t.status == "missing" and t.total_s is None
    assert all(s is None for _, _, s in t.sections)
    assert "no timings file" in t.note and "quick/timings/09_small.json" in t.note
    assert not re.search(r"(^|\s|\()/", t.note), t.note  # no /tmp/... or /home/... in the page


def test_an_interrupted_run_is_incomplete_and_its_unreached_sections_have_no_time(small, results):
    write_timings(results, [0.5, 1.0, 2.0])  # cells 1, 2, 3: stopped in "Data"
    t = course.section_times("09_small", "quick", md_path=small)
    assert t.status == "incomplete" and "after code cell 4 of 7" in t.note
    assert t.sections == [("Set-up", 2, 0.5), ("Data", 2, 3.0), ("Training", 2, None), ("Provenance", 1, None)]


def test_timings_that_do_not_fit_the_chapter_or_predate_its_source_are_stale(small, results):
    write_timings(results, [0.1] * 9)  # more cells than the chapter has
    assert course.section_times("09_small", "quick", md_path=small).status == "stale"
    write_timings(results, [0.1] * 6)
    now = time.time() + 60
    os.utime(small, (now, now))  # the chapter was edited after it was timed
    t = course.section_times("09_small", "quick", md_path=small)
    assert t.status == "stale" and "edited" in t.note


def test_a_run_after_other_cells_in_the_same_kernel_still_maps_by_the_setup_cell(small, results):
    write_timings(results, [0.5, 1.0, 2.0, 3.0, 4.0, 5.0], first_cell=4)
    t = course.section_times("09_small", "quick", md_path=small)
    assert t.status == "measured" and t.note == ""
    assert t.sections[1] == ("Data", 2, 3.0)


def test_summary_and_times_table_name_the_chapters_without_timings(small, results):
    write_timings(results, [0.5, 1.0, 2.0, 3.0, 4.0, 5.0])
    measured = {"09_small": course.section_times("09_small", "quick", md_path=small),
                "10_other": course.ChapterTimes("10_other", "quick", "missing", "no timings file (x)")}
    est = {("quick", "cpu"): {"09_small": 1.0, "10_other": 2.0}, ("colab", "t4"): {"09_small": 30.0, "10_other": 95.0}}
    s = course.summary_values(measured, est, "quick")
    assert s["missing"] == "chapter 10" and s["n_measured"] == "1 of 2"
    assert s["total_build"] == "about 0 minutes"
    assert s["total_colab_t4"] == "about 2 hours"
    rows, cols = course.times_table(measured, est, "quick")
    assert cols == ["chapter", "measured (min)", "timings", "cost model: quick, CPU", "cost model: colab, T4"]
    assert rows[0] == [9, round(15.5 / 60, 1), "measured", 1.0, 30.0] and rows[1][1:3] == [None, "missing"]
    assert course.timing_notes(measured) == ["Chapter 10: missing: no timings file (x)."]


def test_an_incomplete_run_does_not_count_as_timed(small, results):
    write_timings(results, [0.5, 1.0, 2.0])
    measured = {"09_small": course.section_times("09_small", "quick", md_path=small)}
    s = course.summary_values(measured, {}, "quick")
    assert s["missing"] == "chapter 9" and s["n_measured"] == "0 of 1" and s["total_build"] == "an unknown time"


# ---------------------------------------------------------------------------- dependencies
def test_the_dependency_map_matches_the_chapters_code():
    deps = course.dependency_map("quick")
    assert {d.reader for d in deps} == {"03_transfer_learning", "04_distance_maps"}
    assert {d.maker for d in deps} == {"01_virtual_staining", "02_cellpose_ground_truth"}
    for d in deps:
        reader = course.code_of(course.chapter_path(d.reader))
        maker = course.code_of(course.chapter_path(d.maker))
        assert re.search(d.reads, reader), f"{d.reader} no longer reads {d.path} with {d.call}"
        assert re.search(d.made_by, maker), f"{d.maker} no longer writes {d.path}"
        assert not d.path.startswith("/") and d.path.count("/") == 1
    assert "05_shape_priors" not in {d.reader for d in deps}


def test_dependency_tables_list_each_read_and_each_file_once():
    deps = course.dependency_map("quick")
    rows, cols = course.dependency_table(deps)
    assert len(rows) == len(deps) and cols[0] == "chapter"
    assert [r[0] for r in rows] == [3, 3, 3, 3, 4, 4, 4, 4]
    rows, cols = course.missing_table(deps)
    files = [r[0] for r in rows]
    assert len(files) == len(set(files)) == len({d.path for d in deps})
    by_file = {r[0]: r for r in rows}
    assert by_file["models/isl_dapi.pt"][2] == "3 and 4"
    assert by_file["labels/bbbc039_test_cellpose.npz"][1].startswith("groundtruth.load_saved_labels() prints")


def test_dependency_paths_are_where_the_package_writes_them(results):
    from islteach import groundtruth
    from islteach.provenance import results_dir
    from islteach.virtual_staining import isl_model_path

    deps = course.dependency_map("quick")
    paths = {d.path for d in deps}
    assert isl_model_path("dapi", "quick").relative_to(results_dir("quick")).as_posix() in paths
    assert f"labels/{groundtruth.ISL_LABELS}.npz" in paths and f"labels/{groundtruth.BBBC039_TEST_LABELS}.npz" in paths


def test_the_map2_control_is_optional_where_the_profile_runs_it_only_if_saved():
    quick = {d.path: d for d in course.dependency_map("quick") if d.reader.startswith("03")}
    colab = {d.path: d for d in course.dependency_map("colab") if d.reader.startswith("03")}
    assert quick["models/isl_map2.pt"].optional and "skips" in quick["models/isl_map2.pt"].if_missing
    assert not colab["models/isl_map2.pt"].optional and colab["models/isl_map2.pt"].work == ("ch1", "ISL MAP2 model")


def test_the_dependency_figure_has_one_arrow_per_pair_of_chapters():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    deps = course.dependency_map("quick")
    fig = course.plot_dependency_map(deps)
    arrows = [c for c in fig.axes[0].get_children() if type(c).__name__ == "Annotation"]
    assert len(arrows) == len({(d.maker, d.reader) for d in deps}) == 4
    plt.close(fig)


# ---------------------------------------------------------------------------- the plan
def test_course_plan_puts_long_runs_before_class_and_names_the_earlier_chapters():
    deps = course.dependency_map("colab")
    gpu = dict(zip(CHAPTERS, [50.0, 2.0, 14.0, 14.0, 11.0]))
    cpu = dict(zip(CHAPTERS, [9.0, 6.0, 3.0, 11.0, 4.0]))
    days = course.course_plan(gpu, cpu, {CHAPTERS[0]: ["ex-01-a"]}, deps, session_compute_min=30,
                              retrain_min={CHAPTERS[2]: 12.0})
    assert [d.day for d in days] == [1, 2, 3, 4, 5] and [d.chapters for d in days] == [(c,) for c in CHAPTERS]
    assert "before class" in days[0].before_class and "50 min" in days[0].before_class
    assert "run it from the top" in days[1].in_class and "6 min" in days[1].in_class
    assert "chapters 1 and 2" in days[2].before_class and "about 12 min more" in days[2].before_class
    assert "DRIVE = True: chapters 3 and 4" in days[1].before_class
    assert days[4].before_class == "nothing"
    assert days[0].exercises == ("ex-01-a",)
    rows, cols = course.plan_table(days)
    assert cols[0] == "day" and rows[0][-1] == "ex-01-a" and rows[1][-1] == "–"


@pytest.mark.slow
def test_remaking_chapter_1s_model_costs_its_training_in_the_cost_model():
    deps = course.dependency_map("quick")
    m = course.remake_minutes(deps, "quick", "cpu")
    dapi = course.work_minutes("ch1", "ISL DAPI model", "quick", "cpu")
    assert m == {"03_transfer_learning": dapi, "04_distance_maps": dapi}  # MAP2 is optional in quick
    assert dapi > 0


# ---------------------------------------------------------------------------- the page
def test_the_instructor_page_is_in_the_table_of_contents_and_glues_every_value_it_quotes():
    toc = (ROOT / "_toc.yml").read_text()
    assert "book/instructor" in toc
    assert toc.index("book/instructor") < toc.index("book/appendix_data")
    md = (ROOT / "book" / "instructor.md").read_text()
    quoted = set(re.findall(r"\{glue:text\}`([^`]+)`", md))
    glued = set(re.findall(r'viz\.glue\("(\w+)"', md))
    for loop in re.findall(r'for key in \(([^)]*)\):\s*\n\s*viz\.glue\(f"instr_\{key\}"', md):
        glued |= {"instr_" + k for k in re.findall(r'"(\w+)"', loop)}
    assert quoted and quoted <= glued, f"quoted but never glued: {quoted - glued}"
    assert "import islteach" in md or "from islteach import course" in md
