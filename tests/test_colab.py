"""The Colab set-up cell and the repository address: one source, the right pip commands, no stray addresses."""
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from islteach import colab
from islteach.notebooks import CHAPTERS, sync_setup_cell

ROOT = Path(__file__).resolve().parents[1]


def _run_setup_cell(monkeypatch, capsys, cuda: bool):
    """Execute SETUP_CELL as Colab would, with pip replaced by a recorder (nothing is installed)."""
    calls, events = [], []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))

    def fake_run(cmd, check=False, **kw):
        events.append(("pip", capsys.readouterr().out))
        calls.append(list(cmd))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    if cuda:
        props = types.SimpleNamespace(name="Tesla T4", total_memory=15 * 2**30)
        monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props)
    exec(compile(colab.SETUP_CELL, "setup-cell", "exec"), {"__name__": "__main__"})
    return calls, events, capsys.readouterr().out


def test_setup_cell_installs_without_touching_colabs_packages(monkeypatch, capsys, tmp_path):
    calls, events, out = _run_setup_cell(monkeypatch, capsys, cuda=True)
    assert len(calls) == 2
    first, second = calls
    # 1. cellpose and islteach without their declared dependencies (cellpose pins numpy<2.1)
    assert "--no-deps" in first and colab.CELLPOSE in first and colab.install_spec() in first
    # 2. the missing dependencies, under constraints that pin the VM's own versions
    i = second.index("-c")
    constraints = Path(second[i + 1]).read_text().split()
    from importlib.metadata import version

    assert f"numpy=={version('numpy')}" in constraints
    assert f"torch=={version('torch')}" in constraints
    assert all(c.split("==")[0] in colab.PROTECTED for c in constraints)
    assert set(colab.COLAB_EXTRA) <= set(second)
    assert "--no-deps" not in second
    # it says what it does before pip runs, and never restarts the kernel
    assert "Installing islteach" in events[0][1] and "Kept as Colab installed them" in events[0][1]
    assert "os.kill" not in colab.SETUP_CELL and "restart" not in out.lower()
    assert "GPU: Tesla T4, 15.0 GiB" in out


def test_setup_cell_warns_without_a_gpu_and_installs_nothing_outside_colab(monkeypatch, capsys):
    _, _, out = _run_setup_cell(monkeypatch, capsys, cuda=False)
    assert "No GPU" in out and "T4 GPU" in out
    monkeypatch.delitem(sys.modules, "google.colab")
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    exec(compile(colab.SETUP_CELL, "setup-cell", "exec"), {"__name__": "__main__"})
    assert calls == []


def test_setup_cell_is_built_from_the_one_address():
    assert colab.install_spec() == f"islteach @ git+{colab.REPO_URL}@{colab.BRANCH}"
    assert colab.install_spec() in colab.SETUP_CELL
    assert colab.colab_url("01_virtual_staining").startswith(
        "https://colab.research.google.com/github/" + colab.REPO_URL.removeprefix("https://github.com/"))


@pytest.mark.parametrize("stem", CHAPTERS)
def test_chapters_carry_the_generated_setup_cell(stem):
    text = (ROOT / "book" / f"{stem}.md").read_text()
    assert sync_setup_cell(text) == text, "run: python scripts/make_notebooks.py"


def _tracked_text_files():
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in out.split():
        p = ROOT / name
        if p.suffix in {".py", ".md", ".yml", ".yaml", ".toml", ".ipynb", ".txt", ".cfg", ".json", ""} and p.is_file():
            yield p


def test_every_file_names_the_same_repository():
    repo = colab.REPO_URL.removeprefix("https://github.com/")
    pattern = re.compile(r"github\.com/([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]*islteach[A-Za-z0-9_.-]*)")
    branch = re.compile(r"colab\.research\.google\.com/github/[^/\s]+/[^/\s]+/blob/([^/\s]+)/")
    bad = []
    for p in _tracked_text_files():
        text = p.read_text(errors="replace")
        for m in pattern.finditer(text):
            if m.group(1).removesuffix(".git") != repo:
                bad.append(f"{p.relative_to(ROOT)}: {m.group(0)}")
        for m in branch.finditer(text):
            if m.group(1) != colab.BRANCH:
                bad.append(f"{p.relative_to(ROOT)}: branch {m.group(1)}")
    assert not bad, "files naming another repository or branch than islteach.colab:\n" + "\n".join(bad)


def test_drive_switch_puts_data_results_and_checkpoints_on_drive(monkeypatch, tmp_path, capsys):
    from islteach import provenance, train

    mounted = []
    colab_mod = types.ModuleType("google.colab")
    colab_mod.drive = types.SimpleNamespace(mount=lambda where: mounted.append(where))
    google = types.ModuleType("google")
    google.colab = colab_mod
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab_mod)
    monkeypatch.delenv("ISLTEACH_DATA_DIR", raising=False)
    monkeypatch.delenv("ISLTEACH_RESULTS_DIR", raising=False)
    root = tmp_path / "MyDrive" / "islteach"
    assert provenance.use_drive(str(root)) == root
    assert mounted == ["/content/drive"]
    from islteach import data

    assert data.data_dir() == root / "data"
    assert provenance.results_dir("quick") == root / "results" / "quick"
    assert train.checkpoint_dir_for("run", profile="quick") == root / "results" / "quick" / "checkpoints" / "run"
    assert "Drive switch on" in capsys.readouterr().out


def test_drive_switch_does_nothing_outside_colab(monkeypatch, capsys):
    from islteach import provenance

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("ISLTEACH_RESULTS_DIR", raising=False)
    assert provenance.use_drive() is None
    assert "not on Colab" in capsys.readouterr().out
    assert "ISLTEACH_RESULTS_DIR" not in __import__("os").environ


def test_progress_is_one_line_where_nobody_watches(capsys):
    """In an executed notebook (the book build) a bar would freeze at 0 % or print a screen of updates."""
    from islteach.provenance import progress

    bar = progress(5, "training", "step")
    for _ in range(5):
        bar.update(1)
    bar.set_postfix({"loss": "0.1000"})
    bar.close()
    bar.close()  # idempotent
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("training: 5/5 steps in ") and "loss 0.1000" in out
    quiet = progress(3, "x", enabled=False)
    quiet.update(3)
    quiet.close()
    assert capsys.readouterr().out == ""
