"""Plotting helpers shared by the chapters.

Plain functions that take NumPy arrays and return matplotlib figures; chapters call
them instead of defining plotting code inline. The conventions every figure follows:
instance labels in distinct colours with touching objects never alike (:func:`label_rgb`),
a colour bar wherever colour encodes a value (:func:`image_grid`), a legend wherever colour
names a category or an outline, legends outside the data, and constrained layout so that
titles do not overlap the images.
"""
from __future__ import annotations

import numpy as np


# --- Shared: colours for instance labels and categories --------------------------------------
#: Colours of instance labels: matplotlib's tab20 without its two greys, dark tones first, then the
#: light ones (18 colours). :func:`label_rgb` gives touching objects different ones.
LABEL_COLORS = tuple(
    tuple(float(v) for v in c) for c in
    [(0.122, 0.467, 0.706), (1.0, 0.498, 0.055), (0.173, 0.627, 0.173), (0.839, 0.153, 0.157),
     (0.580, 0.404, 0.741), (0.549, 0.337, 0.294), (0.890, 0.467, 0.761), (0.737, 0.741, 0.133),
     (0.090, 0.745, 0.812), (0.682, 0.780, 0.910), (1.0, 0.733, 0.471), (0.596, 0.875, 0.541),
     (1.0, 0.596, 0.588), (0.773, 0.690, 0.835), (0.769, 0.612, 0.580), (0.969, 0.714, 0.824),
     (0.859, 0.859, 0.553), (0.620, 0.855, 0.898)]
)

#: Outline colours of label overlays (green, magenta, blue, yellow), in the order the label images are given.
OUTLINE_COLORS = ((0.1, 0.9, 0.1), (1.0, 0.1, 1.0), (0.2, 0.7, 1.0), (1.0, 0.8, 0.1))

#: Colours of categorical maps (e.g. the train / validation / test split): matplotlib's C0, C1, ...
CATEGORY_COLORS = ((0.122, 0.467, 0.706), (1.0, 0.498, 0.055), (0.173, 0.627, 0.173), (0.839, 0.153, 0.157),
                   (0.580, 0.404, 0.741), (0.549, 0.337, 0.294), (0.890, 0.467, 0.761), (0.737, 0.741, 0.133))

#: Colour maps that name categories, not a quantity: an integer image shown with one of them in
#: :func:`image_grid` is drawn as instance labels (:func:`label_rgb`).
QUALITATIVE_CMAPS = {"tab10", "tab20", "tab20b", "tab20c", "Set1", "Set2", "Set3", "Paired", "Accent",
                     "Dark2", "Pastel1", "Pastel2", "prism", "flag", "labels"}


