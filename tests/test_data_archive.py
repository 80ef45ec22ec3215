"""Data sets as one archive: a real pooch download from a local HTTP server, with good, corrupted and truncated archives."""
import functools
import http.server
import os
import threading
from pathlib import Path

import pytest

from islteach import data
from islteach.provenance import sha256_file

SHARED = Path(os.environ.get("ISLTEACH_DATA_DIR", "/work/shared/data"))
NAME = "stardist-sample"
pytestmark = pytest.mark.skipif(not (SHARED / NAME).is_dir(),
                                reason=f"real data not found at {SHARED} (set ISLTEACH_DATA_DIR)")


@pytest.fixture(scope="module")
def good_archive(tmp_path_factory):
    out = tmp_path_factory.mktemp("archives")
    return data.build_archive(NAME, out, src_root=SHARED)


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving the folder ``tmp_path / 'www'``."""
    www = tmp_path / "www"
    www.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(www)))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch, good_archive, server):
    """An empty data directory; the archive registry names the good archive; archives come from the server."""
    root = tmp_path / "cache"
    monkeypatch.setenv(data.ENV_VAR, str(root))
    monkeypatch.setenv(data.ARCHIVE_URL_VAR, server[1])
    entry = {k: good_archive[k] for k in ("file", "sha256", "n_files", "n_bytes")}
    monkeypatch.setattr(data, "archives", lambda: {NAME: entry})
    return root


def _leftovers(root: Path) -> list:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_archive_is_reproducible(good_archive, tmp_path):
    again = data.build_archive(NAME, tmp_path, src_root=SHARED)
    assert again["sha256"] == good_archive["sha256"]
    assert data.archives()[NAME]["sha256"] == good_archive["sha256"], \
        "data_registry/archives.json is stale: run python scripts/make_archives.py"


def test_good_archive_is_downloaded_checked_and_unpacked(cache, server, good_archive):
    www, _ = server
    (www / good_archive["file"]).write_bytes(Path(good_archive["path"]).read_bytes())
    paths = data.fetch(NAME, progressbar=False, single_files=False)
    reg = data._registry(NAME)
    assert sorted(p.relative_to(cache).as_posix() for p in paths) == sorted(reg)
    for p in paths:
        assert sha256_file(p) == reg[p.relative_to(cache).as_posix()][0]
    assert _leftovers(cache) == sorted(reg), "the archive or its temporary folder was left in the cache"


@pytest.mark.parametrize("damage", ["corrupted", "truncated"])
def test_bad_archive_is_named_and_never_used(cache, server, good_archive, damage):
    www, url = server
    raw = bytearray(Path(good_archive["path"]).read_bytes())
    if damage == "corrupted":
        raw[len(raw) // 2] ^= 0xFF  # one flipped byte inside a member
    else:
        raw = raw[: len(raw) // 3]
    (www / good_archive["file"]).write_bytes(bytes(raw))
    with pytest.raises(data.DataHashError) as err:
        data.fetch(NAME, progressbar=False, single_files=False)
    msg = str(err.value)
    assert good_archive["file"] in msg and url in msg and "not used" in msg
    assert _leftovers(cache) == [], "a bad archive left files in the cache"


def test_missing_archive_falls_back_to_single_files_with_a_warning(cache, server, monkeypatch):
    # nothing is served: the archive download fails; the fallback is asked for and (offline) fails
    # fast too, but first a warning names the archive and says what happens next
    calls = []
    monkeypatch.setattr(data, "fetch_file", lambda key, progressbar=False: calls.append(key) or cache / key)
    with pytest.warns(UserWarning, match="Falling back to 2 single-file downloads"):
        data.fetch(NAME, progressbar=False)
    assert sorted(calls) == sorted(data._registry(NAME))
