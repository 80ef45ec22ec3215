"""The package's structure: one module per chapter, shared modules below them, no upward or sideways imports."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "islteach"
CHAPTER_MODULES = {"virtual_staining": 1, "groundtruth": 2, "transfer": 3, "distance_maps": 4, "shape_prior": 5}
#: transfer.py also holds chapter 4's transfer experiments, which train chapter 4's models
ALLOWED = {("transfer", "distance_maps")}
#: the top layer: read every chapter (the instructor page's dependency map); nothing imports them
TOP_LAYER = {"course"}


def _imports(path: Path) -> set:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                if node.module:
                    out.add(node.module.split(".")[0])
                else:
                    out.update(a.name.split(".")[0] for a in node.names)
            elif node.module and node.module.startswith("islteach"):
                parts = node.module.split(".")
                out.update([parts[1]] if len(parts) > 1 else [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("islteach."):
                    out.add(a.name.split(".")[1])
    return out


MODULES = sorted(p.stem for p in PKG.glob("*.py") if p.stem != "__init__")


def test_each_chapter_has_its_module():
    assert set(CHAPTER_MODULES) <= set(MODULES)
    assert not {"pretext", "experiments", "instance"} & set(MODULES), "old module names are back"


@pytest.mark.parametrize("module", MODULES)
def test_no_upward_or_sideways_imports(module):
    imported = _imports(PKG / f"{module}.py") & set(MODULES)
    chapters = imported & set(CHAPTER_MODULES)
    if module in TOP_LAYER:
        return
    if module not in CHAPTER_MODULES:
        assert not chapters, f"shared module {module} imports chapter module(s) {sorted(chapters)}"
    else:
        bad = {c for c in chapters if c != module and (module, c) not in ALLOWED}
        assert not bad, f"chapter module {module} imports another chapter's module {sorted(bad)}"


CHECKS_PKG = PKG / "checks"


def test_no_module_imports_the_exercise_checks():
    """islteach.checks is the top layer (it tests learners' code against the chapter modules): nothing below imports it."""
    for module in MODULES:
        imported = _imports(PKG / f"{module}.py")
        assert "checks" not in imported, f"{module} imports islteach.checks"
        assert not (TOP_LAYER - {module}) & imported, f"{module} imports a top-layer module"


@pytest.mark.parametrize("path", sorted(CHECKS_PKG.glob("ch*.py")), ids=lambda p: p.stem)
def test_a_chapters_checks_use_only_its_own_chapter_module(path):
    number = int(path.stem[2:])
    own = {m for m, n in CHAPTER_MODULES.items() if n == number}
    tree = ast.parse(path.read_text())
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if node.level == 2:
                used.update([parts[0]] if parts[0] else [])
            elif parts[0] == "islteach" and len(parts) > 1:
                used.add(parts[1])
            elif parts[0] == "islteach":
                used.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            used.update(a.name.split(".")[1] for a in node.names if a.name.startswith("islteach."))
    other = (used & set(CHAPTER_MODULES)) - own
    assert not other, f"{path.name} uses another chapter's module {sorted(other)}"
