"""The book as a whole: table of contents, chapter set-up cells, generated Colab notebooks, built HTML."""
import os
import re
from pathlib import Path

import jupytext
import pytest

from islteach.colab import SETUP_CELL, colab_url
from islteach.notebooks import CHAPTERS, render_notebook

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"


def test_every_chapter_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    for stem in CHAPTERS:
        assert f"book/{stem}" in toc
        assert (ROOT / "book" / f"{stem}.md").exists()


@pytest.mark.parametrize("stem", CHAPTERS)
def test_chapter_starts_with_the_shared_setup_cell_and_a_colab_badge(stem):
    nb = jupytext.read(ROOT / "book" / f"{stem}.md")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source.strip() == SETUP_CELL.strip(), "cell 1 must be islteach.colab.SETUP_CELL"
    assert "setup_chapter(" in code[1].source, "cell 2 must call islteach.provenance.setup_chapter"
    head = "\n".join(c.source for c in nb.cells[:2])
    assert colab_url(stem) in head and colab_url(stem, student=True) in head


@pytest.mark.parametrize("stem", CHAPTERS)
def test_generated_colab_notebook_is_in_sync_with_the_chapter(stem):
    target = ROOT / "notebooks" / f"{stem}.ipynb"
    assert target.exists(), "run: python scripts/make_notebooks.py"
    assert target.read_text() == render_notebook(ROOT / "book" / f"{stem}.md"), (
        f"notebooks/{stem}.ipynb is out of date: run python scripts/make_notebooks.py"
    )


def test_generated_notebooks_have_no_outputs():
    import nbformat

    for stem in CHAPTERS:
        nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None


def _built_or_skip():
    if not (HTML / "index.html").exists():
        if os.environ.get("ISLTEACH_REQUIRE_BOOK"):
            pytest.fail(f"ISLTEACH_REQUIRE_BOOK is set but {HTML} has no built book")
        pytest.skip("the book is not built (run: jupyter-book build . -W -n --keep-going)")


@pytest.mark.book
@pytest.mark.parametrize("stem", CHAPTERS)
def test_built_chapter_page_has_executed_outputs_and_no_errors(stem):
    _built_or_skip()
    page = HTML / "book" / f"{stem}.html"
    assert page.exists(), f"{page} missing from the built book"
    html = page.read_text()
    assert html.count('class="cell_output') >= 1, "no executed output in the page"
    assert "islteach — " in html, "the provenance panel of setup_chapter is missing"
    assert not re.search(r'class="[^"]*output (error|traceback)', html), "error output in the page"
    assert "Traceback (most recent call last)" not in html
    figures = re.findall(r'<img[^>]+src="[^"]*_images/[^"]+\.png"', html)
    assert len(figures) >= 3, (
        f"only {len(figures)} figures in the page: are plots rendered? (MPLBACKEND=Agg in the "
        "kernel's environment suppresses the inline backend)"
    )


@pytest.mark.book
def test_built_book_has_the_appendix_pages():
    _built_or_skip()
    for name in ("intro", "appendix_data", "appendix_execution"):
        assert (HTML / "book" / f"{name}.html").exists()


@pytest.mark.parametrize("stem", CHAPTERS)
def test_colab_notebooks_have_no_jupyter_book_roles(stem):
    """Colab renders plain markdown: a {glue:text} or {cite} role would show as raw text there."""
    import nbformat

    nb = nbformat.reads(render_notebook(ROOT / "book" / f"{stem}.md"), as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "{glue" not in text and "{cite" not in text
    book = (ROOT / "book" / f"{stem}.md").read_text()
    if "{cite}" in book:
        assert " et al. 20" in text  # citations became author-year text


def test_glue_prints_name_and_value_where_myst_nb_is_missing(monkeypatch, capsys):
    import builtins

    from islteach import viz

    real_import = builtins.__import__

    def no_myst_nb(name, *args, **kwargs):
        if name.startswith("myst_nb"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_myst_nb)
    assert viz.glue("ch1_steps", 220) is None
    assert capsys.readouterr().out == "ch1_steps = 220\n"
