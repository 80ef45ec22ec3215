"""The browser check's text detectors on small HTML fixtures (no browser), and one live run when Chromium is here."""
import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("browser_check", ROOT / "scripts" / "browser_check.py")
bc = importlib.util.module_from_spec(_spec)
sys.modules["browser_check"] = bc
_spec.loader.exec_module(bc)


def page(body: str) -> str:
    """A page shaped like a Jupyter Book one: navigation outside the article, content inside."""
    return (f"<html><head><script>var x = '| a | b |';</script></head><body>"
            f"<nav>| nav | bar | here |</nav><main><article>{body}</article></main></body></html>")


def cell(source: str, output: str) -> str:
    return (f'<div class="cell docutils container"><div class="cell_input docutils container">'
            f'<div class="highlight-ipython3 notranslate"><div class="highlight"><pre>{source}</pre></div></div></div>'
            f'<div class="cell_output docutils container">{output}</div></div>')


def stream(text: str) -> str:
    return f'<div class="output stream highlight-myst-ansi notranslate"><div class="highlight"><pre>{text}</pre></div></div>'


# ---------------------------------------------------------------------------- visible_lines
def test_visible_lines_reads_the_article_and_outputs_but_not_inputs_scripts_or_navigation():
    html = page("<h1>Title</h1><p>Some\n   prose   here.</p>"
                + cell('print("| in | the | input |")', stream("line one\nline two")))
    lines = bc.visible_lines(html)
    assert lines == ["Title", "Some prose here.", "line one", "line two"]


def test_visible_lines_skips_code_blocks_and_inline_code_outside_outputs_and_typeset_math():
    html = page('<p>Use <code class="docutils literal">{glue:text}`x`</code> and</p>'
                '<div class="highlight-md notranslate"><div class="highlight"><pre>| a | b |\n|---|---|</pre></div></div>'
                '<p>the value <mjx-container class="MathJax">\\(x\\)<mjx-assistive-mml>x</mjx-assistive-mml>'
                '</mjx-container> is typeset.</p>')
    assert bc.visible_lines(html) == ["Use and", "the value is typeset."]


def test_visible_lines_skip_source_code_shown_in_an_html_output_but_keep_printed_text():
    shown = ('<div class="output text_html"><style>pre { line-height: 125%; }</style><div class="highlight">'
             '<pre>def f():\n    return "/tmp/x"  # |---|</pre></div></div>')
    html = page(cell("viz.show_source(f)", shown) + cell("print(1)", stream("/tmp/y")))
    assert bc.visible_lines(html) == ["/tmp/y"]


def test_visible_lines_joins_rendered_table_cells_with_tabs_not_pipes():
    html = page("<table><thead><tr><th>a</th><th>b</th><th>c</th></tr></thead>"
                "<tbody><tr><td>1</td><td>2</td><td>3</td></tr></tbody></table>")
    lines = bc.visible_lines(html)
    assert [line.split() for line in lines] == [["a", "b", "c"], ["1", "2", "3"]]
    assert bc.find_markdown_table_rows(lines) == []


def test_visible_lines_of_a_fragment_without_body_reads_everything():
    assert bc.visible_lines("<p>| x | y | z |</p>") == ["| x | y | z |"]


# ---------------------------------------------------------------------------- detectors
def test_raw_markdown_table_is_found_in_an_output_and_in_prose_also_with_typographic_dashes():
    # what myst-nb made of IPython.display.Markdown text it could not parse as a table: one paragraph,
    # and smartquotes turned --- into em dashes
    out = cell("Markdown(rows)", "<p>| data set | loader | files |\n|\u2014|\u2014|\u2014|\n| <code>bbbc039</code> | x | 400 |</p>")
    printed = cell("print(table)", stream("| method | F1 |\n|---|---|\n| Bonte | 0.88 |"))
    hits = bc.find_markdown_table_rows(bc.visible_lines(page(out + printed)))
    assert len(hits) == 4  # the paragraph (one line on screen) and the three printed lines
    assert hits[0].startswith("| data set | loader")
    assert "|---|---|" in hits


def test_a_pipe_in_ordinary_text_is_not_a_table():
    lines = ["the loss | the metric", "a || b", "x |= y", "100%|##########| 18/18 [00:03<00:00]"]
    assert bc.find_markdown_table_rows(lines) == []


def test_raw_math_is_found_before_mathjax_ran_and_not_after():
    raw = page('<p>the shape <span class="math notranslate nohighlight">\\(p(s \\mid x)\\)</span> is learnt</p>'
               '<div class="math notranslate nohighlight">\\[ f(x) = 1 \\]</div><p>and $$x$$ too</p>')
    assert len(bc.find_raw_math(bc.visible_lines(raw))) == 3
    typeset = page('<p>the shape <span class="math notranslate nohighlight"><mjx-container class="MathJax CtxtMenu_Attached_0">'
                   '<mjx-math>p</mjx-math></mjx-container></span> is learnt</p>')
    assert bc.find_raw_math(bc.visible_lines(typeset)) == []
    in_code = page(cell('s = "\\\\(x\\\\)"  # $$', ""))
    assert bc.find_raw_math(bc.visible_lines(in_code)) == []


