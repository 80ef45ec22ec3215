"""Widgets: live in a notebook, a note plus a static figure in the built (offline) book."""
import numpy as np
import pytest

from islteach.widgets import OFFLINE_NOTE, LiveOnly, PanelViewer


@pytest.mark.parametrize("size", [8, 64])
def test_viewer_widget_bundle_has_the_live_view_and_the_offline_note(size):
    v = PanelViewer({"plane": np.zeros((size, size)), "target": np.eye(size)})
    bundle = LiveOnly(v.widget())._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"] == OFFLINE_NOTE
    assert OFFLINE_NOTE in bundle["text/html"]


def test_book_configuration_drops_the_widget_view_from_html():
    from pathlib import Path

    cfg = (Path(__file__).resolve().parents[1] / "_config.yml").read_text()
    assert '["html", "application/vnd.jupyter.widget-view+json", null]' in cfg
    assert "nb_ipywidgets_js: {}" in cfg


def test_viewer_rejects_panels_of_different_shapes():
    with pytest.raises(ValueError):
        PanelViewer({"a": np.zeros((8, 8)), "b": np.zeros((9, 8))})


class _Widget7:
    """What an ipywidgets 7 widget offers a front end: a model id and _ipython_display_, no _repr_mimebundle_."""

    model_id = "0123abcd"

    def _ipython_display_(self, **kwargs):  # pragma: no cover - never called by LiveOnly
        raise AssertionError("LiveOnly must not fall back to _ipython_display_")


def test_live_only_builds_the_widget_view_for_ipywidgets_7():
    from islteach.widgets import WIDGET_VIEW

    bundle = LiveOnly(_Widget7())._repr_mimebundle_()
    assert bundle[WIDGET_VIEW] == {"version_major": 2, "version_minor": 0, "model_id": "0123abcd"}
    assert bundle["text/plain"] == OFFLINE_NOTE


def test_colab_widget_manager_is_registered_only_on_colab(monkeypatch):
    import sys
    import types

    from islteach.widgets import enable_colab_widgets

    assert enable_colab_widgets() is False
    calls = []
    colab_mod = types.ModuleType("google.colab")
    colab_mod.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append(1))
    google = types.ModuleType("google")
    google.colab = colab_mod
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab_mod)
    assert enable_colab_widgets() is True and calls == [1]
