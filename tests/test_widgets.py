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
