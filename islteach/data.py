"""Real microscopy data: a hash-verified registry, typed loaders, crops, tiles and a torch Dataset.

Data sets
---------
Five public data sets are registered, every file pinned to a commit of a public
GitHub repository and checked against its sha256 (see ``data_registry/``):

========================  ===================================================================
``isl-finkbeiner-b``      :func:`load_isl_finkbeiner`: 13 phase-contrast planes + DAPI/MAP2/NFH
``sephace``               :func:`load_sephace`: 6 bright-field focal planes + DAPI, 2 fields
``bbbc039``               :func:`load_bbbc039`: 200 Hoechst images with expert instance labels
``dsb2018-fluo256``       :func:`load_dsb2018_fluo256`: 100 DSB2018 fluorescence images + labels
``stardist-sample``       :func:`load_stardist_sample`: one 512x512 image with 125 nuclei
========================  ===================================================================

Files live under :func:`data_dir` (``$ISLTEACH_DATA_DIR``, else the OS cache) at
``<dataset>/<relative path>``. :func:`fetch` downloads what is missing (pooch:
progress bar, retries, parallel downloads) and verifies every file's sha256, so
a folder pre-filled with the files (e.g. a read-only shared copy) is used
without any network access.

Loaders return raw intensities as float32 (normalise with
:func:`normalize_percentile`) and instance labels as int32 (0 = background).
Decoded images are cached in memory, so a second call is fast; every call
returns fresh arrays the caller may modify.

Examples
--------
>>> from islteach import data
>>> data.list_datasets()  # doctest: +NORMALIZE_WHITESPACE
['bbbc039', 'dsb2018-fluo256', 'isl-finkbeiner-b', 'sephace', 'stardist-sample']
>>> image, labels = data.load_stardist_sample()  # doctest: +SKIP
>>> image.shape, labels.max() > 0  # doctest: +SKIP
((512, 512), True)
"""
from __future__ import annotations

import functools
import json
import os
import re
import shlex
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from .provenance import sha256_file

__all__ = [
    "ISL_TEST_REGION",
    "BBBC039_SPLITS",
    "DataError",
    "DataFileMissingError",
    "DataHashError",
    "data_dir",
    "list_datasets",
    "describe",
    "fetch",
    "fetch_file",
    "load_isl_finkbeiner",
    "load_sephace",
    "load_bbbc039",
    "bbbc039_names",
    "load_dsb2018_fluo256",
    "load_stardist_sample",
    "labels_from_color_mask",
    "normalize_percentile",
    "region_mask",
    "isl_tile_grid",
    "spatial_split",
    "random_crops",
    "tile_positions",
    "extract_tiles",
    "stitch_tiles",
    "PairDataset",
]

ENV_VAR = "ISLTEACH_DATA_DIR"

#: The bottom-right quadrant of the 1024x1024 In Silico Labeling field: the test region,
#: held out in every chapter and never trained on. Use as ``image[ISL_TEST_REGION]`` for a
#: 2-D image and ``stack[(Ellipsis,) + ISL_TEST_REGION]`` for a (..., H, W) stack.
ISL_TEST_REGION = (slice(512, 1024), slice(512, 1024))

#: BBBC039 split of the 200 file names sorted alphabetically: (start, stop) indices.
BBBC039_SPLITS = {"train": (0, 100), "val": (100, 150), "test": (150, 200), "all": (0, 200)}


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------
class DataError(Exception):
    """Base class of the data errors raised by :mod:`islteach.data`."""


class DataFileMissingError(DataError, FileNotFoundError):
    """A registered file is not in the data directory and could not be downloaded."""


class DataHashError(DataError, ValueError):
    """A file's sha256 does not match the registry (the bad file has been removed)."""


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------
def data_dir() -> Path:
    """The folder holding the data files: ``$ISLTEACH_DATA_DIR``, else the OS cache.

    Returns
    -------
    pathlib.Path
        ``$ISLTEACH_DATA_DIR`` when set (e.g. a pre-filled shared copy), else
        ``pooch.os_cache("islteach")`` (``~/.cache/islteach`` on Linux).

    Examples
    --------
    >>> import os
    >>> os.environ["ISLTEACH_DATA_DIR"] = "/tmp/islteach-data"
    >>> str(data_dir())
    '/tmp/islteach-data'
    >>> del os.environ["ISLTEACH_DATA_DIR"]
    """
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("islteach"))


def _registry_dir() -> Path:
    """Folder with the registry files (installed as ``islteach.data_registry``)."""
    try:
        from importlib.resources import files

        d = files("islteach.data_registry")
        p = Path(str(d))
        if (p / "datasets.json").is_file():
            return p
    except (ModuleNotFoundError, TypeError, ValueError):
        pass
    # Fallback: a source checkout where the mapping is not installed.
    p = Path(__file__).resolve().parent.parent / "data_registry"
    if (p / "datasets.json").is_file():
        return p
    raise DataError(
        "cannot find the islteach data registry (package islteach.data_registry or "
        f"{p}); reinstall islteach"
    )


@functools.lru_cache(maxsize=None)
def _metadata() -> dict:
    return json.loads((_registry_dir() / "datasets.json").read_text(encoding="utf-8"))


def list_datasets() -> list[str]:
    """Names of the registered data sets, sorted.

    Returns
    -------
    list of str
    """
    return sorted(_metadata())


def _check_name(name) -> str:
    known = list_datasets()
    if not isinstance(name, str) or name not in known:
        raise ValueError(f"unknown data set {name!r}; known data sets: {', '.join(known)}")
    return name


@functools.lru_cache(maxsize=None)
def _registry(name: str) -> dict:
    """``{key: (sha256, url)}`` for data set ``name``, parsed like pooch's registry files."""
    entries = {}
    path = _registry_dir() / f"{name}.txt"
    for linenum, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = shlex.split(line)
        if len(parts) != 3 or not parts[1].startswith("sha256:"):
            raise DataError(f"{path}:{linenum}: expected '<key> sha256:<hash> <url>', got {line!r}")
        entries[parts[0]] = (parts[1][len("sha256:"):].lower(), parts[2])
    return entries


