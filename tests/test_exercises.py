"""The exercises: one source for the book and both Colab notebooks, each code exercise with a check.

- the notebook linter (:func:`islteach.notebooks.lint`) on every chapter and on broken sources;
- every solution passes its check, every stub fails it with a hint, and the fallback works;
- the student notebooks are in sync and contain no solution code.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
import pytest
from fixtures import MYST_HEADER, chapter_exercises, exercise_function

from islteach import checks
from islteach.notebooks import CHAPTERS, exercises, lint, render_notebook

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"


CODE = [pytest.param(stem, ex, id=label)
        for stem in CHAPTERS for label, ex in chapter_exercises(stem).items()]


@pytest.mark.parametrize("stem", CHAPTERS)
def test_chapter_passes_the_notebook_linter(stem):
    problems = lint(BOOK / f"{stem}.md")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("stem", CHAPTERS)
def test_chapter_has_three_exercises_of_both_kinds(stem):
    exs = exercises(BOOK / f"{stem}.md")
    assert len(exs) >= 3, f"{stem}: {len(exs)} exercises, at least 3 expected"
    kinds = {ex["kind"] for ex in exs}
    assert kinds >= {"code", "question"}, f"{stem}: exercise kinds {kinds}: needs code and question exercises"


def test_every_check_is_registered_and_used_once():
    used = [ex.values[1]["label"] for ex in CODE]
    assert sorted(used) == sorted(set(used))
    assert set(used) <= set(checks.CHECKS), f"checks missing for {sorted(set(used) - set(checks.CHECKS))}"
    assert set(checks.CHECKS) <= set(used), f"registered checks no chapter uses: {sorted(set(checks.CHECKS) - set(used))}"


@pytest.mark.parametrize("stem, ex", CODE)
def test_solution_passes_its_check(stem, ex):
    report = checks.evaluate(ex["label"], exercise_function(ex, "solution"))
    assert report.passed, str(report)
    assert len(report.cases) >= 2, f"{ex['label']}: a check needs at least 2 cases"


@pytest.mark.parametrize("stem, ex", CODE)
def test_stub_fails_its_check_with_a_hint(stem, ex, capsys):
    label = ex["label"]
    stub = exercise_function(ex, "stub")
    report = checks.evaluate(label, stub)
    assert not report.passed
    if any("NotImplementedError" in src for src in ex["stub"]):  # the stub raises it: "not written yet"
        assert report.not_done, f"{label}: the stub raises NotImplementedError, yet its report is\n{report}"
    assert "hint:" in str(report), f"{label}: the stub's report gives no hint:\n{report}"
    # the chapter goes on with the package's implementation, and says so
    assert checks.run(label, stub) is checks.reference(label)
    assert "islteach's implementation" in capsys.readouterr().out


@pytest.mark.parametrize("stem, ex", CODE)
def test_reference_passes_its_check(stem, ex):
    label = ex["label"]
    assert checks.evaluate(label, checks.reference(label)).passed


@pytest.mark.parametrize("stem", CHAPTERS)
def test_student_notebook_is_in_sync_and_has_no_solution_code(stem):
    target = ROOT / "notebooks" / "student" / f"{stem}.ipynb"
    assert target.exists(), "run: python scripts/make_notebooks.py"
    text = render_notebook(BOOK / f"{stem}.md", student=True)
    assert target.read_text() == text, f"{target} is out of date: run python scripts/make_notebooks.py"
    nb = nbformat.reads(text, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert not any("solution" in c.metadata.get("tags", []) for c in nb.cells)
    for ex in exercises(BOOK / f"{stem}.md"):
        for src in ex["solution"]:
            assert src.strip() not in code, f"{ex['label']}: solution code in the student notebook"
        for src in ex["stub"]:
            assert src.strip() in code, f"{ex['label']}: its stub is missing from the student notebook"
    solutions = nbformat.reads(render_notebook(BOOK / f"{stem}.md"), as_version=4)
    sol_code = [c.source for c in solutions.cells if c.cell_type == "code"]
    for ex in exercises(BOOK / f"{stem}.md"):
        for src in ex["stub"]:
            assert src.strip() not in sol_code, f"{ex['label']}: the stub is in the solution notebook"


@pytest.mark.parametrize("stem", CHAPTERS)
def test_colab_notebooks_show_exercises_as_plain_markdown(stem):
    for student in (False, True):
        nb = nbformat.reads(render_notebook(BOOK / f"{stem}.md", student=student), as_version=4)
        md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        for directive in ("{exercise", "{solution", "{doc}", "{ref}"):
            assert directive not in md, f"{directive} left in a {'student' if student else 'solution'} notebook"
        assert "✏️ Exercise" in md


# --- the linter refuses what leaks or breaks ---------------------------------------------------
HEADER = MYST_HEADER + "# T\n"

GOOD = textwrap.dedent("""\
    ````{exercise-start} Double
    :label: ex-09-double
    ````

    ```{code-cell} ipython3
    :tags: [stub]
    def double(x):
        raise NotImplementedError
    ```

    ````{exercise-end}
    ````

    ````{solution-start} ex-09-double
    :class: dropdown
    ````

    ```{code-cell} ipython3
    :tags: [solution]
    def double(x):
        return 2 * x
    ```

    ````{solution-end}
    ````

    ```{code-cell} ipython3
    :tags: [check]
    double = checks.run("ex-09-double", double)
    ```

    :::{exercise} Predict
    :label: ex-09-predict
    What is double(2)?
    :::

    :::{solution} ex-09-predict
    :class: dropdown
    Four.
    :::
    """)


def _lint(tmp_path, body):
    path = tmp_path / "09_test.md"
    path.write_text(HEADER + body)
    return lint(path)


def test_linter_accepts_a_well_formed_chapter(tmp_path):
    assert _lint(tmp_path, GOOD) == []


@pytest.mark.parametrize("broken, expected", [
    (GOOD.replace(":tags: [solution]", ":tags: [soluton]"), "unknown tag"),
    (GOOD.replace(":tags: [stub]", ":tags: [stub]\n:editable: false"), "unknown metadata"),
    (GOOD.replace(":::{solution} ex-09-predict", ":::{note}"), "without a solution"),
    (GOOD.replace('double = checks.run("ex-09-double", double)', "print(double(2))"), "check cell"),
    (GOOD.replace("````{solution-end}\n````\n", ""), "never closed"),
    (GOOD.replace(":label: ex-09-double", ":label: ex-03-double").replace("ex-09-double", "ex-03-double"),
     "expected 'ex-09-"),
    (GOOD.replace(":tags: [stub]\n", ""), "must be tagged 'stub'"),
    (GOOD.replace(":class: dropdown\n````", "````", 1), "dropdown"),
])
def test_linter_refuses(tmp_path, broken, expected):
    problems = _lint(tmp_path, broken)
    assert any(expected in p for p in problems), problems


def test_student_notebook_of_a_tag_typo_would_leak(tmp_path):
    """Why the linter refuses unknown tags: a mistyped solution tag outside a block stays in."""
    path = tmp_path / "09_test.md"
    path.write_text(HEADER + GOOD)
    nb = nbformat.reads(render_notebook(path, student=True), as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "return 2 * x" not in code and "raise NotImplementedError" in code
    sol = nbformat.reads(render_notebook(path), as_version=4)
    md = "\n".join(c.source for c in sol.cells if c.cell_type == "markdown")
    assert "<details>" in md and "Four." in md
