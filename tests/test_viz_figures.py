"""Figure conventions of islteach.viz: label colours, colour bars, legends outside the data, no overlapping titles."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from islteach import viz  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def touching_squares(ids, side: int = 6) -> np.ndarray:
    """A grid of squares that touch their 4 (and diagonal) neighbours, labelled with ``ids`` row by row."""
    ids = np.asarray(ids)
    n = int(np.sqrt(ids.size))
    lab = np.zeros((n * side, n * side), np.int32)
    for k, v in enumerate(ids.ravel()):
        r, c = divmod(k, n)
        lab[r * side:(r + 1) * side, c * side:(c + 1) * side] = v
    return lab


def colour_of(rgb, lab, v):
    cols = np.unique(rgb[lab == v].reshape(-1, 3), axis=0)
    assert len(cols) == 1, f"object {v} is drawn in {len(cols)} colours"
    return tuple(cols[0])


# ---------------------------------------------------------------------------- label colours
def test_touching_labels_with_the_same_value_modulo_the_palette_get_different_colours():
    n = len(viz.LABEL_COLORS)
    lab = np.zeros((10, 20), np.int32)
    lab[:, :10], lab[:, 10:] = 3, 3 + n  # `labels % n` would draw both in one colour
    rgb = viz.label_rgb(lab)
    assert colour_of(rgb, lab, 3) != colour_of(rgb, lab, 3 + n)


def test_every_pair_of_neighbours_in_a_grid_of_touching_objects_differs_and_the_background_is_black():
    rng = np.random.default_rng(0)
    ids = rng.choice(np.arange(1, 10_000), size=49, replace=False)  # non-contiguous, random order
    lab = touching_squares(ids)
    rgb = viz.label_rgb(lab)
    assert np.all(rgb[lab == 0] == 0)
    nb = viz.label_neighbours(lab)
    assert sum(len(v) for v in nb.values()) > 0
    for v, others in nb.items():
        for o in others:
            assert colour_of(rgb, lab, v) != colour_of(rgb, lab, o), f"neighbours {v} and {o} look alike"


def test_objects_one_pixel_apart_count_as_neighbours_and_far_ones_do_not():
    lab = np.zeros((8, 30), np.int32)
    lab[:, 0:5], lab[:, 6:11], lab[:, 25:30] = 1, 2, 3  # a 1-pixel gap between 1 and 2
    nb = viz.label_neighbours(lab, radius=2)
    assert nb == {1: {2}, 2: {1}, 3: set()}
    assert viz.label_neighbours(lab, radius=1) == {1: set(), 2: set(), 3: set()}


def test_label_colours_are_not_grey_and_come_from_the_palette():
    lab = touching_squares(np.arange(1, 26))
    rgb = viz.label_rgb(lab)
    palette = {tuple(np.float32(c)) for c in viz.LABEL_COLORS}
    for v in range(1, 26):
        c = colour_of(rgb, lab, v)
        assert c in palette
        assert max(c) - min(c) > 0.1, f"label {v} is drawn in a grey {c}"


def test_label_cmap_has_a_black_background_and_the_palette():
    cm = viz.label_cmap()
    assert tuple(cm(0)[:3]) == (0.0, 0.0, 0.0)
    assert cm.N == len(viz.LABEL_COLORS) + 1


def test_label_functions_refuse_what_is_not_a_label_image():
    with pytest.raises(ValueError, match="integer"):
        viz.label_rgb(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="2-D"):
        viz.label_neighbours(np.zeros((2, 4, 4), np.int32))


# ---------------------------------------------------------------------------- image_grid
def _images(ax):
    return [a for a in ax.get_images()]


def _colorbars(fig):
    return [a for a in fig.axes if a.get_label() == "<colorbar>"]


@pytest.mark.parametrize("cmap", ["labels", "tab20"])
def test_image_grid_draws_a_label_panel_as_distinct_colours(cmap):
    lab = touching_squares([5, 5 + 18, 7, 8])
    fig = viz.image_grid({"labels": (lab, cmap)}, ncols=1)
    shown = _images(fig.axes[0])[0].get_array()
    assert shown.ndim == 3 and shown.shape[-1] == 3, "the labels were drawn through a colour map, not as colours"
    assert colour_of(np.asarray(shown), lab, 5) != colour_of(np.asarray(shown), lab, 23)
    assert not _colorbars(fig), "a label image needs no colour bar"


def test_image_grid_adds_a_colour_bar_to_error_and_distance_maps_by_default_and_not_to_grey_images():
    img = np.random.default_rng(0).random((16, 16))
    fig = viz.image_grid({"image": img, "|U-Net - real|": (img, "magma"), "distance (px)": (img * 9, "viridis")},
                         ncols=3)
    bars = _colorbars(fig)
    assert len(bars) == 2
    assert viz.image_grid({"image": img, "err": (img, "magma")}, colorbar=False).axes[-1].get_label() != "<colorbar>"
    assert len(_colorbars(viz.image_grid({"image": img, "err": (img, "magma")}, colorbar=True))) == 2


def test_image_grid_shows_a_categorical_panel_with_a_legend_of_its_names():
    split = np.zeros((12, 12), np.uint8)
    split[:, 6:] = 1
    split[8:, 6:] = 2
    fig = viz.image_grid({"split": (split, {0: "train", 1: "validation", 2: "test"})}, ncols=1)
    legend = fig.axes[0].get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == ["train", "validation", "test"]
    shown = np.asarray(_images(fig.axes[0])[0].get_array())
    assert len({tuple(shown[0, 0]), tuple(shown[0, 11]), tuple(shown[11, 11])}) == 3
    assert not _colorbars(fig)


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_image_grid_suptitle_overlaps_no_panel_and_no_panel_title():
    img = np.random.default_rng(0).random((32, 32))
    fig = viz.image_grid({f"panel {i} with a title": img for i in range(6)}, ncols=3, size=2.0,
                         suptitle="A figure title that is long enough to reach over several panels")
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    sup = fig._suptitle.get_window_extent(r)
    for ax in fig.axes:
        assert not _overlap(sup, ax.get_window_extent(r)), "suptitle over an image"
        assert not _overlap(sup, ax.title.get_window_extent(r)), "suptitle over a panel title"


def test_outline_grid_names_its_outline_colours_in_a_legend_outside_the_images():
    img = np.random.default_rng(0).random((32, 32))
    lab = touching_squares([1, 2, 3, 4], side=16)
    fig = viz.outline_grid([("a", img, [lab, lab]), ("b", img, lab)], ncols=2, suptitle="expert vs Cellpose",
                           legend=["expert", "Cellpose"])
    assert len(fig.legends) == 1
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["expert", "Cellpose"]
    colours = [tuple(h.get_color()) for h in legend.legend_handles]
    assert colours == [viz.OUTLINE_COLORS[0], viz.OUTLINE_COLORS[1]]
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    for ax in fig.axes:
        assert not _overlap(legend.get_window_extent(r), ax.get_window_extent(r))


# ---------------------------------------------------------------------------- curves
class _History:
    step = list(range(100))
    loss = list(np.linspace(1.0, 0.1, 100))
    val_step = [0, 25, 50, 75, 99]
    val = [0.1, 0.5, 0.7, 0.8, 0.85]

    def smoothed_loss(self, window):
        return self.loss


@pytest.mark.parametrize("own_figure", [True, False])
def test_training_curve_legend_lies_outside_the_plotted_area(own_figure):
    if own_figure:
        fig = viz.plot_training_curve(_History(), title="a run")
        ax = fig.axes[0]
    else:
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
        viz.plot_training_curve(_History(), ax=axes[0], title="Bonte", loss_label="combined loss")
        ax = axes[0]
        assert ax.get_ylabel() == "combined loss"
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()][-1] == "validation PCC"
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    box = legend.get_window_extent(r)
    assert not _overlap(box, ax.get_window_extent(r)), "the legend covers the curves"
    assert not _overlap(box, ax.xaxis.label.get_window_extent(r)), "the legend covers the x-axis label"


def test_canonical_shapes_have_a_colour_bar_for_the_probability():
    yy, xx = np.mgrid[-2:2:16j, -2:2:16j]
    samples = {"model": {8: (xx ** 2 + yy ** 2 < 1).astype(float), 16: np.exp(-xx ** 2)}}
    fig = viz.plot_canonical_shapes(samples, suptitle="canonical shape", colorbar=True)
    assert len(_colorbars(fig)) == 1
    assert not _colorbars(viz.plot_canonical_shapes(samples))  # chapter 5 adds its own when it wants one


def test_error_gallery_names_its_outline_colours():
    img = np.random.default_rng(0).random((40, 40)).astype(np.float32)
    truth = touching_squares([1, 2, 3, 4], side=10)
    pred = truth.copy()
    pred[pred == 2] = 1  # a merge
    fig = viz.error_gallery([img], [truth], [pred], threshold=0.5, k=2, crop=20, ncols=2)
    assert len(fig.legends) == 1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["true outlines", "predicted outlines"]
    assert any(ax.get_title().endswith("merge of 2") for ax in fig.axes)