def describe(name: str) -> dict:
    """Metadata of one data set.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`.

    Returns
    -------
    dict
        ``name``, ``title``, ``description``, ``modality``, ``channels``, ``image_shape``,
        ``pixel_size_um`` (``None`` where unknown), ``license``, ``citation``, ``bibkey``,
        ``upstream``, ``loader``, ``n_files``, ``n_bytes``, ``registry`` (path of the
        registry file) and ``local_dir`` (where the files are expected).

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).

    Examples
    --------
    >>> describe("stardist-sample")["n_files"]
    2
    """
    _check_name(name)
    out = {"name": name, **_metadata()[name]}
    out["registry"] = str(_registry_dir() / f"{name}.txt")
    out["local_dir"] = str(data_dir() / name)
    return out


_VERIFIED: dict = {}  # path -> (size, mtime_ns) of files whose hash matched in this process
_VERIFIED_LOCK = threading.Lock()


def _is_verified(path: Path, sha: str) -> bool:
    st = path.stat()
    sig = (st.st_size, st.st_mtime_ns, sha)
    with _VERIFIED_LOCK:
        if _VERIFIED.get(str(path)) == sig:
            return True
    if sha256_file(path) == sha:
        with _VERIFIED_LOCK:
            _VERIFIED[str(path)] = sig
        return True
    return False


def _hash_error(path: Path, key: str, expected: str, got: str, url: str, removed: bool) -> DataHashError:
    fate = (
        "The corrupted file has been removed from the cache"
        if removed
        else "The file could NOT be removed (read-only folder?): delete or replace it by hand"
    )
    return DataHashError(
        f"sha256 mismatch for data file {key!r} at {path}: expected {expected}, got {got}. "
        f"{fate}. Run again with internet access to download it from {url}, or copy the "
        f"correct file there."
    )


def _download(key: str, sha: str, url: str, root: Path, progressbar: bool) -> Path:
    """Download one file with pooch (to a temporary name, hash-checked, then moved into place)."""
    import pooch

    pup = pooch.create(path=root, base_url="", registry={key: f"sha256:{sha}"},
                       urls={key: url}, retry_if_failed=3)
    return Path(pup.fetch(key, progressbar=progressbar))


def fetch_file(key: str, progressbar: bool = False) -> Path:
    """Path of one registered file (``<dataset>/<relative path>``), downloading it if needed.

    Parameters
    ----------
    key : str
        Registry key, e.g. ``"stardist-sample/img2d.tif"``.
    progressbar : bool
        Show a download progress bar.

    Returns
    -------
    pathlib.Path
        The local, sha256-verified file.

    Raises
    ------
    ValueError
        Unknown data set or key.
    DataFileMissingError
        The file is not in :func:`data_dir` and the download failed (offline): the
        message names the file, the folder searched, the URL and what to do.
    DataHashError
        The local file or the download does not match the registered sha256; the
        corrupted file is removed (when the folder is writable) and never returned.
    """
    name = _check_name(key.split("/", 1)[0] if isinstance(key, str) else key)
    reg = _registry(name)
    if key not in reg:
        raise ValueError(f"{key!r} is not a registered file of data set {name!r} ({len(reg)} files)")
    sha, url = reg[key]
    root = data_dir()
    path = root / key
    if path.is_file():
        if _is_verified(path, sha):
            return path
        got = sha256_file(path)
        try:
            path.unlink()
            removed = True
        except OSError:
            removed = False
        if not removed:
            raise _hash_error(path, key, sha, got, url, removed=False)
        # Removed: try to download a good copy; report the corruption if that fails.
        try:
            return _download(key, sha, url, root, progressbar)
        except Exception as err:  # noqa: BLE001 - any download failure
            raise _hash_error(path, key, sha, got, url, removed=True) from err
    try:
        out = _download(key, sha, url, root, progressbar)
    except ValueError as err:  # pooch: hash of the download does not match
        raise DataHashError(
            f"the download of data file {key!r} from {url} does not match its registered "
            f"sha256 {sha}; nothing was saved to {path}. ({err})"
        ) from err
    except Exception as err:  # noqa: BLE001 - network errors, permission errors, ...
        raise DataFileMissingError(
            f"data file {key!r} is missing: searched {path} (data directory {root}, "
            f"set by ${ENV_VAR} or the OS cache) and the download from {url} failed "
            f"({type(err).__name__}: {err}). To fix: run with internet access so it downloads, "
            f"or point ${ENV_VAR} at a folder that holds '{key}', or download the URL "
            f"by hand to {path}."
        ) from err
    with _VERIFIED_LOCK:
        st = out.stat()
        _VERIFIED[str(out)] = (st.st_size, st.st_mtime_ns, sha)
    return out


