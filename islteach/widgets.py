"""Interactive viewers (ipywidgets) that always come with a static figure.

A built HTML book cannot run the Python kernel behind a widget, and offline it
cannot even load the widget JavaScript, so every viewer here also draws a static
matplotlib figure of the same panels: the reader of the book sees that figure, the
reader of a live notebook (Colab, Jupyter) gets the interactive viewer on top.

Examples
--------
>>> import numpy as np
>>> panels = {"plane 0": np.zeros((8, 8)), "target": np.eye(8)}
>>> v = panel_viewer(panels, static=False, interactive=False)
>>> v.titles
['plane 0', 'target']
"""
from __future__ import annotations

import numpy as np

from .viz import image_grid, robust_limits

__all__ = ["LiveOnly", "PanelViewer", "enable_colab_widgets", "panel_viewer"]

OFFLINE_NOTE = (
    "Interactive viewer: it needs a running notebook (open this chapter in Colab or Jupyter). "
    "The static figure below shows the same panels."
)


#: The MIME type of a widget view (the same in ipywidgets 7 and 8).
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def enable_colab_widgets() -> bool:
    """On Google Colab, register the custom widget manager (needed for ipywidgets 8); elsewhere do nothing.

    Returns True when it was registered. Colab's own ipywidgets 7.7.1 works without it, but a
    participant who upgraded ipywidgets (or a future Colab image) needs it, and it is harmless.
    """
    import sys

    if "google.colab" not in sys.modules:
        return False
    try:
        from google.colab import output

        output.enable_custom_widget_manager()
        return True
    except Exception:  # an older Colab without it: ipywidgets 7 still renders
        return False


class LiveOnly:
    """Display a widget in a live notebook, and a short note where no kernel runs it.

    The widget's own MIME bundle (``application/vnd.jupyter.widget-view+json``) is kept
    for Jupyter and Colab; ``text/html`` and ``text/plain`` carry :data:`OFFLINE_NOTE`
    for the built book, whose configuration drops the widget view (an offline HTML page
    can neither load the widget JavaScript nor run the Python behind it).
    """

    def __init__(self, widget, note: str = OFFLINE_NOTE):
        self.widget = widget
        self.note = note

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {}
        rep = getattr(self.widget, "_repr_mimebundle_", None)
        if rep is not None:  # ipywidgets 8
            got = rep(include=include, exclude=exclude)
            data = got[0] if isinstance(got, tuple) else got
            bundle.update(data or {})
        else:  # ipywidgets 7 (Colab's 7.7.1) displays through _ipython_display_: build its view by hand
            model_id = getattr(self.widget, "model_id", None) or getattr(self.widget, "_model_id", None)
            if model_id is not None:
                bundle[WIDGET_VIEW] = {"version_major": 2, "version_minor": 0, "model_id": model_id}
        bundle["text/plain"] = self.note
        bundle["text/html"] = f'<p class="islteach-widget-note"><em>{self.note}</em></p>'
        return bundle


