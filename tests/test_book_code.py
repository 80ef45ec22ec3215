"""Every chapter's code, read as one program: no undefined name, no name the package does not have.

A rename in the package (``pretext`` -> ``virtual_staining``) that misses one call in a chapter
only shows when that cell runs, minutes into a build; these checks find it in a second.
"""
import ast
import importlib
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "book").glob("*.md"))


def _code(md: Path) -> str:
    nb = jupytext.read(md)
    lines = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            lines += [line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


@pytest.mark.parametrize("md", PAGES, ids=[p.stem for p in PAGES])
def test_chapter_code_has_no_undefined_names(md):
    from pyflakes import api, messages, reporter

    found = []

    class Collect(reporter.Reporter):
        def __init__(self):
            pass

        def flake(self, message):
            if isinstance(message, (messages.UndefinedName, messages.UndefinedLocal, messages.UndefinedExport)):
                found.append(str(message))

        def syntaxError(self, filename, msg, lineno, offset, text):
            found.append(f"syntax error line {lineno}: {msg}")

        def unexpectedError(self, filename, msg):
            found.append(msg)

    api.check(_code(md), md.name, Collect())
    assert not found, "\n".join(found)


@pytest.mark.parametrize("md", PAGES, ids=[p.stem for p in PAGES])
def test_chapter_uses_only_names_the_package_has(md):
    tree = ast.parse(_code(md))
    modules, bad = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("islteach"):
            mod = importlib.import_module(node.module)
            for a in node.names:
                if hasattr(mod, a.name):
                    obj = getattr(mod, a.name)
                else:
                    try:
                        obj = importlib.import_module(f"{node.module}.{a.name}")
                    except ImportError:
                        bad.append(f"from {node.module} import {a.name}")
                        continue
                if getattr(obj, "__name__", "").startswith("islteach") and hasattr(obj, "__file__"):
                    modules[a.asname or a.name] = obj
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("islteach"):
                    modules[a.asname or a.name.split(".")[0]] = importlib.import_module(a.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            if not hasattr(modules[node.value.id], node.attr):
                bad.append(f"{node.value.id}.{node.attr}")
    assert not bad, f"{md.name} uses names the package does not have: {sorted(set(bad))}"