def fetch(name: str, progressbar: bool = True, workers: int = 8, *, archive: bool = True,
          single_files: bool = True) -> list[Path]:
    """Local paths of every file of data set ``name``, downloading (and verifying) what is missing.

    Files already present are only hash-checked (once per process). When several files
    are missing and the data set has a registered archive, it is downloaded as that one
    archive (:func:`fetch_archive`); whatever is still missing (no archive, or the archive
    failed: a warning says why) is downloaded file by file by pooch, several at a time,
    with retries and a progress bar.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`.
    progressbar : bool
        Show progress (one bar over files for multi-file downloads).
    workers : int
        Parallel downloads.
    archive : bool
        Try the data set's archive first when several files are missing.
    single_files : bool
        Download missing files one by one (the fallback); False raises instead.

    Returns
    -------
    list of pathlib.Path
        Sorted by registry key.

    Raises
    ------
    ValueError, DataFileMissingError, DataHashError
        See :func:`fetch_file`.

    Examples
    --------
    >>> [p.name for p in fetch("stardist-sample")]  # doctest: +SKIP
    ['img2d.tif', 'mask2d.tif']
    """
    _check_name(name)
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    keys = sorted(_registry(name))
    root = data_dir()
    present, missing = [], []
    for k in keys:
        (present if (root / k).is_file() else missing).append(k)
    for k in present:  # verify (and repair) local files first
        fetch_file(k)
    if len(missing) > 1 and archive and name in archives():
        try:  # one archive instead of many single downloads (rate limits, shared addresses)
            fetch_archive(name, progressbar=progressbar)
        except DataError as err:
            if not single_files:
                raise
            import warnings

            warnings.warn(f"{err} Falling back to {len(missing)} single-file downloads.", stacklevel=2)
        missing = [k for k in missing if not (root / k).is_file()]
    if missing and not single_files:
        raise DataFileMissingError(f"{len(missing)} files of {name!r} are missing from {root} "
                                   "and single-file downloads are switched off (single_files=False)")
    if missing:
        # The first file alone: offline, this fails fast with an actionable message.
        fetch_file(missing[0], progressbar=progressbar and len(missing) == 1)
        rest = missing[1:]
        if workers == 1:
            for k in rest:
                fetch_file(k, progressbar=progressbar)
        elif rest:
            bar = None
            if progressbar:
                from .provenance import progress

                bar = progress(len(missing), f"downloading {name}", "file", initial=1)
            ex = ThreadPoolExecutor(max_workers=workers)
            try:
                futures = [ex.submit(fetch_file, k) for k in rest]
                for fut in as_completed(futures):
                    fut.result()  # re-raises the first error
                    if bar is not None:
                        bar.update(1)
            finally:
                ex.shutdown(wait=True, cancel_futures=True)
                if bar is not None:
                    bar.close()
    return [root / k for k in keys]


# ---------------------------------------------------------------------------
# Whole data sets as one archive (one download instead of thousands)
# ---------------------------------------------------------------------------
#: Release of the repository whose assets are the data archives (``<dataset>.zip``).
ARCHIVE_TAG = "data-v1"
#: Environment variable overriding where the archives are downloaded from (a folder URL).
ARCHIVE_URL_VAR = "ISLTEACH_ARCHIVE_URL"
_ARCHIVE_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member time stamps: the same files give the same bytes


def archive_base_url() -> str:
    """Folder URL of the data archives: ``$ISLTEACH_ARCHIVE_URL``, else the repository's release assets.

    The archives are published as the assets of the release :data:`ARCHIVE_TAG` of
    :data:`islteach.colab.REPO_URL` (``<repo>/releases/download/data-v1/<dataset>.zip``),
    made by ``scripts/make_archives.py``.
    """
    env = os.environ.get(ARCHIVE_URL_VAR, "").strip()
    if env:
        return env if env.endswith("/") else env + "/"
    from .colab import REPO_URL

    return f"{REPO_URL}/releases/download/{ARCHIVE_TAG}/"


@functools.lru_cache(maxsize=None)
def archives() -> dict:
    """``{dataset: {"file", "sha256", "n_files", "n_bytes"}}`` from ``data_registry/archives.json`` ({} if absent)."""
    path = _registry_dir() / "archives.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def build_archive(name: str, out_dir, src_root=None) -> dict:
    """Pack every registered file of data set ``name`` into ``out_dir/<name>.zip``, reproducibly.

    Members are the registry keys (``<name>/<relative path>``) in sorted order, stored
    uncompressed (the images are compressed already) with fixed time stamps, so the same
    files always give the same archive bytes and the same sha256. Every file is checked
    against the registry first.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`.
    out_dir : path-like
        Where the archive is written (atomically).
    src_root : path-like, optional
        Folder holding ``<name>/...`` (default :func:`data_dir`; missing files are fetched).

    Returns
    -------
    dict
        ``file``, ``sha256``, ``n_files``, ``n_bytes`` (of the archive), ``path``.
    """
    import zipfile

    from .provenance import atomic_path

    _check_name(name)
    root = Path(src_root) if src_root is not None else data_dir()
    if src_root is None:
        fetch(name, progressbar=False)
    reg = _registry(name)
    out = Path(out_dir) / f"{name}.zip"
    with atomic_path(out) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
            for key in sorted(reg):
                path = root / key
                if not path.is_file():
                    raise DataFileMissingError(f"build_archive: {key!r} not found at {path}")
                got = sha256_file(path)
                if got != reg[key][0]:
                    raise DataHashError(f"build_archive: {path} has sha256 {got}, the registry says {reg[key][0]}")
                info = zipfile.ZipInfo(key, date_time=_ARCHIVE_TIME)
                info.external_attr = 0o644 << 16
                z.writestr(info, path.read_bytes(), compress_type=zipfile.ZIP_STORED)
    return {"file": out.name, "sha256": sha256_file(out), "n_files": len(reg), "n_bytes": out.stat().st_size,
            "path": str(out)}