class PanelViewer:
    """Flip through named 2-D images of one field, optionally zoomed to a window.

    Parameters
    ----------
    panels : dict or sequence of (title, image)
        2-D images of the same shape (label-free planes, target, prediction, error ...).
    cmap : str
    shared : sequence of str, optional
        Titles that share one contrast (e.g. the real and the predicted fluorescence),
        so that a brighter prediction really looks brighter.

    Attributes
    ----------
    titles : list of str
    """

    def __init__(self, panels, cmap: str = "gray", shared=()):
        items = list(panels.items()) if isinstance(panels, dict) else list(panels)
        if not items:
            raise ValueError("panels must not be empty")
        shape = None
        self.images = {}
        for title, img in items:
            img = np.asarray(img)
            if img.ndim != 2:
                raise ValueError(f"panel {title!r} must be a 2-D image, got shape {img.shape}")
            if shape is None:
                shape = img.shape
            elif img.shape != shape:
                raise ValueError(f"all panels must have one shape; {title!r} is {img.shape}, expected {shape}")
            self.images[str(title)] = img
        self.titles = list(self.images)
        self.shape = shape
        self.cmap = cmap
        shared = [t for t in shared if t in self.images]
        self.limits = {t: robust_limits(self.images[t]) for t in self.titles}
        if shared:
            lo = min(self.limits[t][0] for t in shared)
            hi = max(self.limits[t][1] for t in shared)
            for t in shared:
                self.limits[t] = (lo, hi)

    def window(self, y: int = 0, x: int = 0, size: int | None = None) -> dict:
        """The panels cropped to a ``size x size`` window at (y, x) (whole image when ``size`` is None)."""
        if size is None:
            return dict(self.images)
        h, w = self.shape
        size = int(min(size, h, w))
        y = int(np.clip(y, 0, h - size))
        x = int(np.clip(x, 0, w - size))
        return {t: im[y:y + size, x:x + size] for t, im in self.images.items()}

    def static_figure(self, ncols: int = 4, size: float = 3.0, suptitle=None, zoom=None):
        """All panels side by side (the figure the built book shows); ``zoom=(y, x, size)`` crops them."""
        panels = self.window(*zoom) if zoom else self.images
        return image_grid(panels, ncols=ncols, size=size, cmap=self.cmap, limits=self.limits,
                          suptitle=suptitle)

    def widget(self, zoom_size: int = 256):
        """An ipywidgets viewer: a panel selector, zoom window position and size.

        Returns
        -------
        ipywidgets.Widget
        """
        import ipywidgets as W
        import matplotlib.pyplot as plt

        h, w = self.shape
        smallest = min(32, h, w)  # windows of at least 32 px, or the whole image when it is smaller
        sel = W.ToggleButtons(options=self.titles, description="show")
        size = W.IntSlider(value=min(zoom_size, h, w), min=smallest, max=min(h, w), step=smallest,
                           description="window")
        ys = W.IntSlider(value=0, min=0, max=h - smallest, step=16, description="y")
        xs = W.IntSlider(value=0, min=0, max=w - smallest, step=16, description="x")
        out = W.Output()

        def draw(*_):
            with out:
                out.clear_output(wait=True)
                t = sel.value
                img = self.window(ys.value, xs.value, size.value)[t]
                fig, ax = plt.subplots(figsize=(5, 5))
                lo, hi = self.limits[t]
                ax.imshow(img, cmap=self.cmap, vmin=lo, vmax=hi, interpolation="nearest")
                ax.set_title(t)
                ax.set_xticks([])
                ax.set_yticks([])
                plt.show()

        for c in (sel, size, ys, xs):
            c.observe(draw, names="value")
        draw()
        return W.VBox([sel, W.HBox([size, ys, xs]), out])


def panel_viewer(panels, cmap: str = "gray", shared=(), static: bool = True, interactive: bool = True,
                 ncols: int = 4, suptitle=None, zoom=None):
    """Show an interactive viewer (when ipywidgets works) and a static figure of the same panels.

    Parameters
    ----------
    panels : dict or sequence of (title, image)
    cmap : str
    shared : sequence of str
        Titles sharing one contrast.
    static : bool
        Draw the static matplotlib figure (keep True in the book: the HTML shows it).
    interactive : bool
        Display the ipywidgets viewer (needs a live kernel to respond).
    ncols, suptitle, zoom
        Passed to :meth:`PanelViewer.static_figure`.

    Returns
    -------
    PanelViewer
    """
    v = PanelViewer(panels, cmap=cmap, shared=shared)
    if interactive:
        try:
            from IPython.display import display

            enable_colab_widgets()

            display(LiveOnly(v.widget()))
        except Exception as e:  # no ipywidgets / no frontend: the static figure still shows
            print(f"(interactive viewer unavailable: {type(e).__name__}: {e}; showing the static figure)")
    if static:
        import matplotlib.pyplot as plt

        v.static_figure(ncols=ncols, suptitle=suptitle, zoom=zoom)
        plt.show()
    return v
