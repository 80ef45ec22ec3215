"""Plotting helpers shared by the chapters (append-only: add yours below, don't edit others').

Plain functions that take NumPy arrays and return matplotlib figures; chapters call
them instead of defining plotting code inline.
"""
from __future__ import annotations

import numpy as np


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
               colorbar: bool = False):
    """Show named 2-D images side by side, each with its own robust contrast.

    Parameters
    ----------
    panels : dict or sequence of (title, image)
        2-D arrays (any shape each) or (H, W, 3) RGB pictures. A value may also be
        ``(image, cmap)`` to use a different colour map for that panel.
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
    colorbar : bool
        Add a colour bar to each panel.

    Returns
    -------
    matplotlib.figure.Figure

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
    limits = limits or {}
    ncols = min(ncols, len(items))
    nrows = -(-len(items) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for ax in axes.ravel()[len(items):]:
        ax.remove()
    for ax, (title, img) in zip(axes.ravel(), items):
        cm = cmap
        if isinstance(img, tuple):
            img, cm = img
        img = np.asarray(img)
        if img.ndim == 3 and img.shape[-1] == 3:  # an RGB picture (e.g. outline_overlay): shown as is
            im = ax.imshow(np.clip(img, 0, 1) if img.dtype.kind == "f" else img, interpolation="nearest")
        elif img.ndim != 2:
            raise ValueError(f"panel {title!r} must be a 2-D image or an (H, W, 3) RGB picture, "
                             f"got shape {img.shape}")
        else:
            vmin, vmax = limits.get(title, robust_limits(img))
            im = ax.imshow(img, cmap=cm, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(str(title), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if colorbar:
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_training_curve(history, ax=None, val_label="validation PCC", title=None, window: int = 10):
    """Training loss (raw and running mean) and the validation metric of a :class:`islteach.train.History`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(ax, (6.5, 3.5))
    ax.plot(history.step, history.loss, color="0.75", lw=0.8, label="training loss (per step)")
    ax.plot(history.step, history.smoothed_loss(window), color="C0", lw=1.5,
            label=f"training loss (mean of {window})")
    ax.set_xlabel("optimisation step")
    ax.set_ylabel("L1 loss")
    handles, labels = ax.get_legend_handles_labels()
    if history.val:
        vals = [v if not isinstance(v, dict) else next(iter(v.values())) for v in history.val]
        ax2 = ax.twinx()
        ax2.plot(history.val_step, vals, "o-", color="C3", label=val_label)
        ax2.set_ylabel(val_label, color="C3")
        ax2.set_ylim(min(0.0, min(vals)), 1.0)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="center right", fontsize=8)
    if title:
        ax.set_title(title)
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
    _glue(name, value, display=display)
    return None


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
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
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
        rgb[_outline(y_true[i][sl])] = (0.1, 0.9, 0.1)
        rgb[_outline(y_pred[i][sl])] = (1.0, 0.1, 1.0)
        ax.imshow(rgb)
        ax.set_title(f"image {i}: {kind}", fontsize=8)
    if not chosen:
        axes[0, 0].text(0.5, 0.5, "no errors", ha="center", va="center")
    fig.suptitle(title or f"Worst errors at IoU {threshold} (green: truth, magenta: prediction)",
                 fontsize=10)
    fig.tight_layout()
    return fig


# --- Chapter 2: ground truth with Cellpose ----------------------------------------------------
#: Outline colours of label overlays, in the order the label images are given.
OUTLINE_COLORS = ((0.1, 0.9, 0.1), (1.0, 0.1, 1.0), (0.2, 0.7, 1.0), (1.0, 0.8, 0.1))


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
        Names of the outline colours, shown under the figure title.

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
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, image, labels) in zip(axes.ravel(), panels):
        pic = np.asarray(image) if labels is None else outline_overlay(image, labels)
        ax.imshow(pic, cmap=None if pic.ndim == 3 else "gray")
        ax.set_title(title, fontsize=9)
    head = suptitle or ""
    if legend:
        names = {(0.1, 0.9, 0.1): "green", (1.0, 0.1, 1.0): "magenta", (0.2, 0.7, 1.0): "blue",
                 (1.0, 0.8, 0.1): "yellow"}
        key = ", ".join(f"{names.get(tuple(c), str(c))}: {n}" for n, c in zip(legend, OUTLINE_COLORS))
        head = f"{head}\n({key})" if head else f"({key})"
    if head:
        fig.suptitle(head, fontsize=10)
    fig.tight_layout()
    return fig


# --- Chapter 5: shape priors ----------------------------------------------------------------
def plot_canonical_shapes(samples, extent: float = 2.0, suptitle=None, size: float = 2.2):
    """The canonical shape ``p(s)`` sampled at several resolutions, one row per model.

    Parameters
    ----------
    samples : dict
        ``{row title: {resolution: (r, r) array of p(s)}}``, e.g. from
        :func:`islteach.shape_prior.canonical_shape` at 8, 16, 32 and 128 pixels.
    extent : float
        The arrays cover ``[-extent, extent]^2`` in canonical coordinates (for the axes).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if not isinstance(samples, dict) or not samples:
        raise ValueError("samples must be a non-empty dict {title: {resolution: array}}")
    rows = list(samples.items())
    ncols = max(len(r) for _, r in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(size * ncols, size * len(rows) + 0.5), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (title, by_res) in enumerate(rows):
        for j, (res, arr) in enumerate(sorted(by_res.items())):
            ax = axes[i, j]
            ax.imshow(np.asarray(arr), cmap="magma", vmin=0, vmax=1, extent=(-extent, extent, extent, -extent),
                      interpolation="nearest")
            ax.set_title(f"{title}\n{res}x{res} px" if j == 0 else f"{res}x{res} px", fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
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
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
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
    fig.tight_layout()
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