def fetch_archive(name: str, progressbar: bool = True) -> list[Path]:
    """Download data set ``name`` as one archive, check it, and put its files into :func:`data_dir`.

    The archive's sha256 (``data_registry/archives.json``) is checked by pooch before it is
    opened (a corrupted or truncated download is deleted and never used); it is then unpacked
    with pooch's ``Unzip`` into a temporary folder, every member is checked against the
    per-file registry and moved into place, and the archive and the temporary folder are
    removed. Members already present are left as they are.

    Raises
    ------
    ValueError
        Unknown data set, or no archive registered for it.
    DataHashError
        The archive, or one of its members, does not match its registered sha256 (the
        message names the archive, where it was downloaded from and what to do).
    DataFileMissingError
        The archive could not be downloaded.
    """
    import shutil

    import pooch

    _check_name(name)
    entry = archives().get(name)
    if entry is None:
        raise ValueError(f"no archive is registered for data set {name!r} (data_registry/archives.json)")
    root = data_dir()
    url = archive_base_url() + entry["file"]
    where = root / ".archives"
    where.mkdir(parents=True, exist_ok=True)
    extract = f"{name}.unzip.tmp{os.getpid()}"
    try:
        members = pooch.retrieve(url, known_hash=f"sha256:{entry['sha256']}", fname=entry["file"],
                                 path=where, progressbar=progressbar,
                                 processor=pooch.Unzip(extract_dir=extract))
    except ValueError as err:  # pooch: the hash of the download does not match (corrupted, truncated)
        raise DataHashError(
            f"the archive {entry['file']!r} of data set {name!r} downloaded from {url} does not match its "
            f"registered sha256 {entry['sha256']}; it was deleted and not used ({err}). Run again to "
            f"retry, or let islteach.data.fetch download the files one by one."
        ) from err
    except Exception as err:  # noqa: BLE001 - network errors
        raise DataFileMissingError(
            f"the archive {entry['file']!r} of data set {name!r} could not be downloaded from {url} "
            f"({type(err).__name__}: {err}); the files can still be downloaded one by one."
        ) from err
    finally:
        for leftover in (where / entry["file"],):
            if leftover.exists():
                leftover.unlink()
    tmp_dir = where / extract
    try:
        reg = _registry(name)
        found = {Path(m).relative_to(tmp_dir).as_posix(): Path(m) for m in members}
        unknown = sorted(set(found) - set(reg))
        missing = sorted(set(reg) - set(found))
        if unknown or missing:
            raise DataHashError(
                f"the archive {entry['file']!r} from {url} does not hold the registered files of {name!r}: "
                f"{len(missing)} missing (e.g. {missing[:2]}), {len(unknown)} unknown (e.g. {unknown[:2]}); "
                "nothing from it was used.")
        bad = [k for k in sorted(found) if sha256_file(found[k]) != reg[k][0]]
        if bad:
            raise DataHashError(
                f"{len(bad)} member(s) of the archive {entry['file']!r} from {url} do not match the registry "
                f"(e.g. {bad[0]!r}); nothing from it was used.")
        for key, src in found.items():
            target = root / key
            if not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return [root / k for k in sorted(_registry(name))]


def verified_hashes(name: str) -> dict:
    """``{registry key: sha256}`` of every file of data set ``name``, after :func:`fetch` verified them.

    The provenance panel of each chapter records these: they are the hashes of the
    bytes the chapter reads (a file whose hash differs is never returned by fetch).
    """
    fetch(name, progressbar=False)
    return {k: sha for k, (sha, _url) in sorted(_registry(name).items())}


def _files(name: str) -> dict:
    """``{relative path: local path}`` of a fetched data set."""
    paths = fetch(name, progressbar=True)
    prefix = len(name) + 1
    return {str(p.relative_to(data_dir()))[prefix:]: p for p in paths}


# ---------------------------------------------------------------------------
# Decoding (cached)
# ---------------------------------------------------------------------------
def _imread(path: Path) -> np.ndarray:
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        return tifffile.imread(path)
    if path.suffix.lower() == ".ics":
        from .ics import read_ics

        return read_ics(path)
    if path.suffix.lower() == ".png":
        from PIL import Image

        with Image.open(path) as im:
            return np.asarray(im)
    import imageio.v3 as iio

    return np.asarray(iio.imread(path))


