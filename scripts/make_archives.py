#!/usr/bin/env python
"""Build one archive per data set from the verified files, and register their sha256.

Chapters 2, 4 and 5 read hundreds to thousands of small files; downloaded one by one from
GitHub they hit its rate limits (HTTP 429), the more so from Colab's shared addresses. So each
data set is also published as one archive: ``<dataset>.zip``, an asset of the release
``data-v1`` of the repository (``islteach.data.archive_base_url()``). ``islteach.data.fetch``
downloads it when several files are missing, checks its sha256, checks every member against
the per-file registry and falls back to single files when anything is wrong.

The archives are reproducible (sorted members, stored, fixed time stamps): the same files give
the same bytes. This script writes them to ``--out`` and their sha256 to
``data_registry/archives.json``; upload the files of ``--out`` as the release's assets.

Usage::

    python scripts/make_archives.py [--data-dir ../shared/data] [--out dist/data-v1] [--check]

``--check`` builds in a temporary folder and exits 1 when ``archives.json`` is out of date.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET = ROOT / "data_registry" / "archives.json"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=None,
                    help="folder with <dataset>/... (default: $ISLTEACH_DATA_DIR or ../shared/data)")
    ap.add_argument("--out", type=Path, default=ROOT / "dist" / "data-v1")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    src = args.data_dir or Path(os.environ.get("ISLTEACH_DATA_DIR") or ROOT.parent / "shared" / "data")
    from islteach import data

    out = Path(tempfile.mkdtemp()) if args.check else args.out
    entries = {}
    for name in data.list_datasets():
        e = data.build_archive(name, out, src_root=src)
        e.pop("path")
        entries[name] = e
        print(f"{name}: {e['file']} {e['n_bytes'] / 2**20:.1f} MiB, {e['n_files']} files, sha256 {e['sha256']}")
    text = json.dumps(entries, indent=1, sort_keys=True) + "\n"
    if args.check:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run python scripts/make_archives.py")
            return 1
        print(f"{TARGET.name} is up to date")
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET}; upload {out}/*.zip as the assets of the release {data.ARCHIVE_TAG} of the repository")
    return 0


if __name__ == "__main__":
    sys.exit(main())