def test_dollar_math_holding_tex_is_raw_math_but_prices_are_not():
    hits = bc.find_raw_math(["the count loss $(\\sum_i p(z_i) - K)^2$ asks", "semi-axes $\\rho/\\sigma_k$"])
    assert len(hits) == 2
    assert bc.find_raw_math(["it costs $5 or $10 a month", "a $ sign", "x = 2 ** 3"]) == []


@pytest.mark.parametrize("line, frozen", [
    ("ISL-field points:   0%|          | 0/18 [00:00<?, ?point/s]", True),
    ("  0%|          | 0/220 [00:00<?, ?it/s]", True),
    ("training 0/18 [00:00<?, ?it/s]", True),
    ("synthetic points: 100%|##########| 18/18 [02:01<00:00,  6.7s/point]", False),
    ("steps:  10%|#         | 22/220 [00:10<01:30]", False),
    ("training: 220/220 steps in 192 s (loss 0.12)", False),
    ("10/18 [00:05<00:04]", False),
])
def test_progress_bars_at_zero_percent(line, frozen):
    assert bool(bc.find_zero_progress([line])) == frozen


def test_unrendered_roles_are_found_in_text_but_not_in_inline_code():
    html = page("<p>IoU {glue:text}`ch1_pcc` and {cite}`bonte2022`, see {doc}`intro` or {ref}`sec-x`.</p>"
                "<p>Written as <code>{glue:text}`name`</code> in the source.</p><p>{glue}`a` alone</p>")
    hits = bc.find_unrendered_roles(bc.visible_lines(html))
    assert len(hits) == 2
    assert bc.find_unrendered_roles(["a set {x} and {1, 2}", "f{glued}"]) == []


def test_tmp_paths_are_found_in_outputs_but_not_in_inputs():
    html = page(cell('open("/tmp/islteach-colab-constraints.txt", "w")',
                     stream("saved /tmp/islteach-out/model.pt\nsaved results/quick/models/isl_dapi.pt")))
    assert bc.find_tmp_paths(bc.visible_lines(html)) == ["saved /tmp/islteach-out/model.pt"]
    assert bc.find_tmp_paths(["/work/main/tmp/x", "a/tmp/b"]) == []


def test_text_problems_names_every_detector_that_fired_and_only_those():
    clean = page("<p>All good: F1 0.88 at IoU 0.7.</p>" + cell("x", stream("done in 3 s")))
    assert bc.text_problems(clean) == {}
    dirty = page("<p>| a | b | c |</p><p>{cite}`x`</p>" + cell("x", stream("  0%|   | 0/3 [00:00<?]")))
    assert set(bc.text_problems(dirty)) == {"raw Markdown table", "unrendered role", "progress bar at 0 %"}
    assert bc.format_hits("raw math", ["a", "b", "c", "d", "e"]) == [
        "raw math: 5 lines: 'a'; 'b'; 'c' (and 2 more)"]


def test_only_the_local_server_is_local():
    base = "http://127.0.0.1:8123"
    assert bc.is_local(base + "/book/intro.html", base)
    assert bc.is_local("data:image/png;base64,xx", base)
    assert not bc.is_local("https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js", base)
    assert not bc.is_local("http://127.0.0.1:81234/x", base)  # another port is another server
    assert not bc.is_local("http://127.0.0.1:8123.evil.example/x", base)


# ---------------------------------------------------------------------------- a live run
def _browser_or_skip():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    missing = "no chromium on this machine" if chromium is None else ""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = missing or "playwright is not installed (pip install -e '.[browser]')"
    if missing:
        if os.environ.get("ISLTEACH_REQUIRE_BOOK"):
            pytest.fail(f"ISLTEACH_REQUIRE_BOOK is set (CI) but {missing}")
        pytest.skip(missing)
    return chromium


@pytest.mark.book
def test_live_check_fails_a_page_that_asks_the_network_and_passes_a_clean_one(tmp_path, capsys):
    chromium = _browser_or_skip()
    (tmp_path / "index.html").write_text(page("<p>A clean page.</p>"))
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "ok.html").write_text(page("<p>Offline and fine.</p>"))
    (tmp_path / "book" / "cdn.html").write_text(
        '<html><head><script src="https://cdn.example.invalid/mathjax.js"></script></head>'
        '<body><main><article><p>The formula <span class="math">\\(x^2\\)</span>.</p></article></main></body></html>')
    rc = bc.main([str(tmp_path), "--chromium", chromium])
    out = capsys.readouterr().out
    assert rc == 1
    assert "ok   book/ok.html" in out and "ok   index.html" in out
    assert "FAIL book/cdn.html" in out
    assert "request leaving the local server (aborted): 1: https://cdn.example.invalid/mathjax.js" in out
    assert "raw math: 1 line" in out
    assert "browser check: 2 pages ok, 1 failed" in out