def _cache_key(path: Path):
    st = Path(path).stat()
    return (str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _imread_cached(key) -> np.ndarray:
    a = _imread(Path(key[0]))
    a.flags.writeable = False
    return a


def _read(path: Path) -> np.ndarray:
    """Decoded image, cached in memory (read-only array: copy before modifying)."""
    return _imread_cached(_cache_key(path))


# ---------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------
_ISL_CH = re.compile(r"channel-([A-Z0-9_]+),")
_ISL_Z = re.compile(r"z_depth-(\d+),")


def load_isl_finkbeiner() -> dict:
    """The In Silico Labeling test field (Finkbeiner lab, condition B) {cite}`christiansen2018`.

    Returns
    -------
    dict
        ``phase``: (13, 1024, 1024) float32, phase-contrast planes ordered by z
        (``z_depth-0`` .. ``z_depth-12``); ``dapi``, ``map2``, ``nfh``: (1024, 1024)
        float32 confocal max-projections (nuclei, dendrites/somata, axons). Raw
        intensities (uint16 range). The test region is :data:`ISL_TEST_REGION`.

    Examples
    --------
    >>> d = load_isl_finkbeiner()  # doctest: +SKIP
    >>> d["phase"].shape  # doctest: +SKIP
    (13, 1024, 1024)
    """
    files = _files("isl-finkbeiner-b")
    phase, fluo = {}, {}
    for rel, p in files.items():
        ch = _ISL_CH.search(rel)
        if ch is None:
            continue
        if ch.group(1) == "PHASE_CONTRAST":
            phase[int(_ISL_Z.search(rel).group(1))] = p
        else:
            fluo[ch.group(1).split("_")[0].lower()] = p
    if sorted(phase) != list(range(13)) or not {"dapi", "map2", "nfh"} <= set(fluo):
        raise DataError(f"unexpected ISL file set: z {sorted(phase)}, channels {sorted(fluo)}")
    out = {"phase": np.stack([_read(phase[z]) for z in range(13)]).astype(np.float32)}
    for ch in ("dapi", "map2", "nfh"):
        out[ch] = _read(fluo[ch]).astype(np.float32)
    return out


_SEPHACE_Z = re.compile(r"-Z(\d+(?:\.\d+)?)\.ics$")


def load_sephace(field: int = 1) -> dict:
    """One SEPHACE field: six bright-field focal planes and DAPI (ICS v2 files, read by :mod:`islteach.ics`).

    Parameters
    ----------
    field : {1, 2}
        ``Set 1`` or ``Set 2``.

    Returns
    -------
    dict
        ``brightfield``: (6, 1024, 1344) float32 ordered by focus position;
        ``focus_um``: (6,) float64 focus position in um (from the file names, the
        'init' and 'fine' series merged); ``dapi``: (1024, 1344) float32 widefield.
        Raw intensities (uint8 range).

    Examples
    --------
    >>> d = load_sephace(1)  # doctest: +SKIP
    >>> d["brightfield"].shape, d["focus_um"].round(1).tolist()  # doctest: +SKIP
    ((6, 1024, 1344), [1327.6, 1341.9, 1351.6, 1352.2, 1362.0, 1376.8])
    """
    if isinstance(field, bool) or field not in (1, 2):
        raise ValueError(f"field must be 1 or 2, got {field!r}")
    files = _files("sephace")
    planes, dapi = [], None
    for rel, p in files.items():
        folder, fname = rel.split("/", 1)
        if folder != f"Set {field}":
            continue
        if fname == "fl.ics":
            dapi = p
            continue
        m = _SEPHACE_Z.search(fname)
        if m:
            planes.append((float(m.group(1)), p))
    planes.sort()
    if len(planes) != 6 or dapi is None:
        raise DataError(f"unexpected SEPHACE file set for field {field}: {len(planes)} planes, dapi={dapi}")
    return {
        "brightfield": np.stack([_read(p) for _, p in planes]).astype(np.float32),
        "focus_um": np.array([z for z, _ in planes], dtype=np.float64),
        "dapi": _read(dapi).astype(np.float32),
    }


def labels_from_color_mask(mask: np.ndarray, connectivity: int = 1) -> np.ndarray:
    """Instance labels from a colour-coded mask: one instance per connected component of one value.

    Parameters
    ----------
    mask : (H, W) integer array
        0 = background; touching objects carry different values (a colour map).
    connectivity : {1, 2}
        1 = 4-connected components, 2 = 8-connected.

    Returns
    -------
    (H, W) int32
        Labels 1..N numbered in raster order of each component's first pixel.

    Examples
    --------
    >>> m = np.array([[1, 1, 0, 1], [0, 0, 0, 1], [2, 2, 0, 0]])
    >>> labels_from_color_mask(m)
    array([[1, 1, 0, 2],
           [0, 0, 0, 2],
           [3, 3, 0, 0]], dtype=int32)
    >>> int(labels_from_color_mask(np.array([[1, 0, 1]])).max())  # same value, not connected
    2
    """
    from skimage.measure import label

    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype.kind not in "uib":
        raise ValueError(f"mask must be a 2-D integer array, got shape {mask.shape} dtype {mask.dtype}")
    if mask.size and mask.min() < 0:
        raise ValueError(f"mask must hold non-negative colour values, got minimum {mask.min()}")
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 or 2, got {connectivity!r}")
    # skimage labels connected regions of equal value: exactly one instance per component of one value
    out = label(mask, background=0, connectivity=connectivity).astype(np.int32)
    return out


def bbbc039_names(split: str = "all") -> list[str]:
    """BBBC039 image file names (without extension) of one split, in split order.

    The 200 names are sorted alphabetically: the first 100 are ``train``, the next
    50 ``val`` and the last 50 ``test`` (:data:`BBBC039_SPLITS`).
    """
    if split not in BBBC039_SPLITS:
        raise ValueError(f"split must be one of {list(BBBC039_SPLITS)}, got {split!r}")
    stems = sorted(k.rsplit("/", 1)[1][:-4] for k in _registry("bbbc039") if k.startswith("bbbc039/images/"))
    a, b = BBBC039_SPLITS[split]
    return stems[a:b]


@functools.lru_cache(maxsize=512)
def _bbbc039_labels(path_key) -> np.ndarray:
    m = _imread(Path(path_key[0]))
    lab = labels_from_color_mask(m[..., 0] if m.ndim == 3 else m)
    if lab.max() < 65536:  # halve the memory of the cache
        lab = lab.astype(np.uint16)
    lab.flags.writeable = False
    return lab


def load_bbbc039(split: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """BBBC039 v1 Hoechst nuclei with expert instance labels {cite}`ljosa2012`.

    Parameters
    ----------
    split : {"train", "val", "test", "all"}
        Sorted file names: first 100 ``train``, next 50 ``val``, last 50 ``test``.

    Returns
    -------
    images : (N, 520, 696) float32
        Raw intensities (uint16 range).
    labels : (N, 520, 696) int32
        Instances = connected components (4-connected) of one value in channel 0
        of the colour masks; 1..n per image, 0 = background.

    Examples
    --------
    >>> x, y = load_bbbc039("test")  # doctest: +SKIP
    >>> x.shape  # doctest: +SKIP
    (50, 520, 696)
    """
    names = bbbc039_names(split)
    files = _files("bbbc039")
    images = np.empty((len(names), 520, 696), np.float32)
    labels = np.empty((len(names), 520, 696), np.int32)

    def one(stem):
        return _read(files[f"images/{stem}.tif"]), _bbbc039_labels(_cache_key(files[f"masks/{stem}.png"]))

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as ex:
        for i, (img, lab) in enumerate(ex.map(one, names)):
            images[i] = img
            labels[i] = lab
    return images, labels


@functools.lru_cache(maxsize=1)
def _dsb_cached(root: str, signature) -> tuple:
    files = {rel: Path(root) / "dsb2018-fluo256" / rel for rel in signature}
    by_id: dict = {}
    for rel, p in files.items():
        parts = rel.split("/")  # stage1_train/<id>/{images,masks}/<file>.png
        entry = by_id.setdefault(parts[1], {"image": None, "masks": []})
        if parts[2] == "images":
            entry["image"] = p
        else:
            entry["masks"].append(p)
    ids = sorted(by_id)
    images, labels = [], []
    for i in ids:
        img = _imread(by_id[i]["image"])
        images.append((img[..., 0] if img.ndim == 3 else img).astype(np.float32))
        lab = np.zeros(images[-1].shape, np.int32)
        for k, mp in enumerate(sorted(by_id[i]["masks"]), 1):
            m = _imread(mp)
            m = m[..., 0] if m.ndim == 3 else m
            lab[(m > 0) & (lab == 0)] = k
        labels.append(lab)
    x, y = np.stack(images), np.stack(labels)
    x.flags.writeable = False
    y.flags.writeable = False
    return tuple(ids), x, y


def load_dsb2018_fluo256(return_ids: bool = False):
    """100 fluorescence images (256x256) of the 2018 Data Science Bowl with instance labels {cite}`caicedo2019`.

    Parameters
    ----------
    return_ids : bool
        Also return the image ids (folder names), in the order of the arrays.

    Returns
    -------
    images : (100, 256, 256) float32
        Raw grey values (uint8 range; channel 0 of the RGBA PNGs, which are grey).
    labels : (100, 256, 256) int32
        Nucleus ``k`` = the ``k``-th mask file of the image in sorted file-name order.
    ids : list of str
        Only with ``return_ids=True``.
    """
    files = _files("dsb2018-fluo256")
    ids, x, y = _dsb_cached(str(data_dir()), tuple(sorted(files)))
    if return_ids:
        return x.copy(), y.copy(), list(ids)
    return x.copy(), y.copy()


def load_stardist_sample() -> tuple[np.ndarray, np.ndarray]:
    """The StarDist 2D sample: one DSB2018 image (512x512) with 125 labelled nuclei {cite}`schmidt2018`.

    Returns
    -------
    image : (512, 512) float32
        Raw intensities (uint16 range).
    labels : (512, 512) int32
        Instance labels as shipped (values up to 183, not contiguous; 125 nuclei).
    """
    files = _files("stardist-sample")
    return _read(files["img2d.tif"]).astype(np.float32), _read(files["mask2d.tif"]).astype(np.int32)


# ---------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------
def normalize_percentile(x, pmin: float = 1.0, pmax: float = 99.8, clip: bool = False,
                         axis=None, eps: float = 1e-20) -> np.ndarray:
    """Map the ``pmin`` / ``pmax`` percentiles of ``x`` to 0 / 1 (as in CSBDeep / StarDist).

    Parameters
    ----------
    x : array_like of real numbers
    pmin, pmax : float
        Percentiles in [0, 100], ``pmin < pmax``.
    clip : bool
        Clip the result to [0, 1].
    axis : int or tuple of int, optional
        Axes over which the percentiles are computed (e.g. ``(-2, -1)`` to normalise each
        plane of a stack on its own); default: the whole array.
    eps : float
        Added to the denominator (constant images map to 0).

    Returns
    -------
    numpy.ndarray
        float32, same shape as ``x``.

    Examples
    --------
    >>> y = normalize_percentile(np.arange(101.0), 0, 100)
    >>> float(y.min()), float(y.max())
    (0.0, 1.0)
    """
    x = np.asarray(x)
    if x.dtype.kind not in "uif" or x.size == 0:
        raise TypeError(f"x must be a non-empty real-valued array, got dtype {x.dtype} size {x.size}")
    if not (0 <= pmin < pmax <= 100):
        raise ValueError(f"pmin and pmax must satisfy 0 <= pmin < pmax <= 100, got {pmin}, {pmax}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or inf values: percentiles would be meaningless")
    x = x.astype(np.float32, copy=False)
    lo, hi = np.percentile(x, [pmin, pmax], axis=axis, keepdims=True)
    y = (x - lo) / (hi - lo + eps)
    if clip:
        y = np.clip(y, 0, 1)
    return y.astype(np.float32, copy=False)


# ---------------------------------------------------------------------------
# Regions, crops, tiles
# ---------------------------------------------------------------------------
def _check_shape(shape, argname="shape"):
    if (not isinstance(shape, (tuple, list)) or len(shape) != 2
            or not all(isinstance(s, (int, np.integer)) and s > 0 for s in shape)):
        raise ValueError(f"{argname} must be a (height, width) tuple of positive ints, got {shape!r}")
    return int(shape[0]), int(shape[1])


def region_mask(shape, region) -> np.ndarray:
    """Boolean (H, W) mask that is True inside ``region`` (a pair of slices, e.g. :data:`ISL_TEST_REGION`)."""
    h, w = _check_shape(shape)
    if not (isinstance(region, tuple) and len(region) == 2 and all(isinstance(s, slice) for s in region)):
        raise ValueError(f"region must be a pair of slices, got {region!r}")
    m = np.zeros((h, w), bool)
    m[region] = True
    return m


def isl_tile_grid(tile: int = 256, shape=(1024, 1024), test_region=None) -> list:
    """Top-left corners of the non-overlapping ``tile x tile`` tiles that do not touch the test region.

    The training tiles of the ISL field in chapters 3 and 4: the field is cut into a grid of
    tiles and every tile that overlaps the held-out region is dropped.

    Parameters
    ----------
    tile : int
        Tile side in pixels.
    shape : (H, W)
        Shape of the field.
    test_region : pair of slices, optional
        Default :data:`ISL_TEST_REGION` (the bottom-right quadrant).

    Returns
    -------
    list of (y, x)

    Examples
    --------
    >>> len(isl_tile_grid(256)), isl_tile_grid(512)
    (12, [(0, 0), (0, 512), (512, 0)])
    """
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 1:
        raise ValueError(f"tile must be a positive integer, got {tile!r}")
    test = region_mask(tuple(shape), ISL_TEST_REGION if test_region is None else test_region)
    h, w = shape
    return [(y, x) for y in range(0, h - tile + 1, tile) for x in range(0, w - tile + 1, tile)
            if not test[y:y + tile, x:x + tile].any()]


def spatial_split(shape, test_region=ISL_TEST_REGION, margin: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split one large field into a training area and a held-out test area.

    Parameters
    ----------
    shape : (H, W)
    test_region : pair of slices or (H, W) bool array
        The held-out area (default: the ISL test quadrant).
    margin : int
        Width in pixels of a band around the test region excluded from training too, so
        that training crops never touch pixels next to the test area.

    Returns
    -------
    train_mask, test_mask : (H, W) bool
        Disjoint; ``train_mask`` is everything outside the test region grown by ``margin``.

    Examples
    --------
    >>> tr, te = spatial_split((1024, 1024))
    >>> int(te.sum()), int(tr.sum()), bool((tr & te).any())
    (262144, 786432, False)
    """
    h, w = _check_shape(shape)
    if isinstance(test_region, np.ndarray):
        if test_region.shape != (h, w) or test_region.dtype != bool:
            raise ValueError(f"test_region must be a slice pair or a bool array of shape {(h, w)}")
        test = test_region.copy()
    else:
        test = region_mask((h, w), test_region)
    if not isinstance(margin, (int, np.integer)) or margin < 0:
        raise ValueError(f"margin must be a non-negative int, got {margin!r}")
    grown = test
    if margin:
        from scipy import ndimage as ndi

        grown = ndi.binary_dilation(test, structure=np.ones((3, 3), bool), iterations=int(margin))
    return ~grown, test


def random_crops(arrays, size: int, k: int, seed=0, allowed=None, return_positions: bool = False):
    """``k`` seeded random crops of size ``size x size`` at the same positions in aligned arrays.

    As in Bonte et al.'s five random 512x512 crops per image {cite}`bonte2022`.

    Parameters
    ----------
    arrays : ndarray or sequence of ndarray
        One array or several aligned ones (e.g. an input stack (C, H, W) and a target
        (H, W)); the last two axes are (H, W) and must agree.
    size : int
        Crop side.
    k : int
        Number of crops.
    seed : int or numpy.random.Generator
    allowed : (H, W) bool array, optional
        Crops lie entirely inside the True area (e.g. the ``train_mask`` of
        :func:`spatial_split`); default everywhere.
    return_positions : bool
        Also return the (k, 2) array of top-left corners (y, x).

    Returns
    -------
    crops : ndarray (k, ..., size, size), or a tuple of those for several arrays
    positions : (k, 2) int array, only with ``return_positions=True``

    Raises
    ------
    ValueError
        When no crop position fits (crop larger than the image or the allowed area).

    Examples
    --------
    >>> img = np.arange(100.0).reshape(10, 10)
    >>> c = random_crops(img, 4, k=3, seed=0)
    >>> c.shape
    (3, 4, 4)
    """
    single = isinstance(arrays, np.ndarray)
    arrs = [arrays] if single else list(arrays)
    if not arrs or not all(isinstance(a, np.ndarray) and a.ndim >= 2 for a in arrs):
        raise TypeError("arrays must be an ndarray or a sequence of ndarrays with at least 2 dimensions")
    hw = arrs[0].shape[-2:]
    if any(a.shape[-2:] != hw for a in arrs):
        raise ValueError(f"arrays must agree in their last two axes, got {[a.shape for a in arrs]}")
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    if not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k must be a non-negative int, got {k!r}")
    h, w = hw
    if size > h or size > w:
        raise ValueError(f"size {size} is larger than the image ({h}x{w})")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if allowed is None:
        ys = rng.integers(0, h - size + 1, size=k)
        xs = rng.integers(0, w - size + 1, size=k)
        pos = np.stack([ys, xs], 1)
    else:
        allowed = np.asarray(allowed)
        if allowed.shape != (h, w) or allowed.dtype != bool:
            raise ValueError(f"allowed must be a bool array of shape {(h, w)}, got {allowed.shape} {allowed.dtype}")
        bad = np.pad((~allowed).astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        nbad = bad[size:, size:] - bad[:-size, size:] - bad[size:, :-size] + bad[:-size, :-size]
        valid = np.argwhere(nbad == 0)
        if len(valid) == 0:
            raise ValueError(f"no {size}x{size} crop fits inside the allowed area")
        pos = valid[rng.integers(0, len(valid), size=k)]
    pos = pos.astype(np.int64).reshape(k, 2)
    outs = []
    for a in arrs:
        outs.append(np.stack([a[..., y:y + size, x:x + size] for y, x in pos]) if k
                    else np.empty((0,) + a.shape[:-2] + (size, size), a.dtype))
    res = outs[0] if single else tuple(outs)
    return (res, pos) if return_positions else res


def tile_positions(shape, tile: int, overlap: int = 0) -> list[tuple[int, int]]:
    """Top-left corners of ``tile x tile`` tiles covering ``shape`` with at least ``overlap`` pixels overlap.

    The last row/column of tiles is shifted to end exactly at the border.

    Examples
    --------
    >>> tile_positions((10, 10), 4, overlap=1)
    [(0, 0), (0, 3), (0, 6), (3, 0), (3, 3), (3, 6), (6, 0), (6, 3), (6, 6)]
    """
    h, w = _check_shape(shape)
    if not isinstance(tile, (int, np.integer)) or tile < 1:
        raise ValueError(f"tile must be a positive int, got {tile!r}")
    if not isinstance(overlap, (int, np.integer)) or not 0 <= overlap < tile:
        raise ValueError(f"overlap must be an int in [0, tile), got {overlap!r}")

    def starts(n):
        if n <= tile:
            return [0]
        step = tile - overlap
        s = list(range(0, n - tile, step))
        s.append(n - tile)
        return s

    return [(y, x) for y in starts(h) for x in starts(w)]


def extract_tiles(image: np.ndarray, tile: int, overlap: int = 0):
    """Cut ``image`` (..., H, W) into tiles; images smaller than ``tile`` are zero-padded.

    Returns
    -------
    tiles : (n, ..., tile, tile)
    positions : list of (y, x)
        For :func:`stitch_tiles`.
    """
    if not isinstance(image, np.ndarray) or image.ndim < 2:
        raise TypeError("image must be an ndarray with at least 2 dimensions")
    h, w = image.shape[-2:]
    ph, pw = max(0, tile - h), max(0, tile - w)
    if ph or pw:
        image = np.pad(image, [(0, 0)] * (image.ndim - 2) + [(0, ph), (0, pw)])
    pos = tile_positions(image.shape[-2:], tile, overlap)
    return np.stack([image[..., y:y + tile, x:x + tile] for y, x in pos]), pos


def stitch_tiles(tiles: np.ndarray, positions, shape) -> np.ndarray:
    """Average overlapping ``tiles`` (n, ..., t, t) back into an array of spatial ``shape`` (H, W).

    Examples
    --------
    >>> img = np.random.default_rng(0).random((3, 50, 70))
    >>> t, pos = extract_tiles(img, 32, overlap=8)
    >>> np.allclose(stitch_tiles(t, pos, (50, 70)), img)
    True
    """
    h, w = _check_shape(shape)
    tiles = np.asarray(tiles)
    if tiles.ndim < 3 or len(tiles) != len(positions):
        raise ValueError("tiles must be (n, ..., t, t) with one position per tile")
    t = tiles.shape[-1]
    H, W = max(h, t), max(w, t)
    acc = np.zeros(tiles.shape[1:-2] + (H, W), np.float64)
    cnt = np.zeros((H, W), np.float64)
    for tl, (y, x) in zip(tiles, positions):
        acc[..., y:y + t, x:x + t] += tl
        cnt[y:y + t, x:x + t] += 1
    if (cnt[:h, :w] == 0).any():
        raise ValueError("the tiles do not cover the whole shape")
    return (acc / np.maximum(cnt, 1))[..., :h, :w].astype(np.result_type(tiles.dtype, np.float32))


# ---------------------------------------------------------------------------
# torch Dataset
# ---------------------------------------------------------------------------
def _as_list(x, name):
    if isinstance(x, np.ndarray):
        return [x]
    if isinstance(x, (list, tuple)) and all(isinstance(a, np.ndarray) for a in x) and len(x):
        return list(x)
    raise TypeError(f"{name} must be an ndarray or a non-empty list of ndarrays")


def _with_channels(a: np.ndarray, name: str) -> np.ndarray:
    if a.ndim == 2:
        return a[None]
    if a.ndim == 3:
        return a
    raise ValueError(f"{name} must be (H, W) or (C, H, W), got shape {a.shape}")


class _DatasetBase:
    pass


try:  # torch is a dependency, but keep `import islteach.data` light and robust
    from torch.utils.data import Dataset as _TorchDataset
except Exception:  # pragma: no cover
    _TorchDataset = _DatasetBase


class PairDataset(_TorchDataset):
    """torch ``Dataset`` of (input channels, target) crops with seeded random flips.

    Crop positions are drawn once, at construction (``n_crops`` per image, seeded, optionally
    inside an ``allowed`` area). :meth:`draw` returns item ``idx`` with a random horizontal /
    vertical flip and 90-degree rotation (when ``flips=True``) drawn from ``(seed, idx, step)``:
    the training loop (:func:`islteach.train.draw_batch`) passes its step, so what a training
    sees depends on the seed and the step only, never on how often the dataset was read before
    (a figure or a probe that reads items does not change a later training). ``ds[idx]`` is
    ``ds.draw(idx, step=0)``.

    Parameters
    ----------
    inputs : (C, H, W) or (H, W) array, or list of them
        Network inputs (e.g. normalised phase planes), one entry per image.
    targets : (K, H, W) or (H, W) array, or list of them
        Aligned targets (fluorescence, distance maps, labels).
    crop_size : int
        Side of the square crops.
    n_crops : int
        Crops per image.
    seed : int
    allowed : (H, W) bool array or list of them, optional
        Where crops may lie (e.g. the training mask of :func:`spatial_split`).
    flips : bool
        Random flips and 90-degree rotations.

    Returns (``__getitem__``)
    -------------------------
    x : torch.float32 tensor (C, s, s)
    y : torch tensor (K, s, s): float32 for real targets, int64 for integer targets

    Examples
    --------
    >>> x = np.random.default_rng(0).random((2, 64, 64)).astype(np.float32)
    >>> ds = PairDataset(x, x[0], crop_size=32, n_crops=5, seed=0)
    >>> len(ds), tuple(ds[0][0].shape), tuple(ds[0][1].shape)
    (5, (2, 32, 32), (1, 32, 32))
    """

    def __init__(self, inputs, targets, crop_size: int, n_crops: int = 5, seed: int = 0,
                 allowed=None, flips: bool = True):
        xs = [_with_channels(a, "inputs") for a in _as_list(inputs, "inputs")]
        ys = [_with_channels(a, "targets") for a in _as_list(targets, "targets")]
        if len(xs) != len(ys):
            raise ValueError(f"inputs and targets must hold as many images, got {len(xs)} and {len(ys)}")
        for x, y in zip(xs, ys):
            if x.shape[-2:] != y.shape[-2:]:
                raise ValueError(f"input {x.shape} and target {y.shape} differ in (H, W)")
            if x.dtype.kind not in "uif" or y.dtype.kind not in "uifb":
                raise TypeError(f"inputs must be real-valued and targets numeric, got {x.dtype}, {y.dtype}")
        if allowed is None or isinstance(allowed, np.ndarray):
            allowed = [allowed] * len(xs)
        if len(allowed) != len(xs):
            raise ValueError("allowed must be one mask or one per image")
        self.inputs, self.targets = xs, ys
        self.crop_size, self.n_crops, self.seed, self.flips = int(crop_size), int(n_crops), int(seed), bool(flips)
        rng = np.random.default_rng(seed)
        self.index = []  # (image index, y, x)
        for i, (x, a) in enumerate(zip(xs, allowed)):
            _, pos = random_crops(x[:1], self.crop_size, self.n_crops, seed=rng, allowed=a, return_positions=True)
            self.index.extend((i, int(py), int(px)) for py, px in pos)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, idx):
        return self.draw(idx, step=0)

    def draw(self, idx: int, step: int):
        """Item ``idx`` as training step ``step`` sees it (flips drawn from ``(seed, idx, step)``)."""
        import torch

        if not 0 <= idx < len(self.index):
            raise IndexError(idx)
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"step must be a non-negative integer, got {step!r}")
        i, y0, x0 = self.index[idx]
        s = self.crop_size
        x = self.inputs[i][:, y0:y0 + s, x0:x0 + s]
        y = self.targets[i][:, y0:y0 + s, x0:x0 + s]
        if self.flips:
            r = np.random.default_rng((self.seed, int(idx), int(step)))
            fy, fx, rot = r.integers(0, 2), r.integers(0, 2), r.integers(0, 4)
            if fy:
                x, y = x[:, ::-1], y[:, ::-1]
            if fx:
                x, y = x[:, :, ::-1], y[:, :, ::-1]
            if rot:
                x, y = np.rot90(x, rot, axes=(1, 2)), np.rot90(y, rot, axes=(1, 2))
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        if y.dtype.kind in "uib":
            yt = torch.from_numpy(np.ascontiguousarray(y).astype(np.int64))
        else:
            yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))
        return xt, yt
