"""Replay the chapters' Colab set-up cell against Colab's published package list, before a participant does.

The set-up cell (:data:`islteach.colab.SETUP_CELL`) runs two pip commands on Colab:

1. ``pip install --no-deps cellpose==3.1.1.3 "islteach @ git+<repo>@<branch>"``
2. ``pip install -c <Colab's versions of the protected packages> <islteach.colab.COLAB_EXTRA>``

This script resolves both with ``pip install --dry-run --report`` in a fresh virtual environment of
Colab's Python (3.13) in which every package of Colab's ``pip freeze`` is registered as installed
(a metadata-only stub per package, at Colab's exact version, ``+cu128`` builds included, which
PyPI does not have), with the same constraints file the cell writes (this checkout stands in for
the git address). Then it checks that

* the resolution succeeds (a conflict is a participant's install failing);
* no package preinstalled on Colab would be installed at another version, in particular none of
  :data:`islteach.colab.PROTECTED`;
* every dependency declared by this package (``pyproject.toml``) and by cellpose is met by what
  Colab has plus what the cell installs; cellpose's own ``numpy<2.1`` pin is the one known,
  accepted exception (chapter 2 runs with numpy 2.1).

Usage::

    python scripts/check_colab_install.py [--python PATH] [--freeze FILE]

Exit status 0 when all holds, 1 otherwise. It needs PyPI (package metadata only).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from islteach.colab import CELLPOSE, COLAB_EXTRA, PROTECTED  # noqa: E402

DEFAULT_FREEZE = ROOT.parent / "shared" / "colab" / "pip-freeze.gpu.2026-08-19.txt"
ACCEPTED = {("cellpose", "numpy")}  # (package, requirement) pins deliberately bypassed with --no-deps


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_freeze(path: Path) -> dict:
    """``{canonical name: version}`` of a ``pip freeze`` file (direct references such as ``@ file://`` skipped)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or " @ " in line or "==" not in line:
            continue
        name, version = line.split("==", 1)
        out[canon(name)] = version
    return out


def register_installed(site: Path, freeze: dict) -> None:
    """Make pip see every package of ``freeze`` as installed: a ``.dist-info`` with name and version only."""
    for name, version in freeze.items():
        d = site / f"{name.replace('-', '_')}-{version}.dist-info"
        d.mkdir(parents=True, exist_ok=True)
        (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (d / "INSTALLER").write_text("colab-stub\n")
        (d / "RECORD").write_text("")


def default_python() -> str:
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
    for v in ("3.13.0", "3.13"):
        p = Path(root) / "versions" / v / "bin" / "python"
        if p.exists():
            return str(p)
    raise SystemExit("no Python 3.13 found (pyenv); pass --python")


def dry_run(pip: list, args: list, report: Path) -> dict:
    cmd = pip + ["install", "--dry-run", "--quiet", "--report", str(report)] + args
    print("$ " + " ".join(cmd[len(pip) - 2:]))
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        err = "\n".join(l for l in r.stderr.splitlines() if not l.startswith("WARNING: Location"))
        print(r.stdout[-3000:], err[-4000:], sep="\n")
        raise SystemExit(f"FAIL: the resolution failed (exit {r.returncode}): a participant's install would fail")
    return json.loads(report.read_text())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", default=None, help="Colab's Python version (default: pyenv's 3.13)")
    ap.add_argument("--freeze", type=Path, default=DEFAULT_FREEZE, help="Colab's pip freeze")
    args = ap.parse_args(argv)
    from packaging.requirements import Requirement
    from packaging.version import Version

    if not args.freeze.exists():
        raise SystemExit(f"Colab's package list not found at {args.freeze}; pass --freeze")
    freeze = read_freeze(args.freeze)
    py = args.python or default_python()
    work = Path(tempfile.mkdtemp(prefix="colab-sim-"))
    subprocess.run([py, "-m", "venv", str(work / "venv")], check=True)
    pip = [str(work / "venv" / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    pyver = subprocess.run(pip[:1] + ["-c", "import sys; print(sys.version.split()[0])"],
                           capture_output=True, text=True).stdout.strip()
    print(f"Colab simulation: Python {pyver}, {len(freeze)} packages from {args.freeze.name}")
    site = Path(subprocess.run(pip[:1] + ["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True).stdout.strip())
    register_installed(site, freeze)
    # the constraints file the set-up cell writes: the protected packages at the VM's versions
    constraints = work / "colab-constraints.txt"
    constraints.write_text("".join(f"{p}=={freeze[canon(p)]}\n" for p in PROTECTED if canon(p) in freeze))
    env_pip = pip
    os.environ.setdefault("PIP_NO_INPUT", "1")

    step1 = dry_run(env_pip, ["--no-deps", CELLPOSE, str(ROOT)], work / "step1.json")
    step2 = dry_run(env_pip, ["-c", str(constraints), *COLAB_EXTRA], work / "step2.json")

    installed = dict(freeze)
    changed, new = [], []
    meta = {}
    for item in step1["install"] + step2["install"]:
        m = item["metadata"]
        name, version = canon(m["name"]), m["version"]
        meta[name] = m
        if name == "islteach":
            continue
        if name in freeze and Version(freeze[name]) != Version(version) or item.get("is_yanked"):
            changed.append(f"{name} {freeze[name]} -> {version}")
        elif name not in freeze:
            new.append(f"{name}=={version}")
        installed[name] = version
    print("new packages:", ", ".join(sorted(new)) or "none")
    protected = {canon(p) for p in PROTECTED}
    for c in changed:
        print(("FAIL protected package changed: " if c.split()[0] in protected else "FAIL changed: ") + c)

    unmet = []
    for pkg in ("islteach", "cellpose", *[canon(Requirement(e).name) for e in COLAB_EXTRA]):
        for req_s in meta.get(pkg, {}).get("requires_dist", []) or []:
            req = Requirement(req_s)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            have = installed.get(canon(req.name))
            ok = have is not None and req.specifier.contains(Version(have), prereleases=True)
            if not ok:
                accepted = (pkg, canon(req.name)) in ACCEPTED
                unmet.append((pkg, req_s, have, accepted))
    for pkg, req_s, have, accepted in unmet:
        tag = "accepted (installed with --no-deps)" if accepted else "FAIL unmet"
        print(f"{tag}: {pkg} requires {req_s!r}, Colab has {have}")
    bad = changed or [u for u in unmet if not u[3]]
    kept = ", ".join(f"{p} {freeze[canon(p)]}" for p in PROTECTED if canon(p) in freeze)
    if bad:
        print("FAIL: the set-up cell would change Colab's packages or leave a dependency unmet")
        return 1
    print(f"OK: no preinstalled package changes ({kept})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
