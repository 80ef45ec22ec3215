"""A small reader for ICS (Image Cytometry Standard) version 2 files.

An ICS v2 file is a text header followed by the pixel data in the same file::

    \\t\\n                         <- first line: the field and line separators
    ics_version\\t2.0
    layout\\tparameters\\t3
    layout\\torder\\tbits\\tx\\ty      <- axis order, fastest varying first
    layout\\tsizes\\t8\\t1344\\t1024  <- bits per sample, then the size of each axis
    representation\\tformat\\tinteger
    representation\\tsign\\tunsigned
    representation\\tcompression\\tgzip
    representation\\tbyte_order\\t1  <- 1 = little endian (1 2 3 4 ...), 4 3 2 1 = big endian
    ...
    end\\t\\n                      <- end of header; the (gzip) pixel stream starts right after

The reader supports what the SEPHACE files use and a little more: integer and
real samples of 8/16/32/64 bits, compression ``uncompressed`` or ``gzip``, any
number of axes. ICS v1 (separate ``.ids`` data file) is not supported.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from islteach.ics import read_ics, write_ics
>>> a = np.arange(12, dtype=np.uint8).reshape(3, 4)
>>> path = os.path.join(tempfile.mkdtemp(), "a.ics")
>>> write_ics(path, a)
>>> np.array_equal(read_ics(path), a)
True
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

__all__ = ["read_ics", "read_ics_header", "write_ics"]


def _split_header(raw: bytes, path) -> tuple[list[list[str]], int]:
    """Split the raw file into header records and the byte offset of the data."""
    if len(raw) < 2:
        raise ValueError(f"{path}: not an ICS file (too short)")
    field_sep = chr(raw[0])
    line_sep = chr(raw[1])
    pos = 2
    records = []
    while True:
        end = raw.find(line_sep.encode("latin-1"), pos)
        if end < 0:
            raise ValueError(f"{path}: ICS header has no 'end' line")
        line = raw[pos:end].decode("latin-1")
        pos = end + 1
        fields = [f for f in line.split(field_sep)]
        # strip a trailing empty field ("end\t") and stray carriage returns
        fields = [f.strip("\r") for f in fields]
        while fields and fields[-1] == "":
            fields.pop()
        if not fields:
            continue
        if fields[0] == "end":
            return records, pos
        records.append(fields)


def read_ics_header(path) -> dict:
    """Parse the header of an ICS v2 file.

    Parameters
    ----------
    path : path-like
        The ``.ics`` file.

    Returns
    -------
    dict
        ``version`` (str), ``order`` (list of axis names, fastest first, without
        ``bits``), ``sizes`` (list of int, same order), ``bits`` (int), ``format``
        (``integer``/``real``), ``sign`` (``signed``/``unsigned``), ``compression``,
        ``byte_order`` (list of int), ``data_offset`` (int), ``history`` (dict of
        the ``history`` records, e.g. microscope settings) and ``records`` (all
        header records as lists of strings).
    """
    raw = Path(path).read_bytes()
    return _parse(raw, path)[0]


def _parse(raw: bytes, path):
    records, offset = _split_header(raw, path)
    h = {"records": records, "data_offset": offset, "history": {}}
    for rec in records:
        cat = rec[0]
        if cat == "ics_version" and len(rec) > 1:
            h["version"] = rec[1]
        elif cat == "layout" and len(rec) > 2:
            h[f"layout_{rec[1]}"] = rec[2:]
        elif cat == "representation" and len(rec) > 2:
            h[rec[1]] = rec[2] if len(rec) == 3 else rec[2:]
        elif cat == "history" and len(rec) > 2:
            h["history"][rec[1]] = " ".join(rec[2:])
    version = h.get("version")
    if version is None or not version.startswith("2"):
        raise ValueError(
            f"{path}: only ICS version 2 files (header and data in one file) are supported, "
            f"got ics_version {version!r}"
        )
    order = h.get("layout_order")
    sizes = h.get("layout_sizes")
    if not order or not sizes or len(order) != len(sizes):
        raise ValueError(f"{path}: ICS header needs matching 'layout order' and 'layout sizes' lines")
    sizes = [int(s) for s in sizes]
    if order[0] != "bits":
        raise ValueError(f"{path}: expected 'bits' as the first layout axis, got {order[0]!r}")
    h["bits"] = sizes[0]
    h["order"] = order[1:]
    h["sizes"] = sizes[1:]
    h.setdefault("format", "integer")
    h.setdefault("sign", "unsigned")
    h.setdefault("compression", "uncompressed")
    bo = h.get("byte_order", ["1"])
    h["byte_order"] = [int(b) for b in ([bo] if isinstance(bo, str) else bo)]
    return h, raw


def _dtype(h, path) -> np.dtype:
    bits, fmt, sign = h["bits"], h["format"], h["sign"]
    if bits % 8 or bits not in (8, 16, 32, 64):
        raise ValueError(f"{path}: unsupported sample size of {bits} bits")
    nbytes = bits // 8
    if fmt == "integer":
        kind = "u" if sign == "unsigned" else "i"
    elif fmt in ("real", "float"):
        kind = "f"
        if nbytes not in (4, 8):
            raise ValueError(f"{path}: unsupported real sample size of {bits} bits")
    else:
        raise ValueError(f"{path}: unsupported representation format {fmt!r}")
    bo = h["byte_order"]
    if nbytes == 1:
        endian = "|"
    elif bo == sorted(bo):
        endian = "<"
    elif bo == sorted(bo, reverse=True):
        endian = ">"
    else:
        raise ValueError(f"{path}: unsupported byte_order {bo}")
    return np.dtype(f"{endian}{kind}{nbytes}")


def read_ics(path) -> np.ndarray:
    """Read the pixels of an ICS v2 file as a numpy array.

    Parameters
    ----------
    path : path-like
        The ``.ics`` file.

    Returns
    -------
    numpy.ndarray
        Shape = the header's axis sizes in reverse order (slowest axis first), so a
        2-D ``x y`` image of sizes ``1344 1024`` becomes ``(1024, 1344)`` = (rows, columns).
        Native byte order; dtype from the header (e.g. ``uint8``).

    Raises
    ------
    ValueError
        When the file is not ICS v2 or the data does not match the header.

    Examples
    --------
    >>> from islteach.ics import read_ics  # doctest: +SKIP
    >>> read_ics("Set 1/fl.ics").shape      # doctest: +SKIP
    (1024, 1344)
    """
    h, raw = _parse(Path(path).read_bytes(), path)
    dtype = _dtype(h, path)
    payload = raw[h["data_offset"]:]
    comp = h["compression"]
    if comp == "gzip":
        try:
            payload = gzip.decompress(payload)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(f"{path}: the gzip pixel stream could not be decompressed ({err})") from err
    elif comp != "uncompressed":
        raise ValueError(f"{path}: unsupported compression {comp!r}")
    n = int(np.prod(h["sizes"]))
    expected = n * dtype.itemsize
    if len(payload) < expected:
        raise ValueError(
            f"{path}: pixel data holds {len(payload)} bytes, the header promises {expected} "
            f"({'x'.join(map(str, h['sizes']))} samples of {h['bits']} bits)"
        )
    arr = np.frombuffer(payload[:expected], dtype=dtype).reshape(h["sizes"][::-1])
    return arr.astype(dtype.newbyteorder("="), copy=True)


def write_ics(path, array: np.ndarray, compression: str = "gzip") -> None:
    """Write ``array`` as an ICS v2 file (used by the tests; mirrors :func:`read_ics`).

    Parameters
    ----------
    path : path-like
    array : numpy.ndarray
        Integer or float array; axes are written fastest first (``x y ...``).
    compression : {"gzip", "uncompressed"}
    """
    a = np.ascontiguousarray(array)
    if a.dtype.kind not in "uif":
        raise TypeError(f"array must be an integer or float array, got {a.dtype}")
    if compression not in ("gzip", "uncompressed"):
        raise ValueError(f"compression must be 'gzip' or 'uncompressed', got {compression!r}")
    a = a.astype(a.dtype.newbyteorder("<"))
    names = ["x", "y", "z", "t", "c"][: a.ndim]
    bits = a.dtype.itemsize * 8
    fmt = {"u": "integer", "i": "integer", "f": "real"}[a.dtype.kind]
    sign = "signed" if a.dtype.kind in "if" else "unsigned"
    lines = [
        "ics_version\t2.0",
        f"filename\t{Path(path).stem}",
        f"layout\tparameters\t{a.ndim + 1}",
        "layout\torder\tbits\t" + "\t".join(names),
        f"layout\tsizes\t{bits}\t" + "\t".join(str(s) for s in a.shape[::-1]),
        f"layout\tsignificant_bits\t{bits}",
        f"representation\tformat\t{fmt}",
        f"representation\tsign\t{sign}",
        f"representation\tcompression\t{compression}",
        "representation\tbyte_order\t" + "\t".join(str(i + 1) for i in range(a.dtype.itemsize)),
        "end\t",
    ]
    header = ("\t\n" + "\n".join(lines) + "\n").encode("latin-1")
    data = a.tobytes()
    if compression == "gzip":
        data = gzip.compress(data)
    Path(path).write_bytes(header + data)
