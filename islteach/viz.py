"""Plotting helpers shared by the chapters (append-only: add yours below, don't edit others').

Plain functions that take NumPy arrays and return matplotlib figures; chapters call
them instead of defining plotting code inline.
"""
from __future__ import annotations

import numpy as np


# --- Chapter 1: virtual staining -------------------------------------------------------------
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
        2-D arrays (any shape each). A value may also be ``(image, cmap)`` to use a
        different colour map for that panel.
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
        if img.ndim != 2:
            raise ValueError(f"panel {title!r} must be a 2-D image, got shape {img.shape}")
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
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 3.5))
    else:
        fig = ax.figure
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
    """Hand a computed value to the book's prose (``{glue:text}`name```) via myst_nb; a no-op without it.

    On Colab the book tooling is not installed, so chapters call this instead of
    ``myst_nb.glue`` directly: the number is still computed and printed by the cell.
    Returns ``value``.
    """
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return value
    _glue(name, value, display=display)
    return value
