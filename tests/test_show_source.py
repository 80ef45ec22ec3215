"""Specifications for islteach.viz.show_source: a function's code without its docstring."""
import pytest

from islteach import viz


class Example:
    """A class docstring."""

    def method(self, x):
        """A method docstring
        over two lines."""

        # a comment that stays
        return x + 1  # and this one

    def only_doc(self):
        """Nothing else."""


def test_show_source_drops_the_docstrings_and_keeps_code_and_comments(capsys):
    viz.show_source(Example)
    out = capsys.readouterr().out
    assert "docstring" not in out and "Nothing else" not in out
    assert "# a comment that stays" in out and "return x + 1  # and this one" in out
    assert out.startswith("class Example:")
    compile(out, "<show_source>", "exec")  # still valid Python (a docstring-only body becomes ...)


def test_show_source_of_a_method_is_dedented_and_a_non_function_is_rejected(capsys):
    viz.show_source(Example.method)
    out = capsys.readouterr().out
    assert out.startswith("def method(self, x):") and "docstring" not in out
    with pytest.raises(ValueError, match="obj"):
        viz.show_source(42)