def label_neighbours(labels, radius: int = 2) -> dict:
    """``{label: set of labels}``: the objects of ``labels`` that touch or come within ``radius`` pixels.

    Parameters
    ----------
    labels : (H, W) int array
        0 is the background.
    radius : int
        Two objects are neighbours when pixels of both lie at most ``radius`` pixels apart
        along a row, a column or a diagonal step of the ``(2 radius + 1)^2`` window.

    Examples
    --------
    >>> lab = np.array([[1, 1, 0, 0, 3], [1, 2, 2, 0, 3]])
    >>> {k: sorted(v) for k, v in label_neighbours(lab, radius=1).items()}
    {1: [2], 2: [1], 3: []}
    """
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise ValueError(f"labels must be a 2-D integer array, got shape {lab.shape}")
    if lab.dtype.kind not in "ui":
        if lab.dtype.kind == "b":
            lab = lab.astype(np.int32)
        else:
            raise ValueError(f"labels must be an integer array, got dtype {lab.dtype}")
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 1:
        raise ValueError(f"radius must be a positive integer, got {radius!r}")
    ids = np.unique(lab[lab > 0])
    out = {int(i): set() for i in ids}
    h, w = lab.shape
    pairs = []
    for dy in range(0, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy == 0 and dx <= 0:
                continue  # each offset once (the other half is the same pairs reversed)
            a = lab[0:h - dy, max(0, -dx):w - max(0, dx)]  # pixel (y, x) ...
            b = lab[dy:h, max(0, dx):w - max(0, -dx)]       # ... and pixel (y + dy, x + dx)
            m = (a > 0) & (b > 0) & (a != b)
            if m.any():
                pairs.append(np.stack([a[m], b[m]], axis=1))
    if pairs:
        p = np.unique(np.sort(np.concatenate(pairs), axis=1), axis=0)
        for i, j in p.tolist():
            out[i].add(j)
            out[j].add(i)
    return out


def label_color_index(labels, n_colors: int = len(LABEL_COLORS), radius: int = 2) -> dict:
    """``{label: colour index}``, different for neighbouring objects (:func:`label_neighbours`).

    Objects are coloured in increasing label order; each starts from the colour of its rank
    (so that consecutive labels differ too) and takes the next one that no coloured neighbour
    has. Neighbours get different colours whenever an object has fewer than ``n_colors``
    neighbours.
    """
    if isinstance(n_colors, bool) or not isinstance(n_colors, (int, np.integer)) or n_colors < 2:
        raise ValueError(f"n_colors must be an integer >= 2, got {n_colors!r}")
    nb = label_neighbours(labels, radius=radius)
    colour = {}
    for rank, lab in enumerate(sorted(nb)):
        taken = {colour[n] for n in nb[lab] if n in colour}
        pick = rank % n_colors
        for k in range(n_colors):
            c = (rank + k) % n_colors
            if c not in taken:
                pick = c
                break
        colour[lab] = pick
    return colour


def label_rgb(labels, colors=LABEL_COLORS, background=(0.0, 0.0, 0.0), radius: int = 2) -> np.ndarray:
    """An RGB picture of an instance label image: a distinct colour per object, black background.

    Touching (and nearly touching, see ``radius``) objects always get different colours, unlike
    ``labels % 20`` through a continuous or grey colour map, where neighbours can look the same.

    Parameters
    ----------
    labels : (H, W) int array
        0 is the background; label values need not be contiguous.
    colors : sequence of RGB triples in [0, 1]
        Default :data:`LABEL_COLORS` (18 colours).
    background : RGB triple
    radius : int
        Neighbourhood of :func:`label_neighbours`.

    Returns
    -------
    ndarray of float32, (H, W, 3)

    Examples
    --------
    >>> lab = np.zeros((4, 6), int); lab[:, :3] = 1; lab[:, 3:] = 19  # 1 % 18 == 19 % 18
    >>> rgb = label_rgb(lab)
    >>> bool((rgb[0, 0] != rgb[0, 5]).any())
    True
    """
    lab = np.asarray(labels)
    colors = np.asarray(colors, dtype=np.float32).reshape(-1, 3)
    index = label_color_index(lab, n_colors=len(colors), radius=radius)
    rgb = np.empty(lab.shape + (3,), np.float32)
    rgb[...] = np.asarray(background, np.float32)
    if index:
        ids = np.fromiter(index.keys(), dtype=np.int64)
        cols = colors[np.fromiter(index.values(), dtype=np.int64)]
        pos = np.searchsorted(ids, lab)  # ids are sorted (label_neighbours uses np.unique)
        fg = lab > 0
        rgb[fg] = cols[pos[fg]]
    return rgb


def label_cmap(n_colors: int = len(LABEL_COLORS)):
    """A matplotlib colour map for colour indices: 0 black (background), ``1..n`` :data:`LABEL_COLORS`.

    For ``ax.imshow(index, cmap=label_cmap(), vmin=0, vmax=n_colors, interpolation="nearest")``
    with ``index`` from :func:`label_color_index` plus one; :func:`label_rgb` does it in one step.
    """
    from matplotlib.colors import ListedColormap

    return ListedColormap([(0.0, 0.0, 0.0)] + [LABEL_COLORS[i % len(LABEL_COLORS)] for i in range(n_colors)],
                          name="islteach_labels")


def category_rgb(image, categories, colors=CATEGORY_COLORS, background=(0.0, 0.0, 0.0)):
    """An RGB picture of a categorical image and the legend entries for it.

    Parameters
    ----------
    image : (H, W) int array
    categories : dict
        ``{value: name}``, e.g. ``{0: "train", 1: "validation", 2: "test"}``; other values are
        drawn in ``background``.

    Returns
    -------
    rgb : ndarray of float32, (H, W, 3)
    handles : list of matplotlib patches, one per category (for ``ax.legend(handles=...)``)
    """
    from matplotlib.patches import Patch

    img = np.asarray(image)
    if not isinstance(categories, dict) or not categories:
        raise ValueError("categories must be a non-empty dict {value: name}")
    rgb = np.empty(img.shape + (3,), np.float32)
    rgb[...] = np.asarray(background, np.float32)
    handles = []
    for k, (value, name) in enumerate(categories.items()):
        c = colors[k % len(colors)]
        rgb[img == value] = c
        handles.append(Patch(facecolor=c, edgecolor="0.3", label=str(name)))
    return rgb, handles


def _cmap_name(cm) -> str:
    return cm if isinstance(cm, str) else getattr(cm, "name", "")


# --- Chapter 1: virtual staining -------------------------------------------------------------
def figure_and_axes(ax=None, figsize=(6.0, 4.0)):
    """``(figure, axes)``: a new figure of ``figsize`` when ``ax`` is None, else ``ax`` and its figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        return plt.subplots(figsize=figsize)
    return ax.figure, ax


def robust_limits(image, pmin: float = 1.0, pmax: float = 99.8) -> tuple[float, float]:
    """Display limits of ``image``: its ``pmin`` and ``pmax`` percentiles (finite values only)."""
    a = np.asarray(image, dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(a, [pmin, pmax])
    if hi <= lo:
        hi = lo + 1e-6
    return float(lo), float(hi)


def image_grid(panels, ncols: int = 4, size: float = 3.0, cmap="gray", limits=None, suptitle=None,
               colorbar="auto"):
    """Show named 2-D images side by side, each with its own robust contrast.

    Parameters
    ----------
    panels : dict or sequence of (title, image)
        2-D arrays (any shape each) or (H, W, 3) RGB pictures. A value may also be
        ``(image, cmap)`` to use a different colour map for that panel, where ``cmap`` may be

        - ``"labels"`` (or a qualitative map such as ``"tab20"`` with an integer image): an
          instance label image, drawn by :func:`label_rgb` (touching objects in different
          colours, black background);
        - a dict ``{value: name}``: a categorical image (e.g. the train / validation / test
          split), drawn in :data:`CATEGORY_COLORS` with a legend under the panel.
    ncols : int
        Panels per row.
    size : float
        Inches per panel.
    cmap : str
        Default colour map.
    limits : dict, optional
        ``{title: (vmin, vmax)}`` to share a contrast between panels (e.g. target and
        prediction); the others use their 1-99.8 percentiles.
    suptitle : str, optional
    colorbar : bool or "auto"
        Colour bars: ``True`` on every panel that shows a quantity through a colour map,
        ``False`` on none, ``"auto"`` (default) on those drawn with a colour map other than
        grey (an error map, a distance map: their colours carry a value that needs a scale).
        Label, categorical and RGB panels never get one.

    Returns
    -------
    matplotlib.figure.Figure
        Drawn with constrained layout, so titles, colour bars and legends do not overlap.

    Examples
    --------
    >>> fig = image_grid({"a": np.zeros((4, 4)), "b": np.eye(4)}, ncols=2)
    >>> len(fig.axes)
    2
    """
    import matplotlib.pyplot as plt

    items = list(panels.items()) if isinstance(panels, dict) else list(panels)
    if not items:
        raise ValueError("panels must not be empty")
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}")
    if colorbar not in (True, False, "auto"):
        raise ValueError(f"colorbar must be True, False or 'auto', got {colorbar!r}")
    limits = limits or {}
    ncols = min(ncols, len(items))
    nrows = -(-len(items) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.5 if suptitle else 0)),
                             squeeze=False, layout="constrained")
    for ax in axes.ravel()[len(items):]:
        ax.remove()
    for ax, (title, img) in zip(axes.ravel(), items):
        cm = cmap
        if isinstance(img, tuple):
            img, cm = img
        img = np.asarray(img)
        quantity = False
        if img.ndim == 3 and img.shape[-1] == 3:  # an RGB picture (e.g. outline_overlay): shown as is
            ax.imshow(np.clip(img, 0, 1) if img.dtype.kind == "f" else img, interpolation="nearest")
        elif img.ndim != 2:
            raise ValueError(f"panel {title!r} must be a 2-D image or an (H, W, 3) RGB picture, "
                             f"got shape {img.shape}")
        elif isinstance(cm, dict):
            rgb, handles = category_rgb(img, cm)
            ax.imshow(rgb, interpolation="nearest")
            ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(handles), 3),
                      fontsize=7, frameon=False, handlelength=1.0, columnspacing=0.8)
        elif _cmap_name(cm) == "labels" or (_cmap_name(cm) in QUALITATIVE_CMAPS and img.dtype.kind in "uib"):
            ax.imshow(label_rgb(img.astype(np.int64)), interpolation="nearest")
        else:
            vmin, vmax = limits.get(title, robust_limits(img))
            im = ax.imshow(img, cmap=cm, vmin=vmin, vmax=vmax, interpolation="nearest")
            quantity = True
        ax.set_title(str(title), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        grey = _cmap_name(cm) in ("gray", "grey", "Greys", "Greys_r", "binary", "binary_r", "gray_r")
        if quantity and (colorbar is True or (colorbar == "auto" and not grey)):
            cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
            cb.ax.tick_params(labelsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    return fig


def plot_training_curve(history, ax=None, val_label="validation PCC", title=None, window: int = 10,
                        loss_label="L1 loss"):
    """Training loss (raw and running mean) and the validation metric of a :class:`islteach.train.History`.

    The legend sits under the axes, outside the plotted area, so that it hides neither the
    loss nor the validation curve. ``loss_label`` names the loss on the y axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(ax, (6.5, 3.8))
    ax.plot(history.step, history.loss, color="0.75", lw=0.8, label="training loss (per step)")
    ax.plot(history.step, history.smoothed_loss(window), color="C0", lw=1.5,
            label=f"training loss (mean of {window})")
    ax.set_xlabel("optimisation step")
    ax.set_ylabel(loss_label)
    handles, labels = ax.get_legend_handles_labels()
    if history.val:
        vals = [v if not isinstance(v, dict) else next(iter(v.values())) for v in history.val]
        ax2 = ax.twinx()
        ax2.plot(history.val_step, vals, "o-", color="C3", label=val_label)
        ax2.set_ylabel(val_label, color="C3")
        ax2.set_ylim(min(0.0, min(vals)), 1.0)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    # below the x-axis label: in axes coordinates, under the tick labels and the label itself
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(len(labels), 2),
              fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    if not fig.get_layout_engine():
        fig.tight_layout()
    return fig


def glue(name: str, value, display: bool = False):
    """Hand a computed value to the book's prose (``{glue:text}`name```) via myst_nb.

    On Colab the book tooling is not installed: there it prints ``name = value``, the line
    the notebook's prose refers to (its roles become ``name``). Returns None, so that a
    glue call at the end of a cell prints nothing in the book.
    """
    try:
        from myst_nb import glue as _glue
    except ImportError:
        print(f"{name} = {value}")
        return None
    _glue(name, _Text(value) if isinstance(value, str) else value, display=display)
    return None


class _Text:
    """A glued string shown as itself: ``{glue:text}`` renders text/plain, which is ``repr`` (quoted) for a str."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


class Table:
    """A table that notebooks and the built book show as a table (HTML), and a terminal as aligned text.

    Made by :func:`show_table`; ``rows`` and ``columns`` stay available for tests.
    """

    def __init__(self, rows, columns, caption=None, floatfmt="{:.3f}"):
        columns = [str(c) for c in columns]
        rows = [list(r) for r in rows]
        for i, r in enumerate(rows):
            if len(r) != len(columns):
                raise ValueError(f"rows[{i}] has {len(r)} cells, expected {len(columns)} (one per column)")
        self.columns, self.rows, self.caption, self.floatfmt = columns, rows, caption, floatfmt

    def _cell(self, v) -> str:
        if v is None:
            return "–"
        if isinstance(v, (float, np.floating)):
            return "–" if not np.isfinite(v) else self.floatfmt.format(float(v))
        return str(v)

    def _repr_html_(self) -> str:
        import html

        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(self._cell(v))}</td>" for v in r) + "</tr>"
                       for r in self.rows)
        cap = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return (f'<table class="table islteach-table">{cap}<thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table>")

    def __repr__(self) -> str:
        cells = [self.columns] + [[self._cell(v) for v in r] for r in self.rows]
        widths = [max(len(row[j]) for row in cells) for j in range(len(self.columns))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return ((self.caption + "\n") if self.caption else "") + "\n".join(lines)


def show_table(rows, columns, caption=None, floatfmt="{:.3f}") -> None:
    """Display ``rows`` (lists of cells, one per column) under ``columns`` as a real table.

    In a notebook and in the built book it is an HTML table (never Markdown text printed as a
    string); elsewhere it prints aligned text. Floats use ``floatfmt``, ``None`` and NaN show
    as "–". Returns None, so that a call at the end of a cell does not show the table twice
    (:class:`Table` builds the same table without showing it).

    Examples
    --------
    >>> t = show_table([["Bonte", 0.8812]], ["method", "F1@0.7"])  # doctest: +SKIP
    """
    table = Table(rows, columns, caption=caption, floatfmt=floatfmt)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(table)
    else:
        print(repr(table))
    return None


# --- Chapter 4: distance maps ----------------------------------------------------------------
def plot_f1_vs_iou(curves, ax=None, title=None, marks=(0.7, 0.9)):
    """F1 score against the IoU threshold of the matching, one line per method.

    Parameters
    ----------
    curves : dict
        ``{name: (thresholds, f1 values)}``.
    ax : matplotlib axes, optional
    title : str, optional
    marks : sequence of float
        IoU thresholds marked with dashed grey lines (Zaki et al. report 0.7 and 0.9).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(curves, dict) or not curves:
        raise ValueError("curves must be a non-empty dict {name: (thresholds, f1)}")
    fig, ax = figure_and_axes(ax, (6.0, 4.0))
    for name, (t, f) in curves.items():
        if len(t) != len(f):
            raise ValueError(f"curve {name!r}: thresholds and f1 differ in length")
        ax.plot(t, f, "o-", ms=3, label=name)
    for m in marks:
        ax.axvline(m, color="0.6", ls="--", lw=0.8)
    ax.set_xlabel("IoU threshold t (a match needs IoU >= t)")
    ax.set_ylabel("F1 = 2TP / (2TP + FP + FN)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="lower left")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_error_types(errors, ax=None, title=None, normalise: bool = True):
    """Grouped bars of Zaki et al.'s error types (false positives / negatives, merges, splits).

    Parameters
    ----------
    errors : dict
        ``{method: {"fp": n, "fn": n, "merges": n, "splits": n, "n_true": n}}``, e.g. the
        ``"errors"`` of :func:`islteach.metrics.score_record` (the long names
        ``"false_positives"`` / ``"false_negatives"`` are accepted too).
    normalise : bool
        Show each count as a percentage of the true objects.

    Returns
    -------
    matplotlib.figure.Figure
    """
    kinds = ("false_positives", "false_negatives", "merges", "splits")
    if not isinstance(errors, dict) or not errors:
        raise ValueError("errors must be a non-empty dict {method: counts}")
    fig, ax = figure_and_axes(ax, (7.0, 3.6))
    n = len(errors)
    width = 0.8 / n
    x = np.arange(len(kinds))
    for i, (name, e) in enumerate(errors.items()):
        short = {"false_positives": "fp", "false_negatives": "fn"}
        v = np.array([e[k] if k in e else e[short.get(k, k)] for k in kinds], dtype=float)
        if normalise:
            v = 100.0 * v / max(1, e.get("n_true", 1))
        bars = ax.bar(x + (i - (n - 1) / 2) * width, v, width, label=name)
        ax.bar_label(bars, fmt="%.1f" if normalise else "%d", fontsize=7)
    ax.set_xticks(x, [k.replace("_", " ") for k in kinds])
    ax.set_ylabel("% of true nuclei" if normalise else "count")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def _outline(labels):
    from skimage.segmentation import find_boundaries

    return find_boundaries(np.asarray(labels), mode="inner")


def error_gallery(images, y_true, y_pred, threshold: float = 0.7, k: int = 8, crop: int = 80,
                  ncols: int = 4, size: float = 2.4, title=None):
    """Crops around the worst errors: true outlines in green, predicted outlines in magenta.

    Errors are collected over all images with :func:`islteach.metrics.error_objects`
    (merges, splits, false negatives, false positives at IoU ``threshold``); merges and splits
    come first (they involve the most objects), then the unmatched objects, largest first.

    Parameters
    ----------
    images : sequence of (H, W) float arrays
    y_true, y_pred : sequences of (H, W) int label arrays
    threshold : float
    k : int
        Number of crops.
    crop : int
        Crop side in pixels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from scipy import ndimage as ndi

    from .metrics import error_objects

    if not (len(images) == len(y_true) == len(y_pred)) or len(images) == 0:
        raise ValueError("images, y_true and y_pred must be non-empty and of the same length")
    cands = []  # (priority, size, image index, centre, kind)
    for i, (yt, yp) in enumerate(zip(y_true, y_pred)):
        e = error_objects(yt, yp, threshold=threshold)
        for pid, tids in e["merges"].items():
            cands.append((0, len(tids), i, ndi.center_of_mass(yp == pid), f"merge of {len(tids)}"))
        for tid, pids in e["splits"].items():
            cands.append((1, len(pids), i, ndi.center_of_mass(yt == tid), f"split in {len(pids)}"))
        for tid in e["false_negatives"]:
            cands.append((2, int((yt == tid).sum()), i, ndi.center_of_mass(yt == tid), "false negative"))
        for pid in e["false_positives"]:
            cands.append((3, int((yp == pid).sum()), i, ndi.center_of_mass(yp == pid), "false positive"))
    cands.sort(key=lambda c: (c[0], -c[1]))
    chosen, used = [], []
    for c in cands:  # skip crops that would show the same place twice
        if any(c[2] == u[0] and abs(c[3][0] - u[1][0]) < crop / 2 and abs(c[3][1] - u[1][1]) < crop / 2
               for u in used):
            continue
        chosen.append(c)
        used.append((c[2], c[3]))
        if len(chosen) == k:
            break
    n = max(1, len(chosen))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.6), squeeze=False,
                             layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (_, _, i, (cy, cx), kind) in zip(axes.ravel(), chosen):
        img = np.asarray(images[i], dtype=np.float32)
        h, w = img.shape
        y0 = int(np.clip(round(cy) - crop // 2, 0, max(0, h - crop)))
        x0 = int(np.clip(round(cx) - crop // 2, 0, max(0, w - crop)))
        sl = (slice(y0, y0 + crop), slice(x0, x0 + crop))
        lo, hi = robust_limits(img[sl])
        rgb = np.repeat(np.clip((img[sl] - lo) / (hi - lo), 0, 1)[..., None], 3, axis=2)
        rgb[_outline(y_true[i][sl])] = OUTLINE_COLORS[0]
        rgb[_outline(y_pred[i][sl])] = OUTLINE_COLORS[1]
        ax.imshow(rgb)
        ax.set_title(f"image {i}: {kind}", fontsize=8)
    if not chosen:
        axes[0, 0].text(0.5, 0.5, "no errors", ha="center", va="center")
    fig.suptitle(title or f"Worst errors at IoU {threshold} (green: truth, magenta: prediction)",
                 fontsize=10)
    outline_legend(fig, ["true outlines", "predicted outlines"])
    return fig


def outline_legend(fig, names, colors=OUTLINE_COLORS, fontsize: int = 8):
    """A legend under ``fig`` naming the outline colours of :func:`outline_overlay` (in order).

    Returns
    -------
    matplotlib.legend.Legend
    """
    from matplotlib.lines import Line2D

    names = [str(n) for n in names]
    if not names:
        raise ValueError("names must name at least one outline colour")
    handles = [Line2D([0], [0], color=colors[k % len(colors)], lw=2.5, label=n) for k, n in enumerate(names)]
    loc = "outside lower center" if fig.get_layout_engine() is not None else "lower center"
    return fig.legend(handles=handles, loc=loc, ncol=min(len(handles), 4), fontsize=fontsize, frameon=False)


# --- Chapter 2: ground truth with Cellpose ----------------------------------------------------
def outline_overlay(image, labels, colors=OUTLINE_COLORS, limits=None) -> np.ndarray:
    """An RGB picture of ``image`` (gray, robust contrast) with the outlines of label images.

    Parameters
    ----------
    image : (H, W) array
    labels : (H, W) int array or sequence of them
        Each label image's object outlines are drawn in the next colour of ``colors``.
    colors : sequence of RGB triples in [0, 1]
    limits : (low, high), optional
        Display range (default :func:`robust_limits`).

    Returns
    -------
    ndarray of float, (H, W, 3)
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {img.shape}")
    if isinstance(labels, np.ndarray) and labels.ndim == 2:
        labels = [labels]
    lo, hi = limits if limits is not None else robust_limits(img)
    rgb = np.repeat(np.clip((img - lo) / (hi - lo), 0, 1)[..., None], 3, axis=2)
    for k, lab in enumerate(labels):
        lab = np.asarray(lab)
        if lab.shape != img.shape:
            raise ValueError(f"labels[{k}] has shape {lab.shape}, image has {img.shape}")
        rgb[_outline(lab)] = colors[k % len(colors)]
    return rgb


def outline_grid(panels, ncols: int = 3, size: float = 4.0, suptitle=None, legend=None):
    """Panels of images with label outlines, e.g. expert vs Cellpose vs classical.

    Parameters
    ----------
    panels : sequence of (title, image, labels)
        ``labels`` is one label image or a list of them (outlined in :data:`OUTLINE_COLORS`
        order); ``image`` may be an (H, W, 3) RGB picture, shown as is, when ``labels`` is None.
    ncols : int
    size : float
        Inches per panel.
    suptitle : str, optional
    legend : sequence of str, optional
        Names of the outline colours, in :data:`OUTLINE_COLORS` order: a legend under the
        figure (:func:`outline_legend`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    panels = list(panels)
    if not panels:
        raise ValueError("panels must hold at least one (title, image, labels) triple")
    ncols = max(1, min(ncols, len(panels)))
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.6), squeeze=False,
                             layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, image, labels) in zip(axes.ravel(), panels):
        pic = np.asarray(image) if labels is None else outline_overlay(image, labels)
        ax.imshow(pic, cmap=None if pic.ndim == 3 else "gray")
        ax.set_title(title, fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    if legend:
        outline_legend(fig, legend)
    return fig


# --- Chapter 5: shape priors ----------------------------------------------------------------
def plot_canonical_shapes(samples, extent: float = 2.0, suptitle=None, size: float = 2.2, colorbar: bool = False):
    """The canonical shape ``p(s)`` sampled at several resolutions, one row per model.

    Parameters
    ----------
    samples : dict
        ``{row title: {resolution: (r, r) array of p(s)}}``, e.g. from
        :func:`islteach.shape_prior.canonical_shape` at 8, 16, 32 and 128 pixels.
    extent : float
        The arrays cover ``[-extent, extent]^2`` in canonical coordinates (for the axes).
    colorbar : bool
        Add one colour bar for p(s) (0 to 1, shared by all panels) at the right of the figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if not isinstance(samples, dict) or not samples:
        raise ValueError("samples must be a non-empty dict {title: {resolution: array}}")
    rows = list(samples.items())
    ncols = max(len(r) for _, r in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(size * ncols + 0.8 * colorbar, size * len(rows) + 0.5),
                             squeeze=False, layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    im = None
    for i, (title, by_res) in enumerate(rows):
        for j, (res, arr) in enumerate(sorted(by_res.items())):
            ax = axes[i, j]
            im = ax.imshow(np.asarray(arr), cmap="magma", vmin=0, vmax=1, extent=(-extent, extent, extent, -extent),
                           interpolation="nearest")
            ax.set_title(f"{title}\n{res}x{res} px" if j == 0 else f"{res}x{res} px", fontsize=9)
    if colorbar and im is not None:
        fig.colorbar(im, ax=axes, shrink=0.8, label="p(s): probability that a point is inside")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def draw_ellipses(ax, ellipses, color=(1.0, 0.8, 0.1), linewidth: float = 1.0, alpha=None):
    """Draw ellipses ``(x_center, y_center, width, height, angle_deg)`` (K, 5) on a matplotlib axis.

    ``alpha`` (K,) optional per-ellipse opacity, e.g. the presence probabilities.
    """
    from matplotlib.patches import Ellipse

    ell = np.asarray(ellipses, dtype=float).reshape(-1, 5)
    alphas = np.ones(len(ell)) if alpha is None else np.clip(np.asarray(alpha, float).ravel(), 0, 1)
    if alphas.shape != (len(ell),):
        raise ValueError(f"alpha must have one value per ellipse ({len(ell)}), got {alphas.shape}")
    for (cx, cy, w, h, ang), a in zip(ell, alphas):
        ax.add_patch(Ellipse((cx, cy), w, h, angle=ang, fill=False, edgecolor=color, linewidth=linewidth, alpha=a))
    return ax


def plot_shape_prior_curves(histories, title=None):
    """Training curves of shape-prior models: loss terms and squared count error vs step.

    ``histories`` is ``{name: dict}`` with the lists ``step``, ``bce``, ``dice``, ``count`` of
    :func:`islteach.shape_prior.train_shape_prior`.
    """
    import matplotlib.pyplot as plt

    if not histories:
        raise ValueError("histories must be a non-empty dict {name: history}")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    for k, (name, h) in enumerate(histories.items()):
        c = f"C{k}"
        axes[0].plot(h["step"], np.add(h["bce"], h["dice"]), color=c, label=f"{name}: BCE + Dice")
        axes[1].plot(h["step"], h["count"], color=c, label=name)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("segmentation loss")
    axes[0].legend(fontsize=8)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel(r"$(\sum_i p(z_i) - K)^2$ (mean per patch)")
    axes[1].set_yscale("log")
    axes[1].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# --- Shared: showing the package's code in a chapter -----------------------------------------
def _source_without_docstrings(obj, nested: bool = True) -> str:
    """The source of ``obj`` (dedented) with its docstring removed, and those of its nested defs if ``nested``."""
    import ast
    import inspect
    import textwrap

    try:
        src = textwrap.dedent(inspect.getsource(obj))
    except (TypeError, OSError) as e:
        raise ValueError(f"obj must be a function, method or class with source code, got {obj!r} ({e})") from None
    tree = ast.parse(src)
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    top = [node for node in tree.body if isinstance(node, defs)]
    if not top:
        raise ValueError(f"obj must be a function, method or class, got {obj!r}")
    nodes = [n for n in ast.walk(top[0]) if isinstance(n, defs)] if nested else [top[0]]
    lines = src.splitlines()
    drop = set()
    for node in nodes:
        first = node.body[0]
        if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)):
            continue
        lo, hi = first.lineno - 1, first.end_lineno  # 0-based [lo, hi)
        if len(node.body) == 1:  # only a docstring: keep a placeholder so the code stays valid
            lines[lo] = " " * first.col_offset + "..."
            lo += 1
        elif hi < len(lines) and not lines[hi].strip():  # and the blank line after it
            hi += 1
        drop.update(range(lo, hi))
    return "\n".join(line for i, line in enumerate(lines) if i not in drop).rstrip() + "\n"


def show_source(obj, nested: bool = True) -> None:
    """Show the source code of a function, method or class without its docstring.

    The docstring is in the book's API reference; a chapter shows the code itself.
    Comments stay. In a notebook the code is shown as a syntax-highlighted block
    (``IPython.display.Code``); elsewhere it is printed.

    Parameters
    ----------
    obj : function, method or class
    nested : bool
        Also drop the docstrings of functions and classes defined inside ``obj``
        (e.g. the methods of a class).

    Examples
    --------
    >>> def f(x):
    ...     '''Twice x.'''
    ...     return 2 * x  # doubled
    >>> print(_source_without_docstrings(f), end="")  # doctest: +SKIP
    def f(x):
        return 2 * x  # doubled
    """
    src = _source_without_docstrings(obj, nested=nested)
    try:
        from IPython import get_ipython
        from IPython.display import Code, display
    except ImportError:  # pragma: no cover - IPython is a dependency of the notebooks only
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(Code(src, language="python"))
    else:
        print(src, end="")
