"""Checks of chapter 4's code exercises (distance maps). See :mod:`islteach.checks`.

``ex-04-distance-target``
    ``distance_target(labels)``: Bonte et al.'s distance-map target, every nucleus pixel's
    distance to the nearest pixel outside its nucleus (reference
    :func:`islteach.postprocess.distance_map`, which :func:`islteach.distance_maps.bonte_targets`
    calls).
``ex-04-hmaxima-seeds``
    ``hmax_seeds(distance, mask, h)``: the seeds of Bonte et al.'s watershed, connected
    components of the h-maxima of the distance inside the mask (reference
    :func:`islteach.postprocess.hmax_seeds`, which :func:`islteach.postprocess.hmax_watershed`
    seeds from).

Every case is a small synthetic field whose answer is known by construction (discs, squares),
plus one field compared with the package's implementation.
"""
from __future__ import annotations

import numpy as np

from . import Case, close, register


def _disc(shape, centre, radius) -> np.ndarray:
    """Pixels strictly closer than ``radius`` to ``centre``: the nearest outside pixel is at ``radius``."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < radius ** 2


def _array(out, shape, name) -> np.ndarray | None:
    """``out`` as a float array when it has ``shape``, else None."""
    try:
        a = np.asarray(out, dtype=float)
    except (TypeError, ValueError):
        return None
    return a if a.shape == tuple(shape) else None


def _all(values, target, atol: float = 1e-6) -> bool:
    """True when every one of ``values`` (a non-empty array) is within ``atol`` of the number ``target``."""
    v = np.asarray(values, dtype=float)
    return v.size > 0 and bool(np.all(np.abs(v - target) <= atol))


def _shape_hint(name, shape):
    return f"{name} must return one value per pixel: an array of the label image's shape {tuple(shape)}"


# ------------------------------------------------------------------------ the distance target
@register("ex-04-distance-target", name="distance_target", reference="islteach.postprocess.distance_map",
          hint="for every nucleus on its own, the Euclidean distance transform of its mask "
               "(scipy.ndimage.distance_transform_edt) gives each of its pixels the distance to the "
               "nearest pixel outside it; copy those values into a zero image, inside that nucleus only")
def _distance_target(fn):
    from ..postprocess import distance_map

    # 1. one disc: its centre is `radius` away from the nearest outside pixel
    lab = _disc((41, 41), (20, 20), 10).astype(np.int32)
    out = _array(fn(lab.copy()), lab.shape, "distance_target")
    if out is None:
        yield Case("a disc of radius 10: an array of the label image's shape", False,
                   _shape_hint("distance_target", lab.shape))
        return
    yield Case("a disc of radius 10: 10 at its centre", close(out[20, 20], 10.0),
               "a nucleus pixel's value is its Euclidean distance to the nearest pixel outside the "
               "nucleus; at the centre of this disc that is its radius (did you measure the distance "
               "of the background to the nucleus instead, or subtract something?)")
    yield Case("the background is 0", _all(out[lab == 0], 0.0),
               "pixels outside every nucleus belong to no nucleus: leave them at 0 (take the distance "
               "transform of the nucleus, not of the background)")
    inner = lab.astype(bool)
    p = np.pad(inner, 1)
    edge = inner & ~(p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:])
    yield Case("a nucleus pixel next to the background is 1", _all(out[edge], 1.0),
               "a pixel with a background neighbour is 1 pixel away from the nearest outside pixel: "
               "the distance runs to the outside pixel itself, not to a line between pixels")

    # 2. two touching squares: one hill each
    two = np.zeros((7, 12), np.int32)
    two[1:6, 1:6] = 1
    two[1:6, 6:11] = 2
    out = _array(fn(two.copy()), two.shape, "distance_target")
    yield Case("two touching squares: two hills, 1 on both sides of the contact line",
               out is not None and close(out[3, 1:11], [1, 2, 3, 2, 1, 1, 2, 3, 2, 1]),
               "touching nuclei must get a hill each: measure every nucleus on its own (the mask of "
               "one label at a time), not the whole foreground labels > 0, where the contact line "
               "is not a border")

    # 3. a nucleus cut by the image edge
    cut = np.zeros((10, 10), np.int32)
    cut[0:5, 2:8] = 1
    out = _array(fn(cut.copy()), cut.shape, "distance_target")
    yield Case("a nucleus cut by the image edge: 1 on the edge row",
               out is not None and _all(out[0, 2:8], 1.0) and close(out[2, 4], 3.0),
               "pixels beyond the image count as outside the nucleus; distance_transform_edt does "
               "not know that: give the nucleus mask a ring of background (np.pad) first and crop "
               "the result back")

    # 4. labels that are not 1..n
    odd = np.where(two == 1, 3, np.where(two == 2, 7, 0)).astype(np.int32)
    out = _array(fn(odd.copy()), odd.shape, "distance_target")
    yield Case("labels 3 and 7 instead of 1 and 2: the same two hills",
               out is not None and close(out, distance_map(odd)),
               "the labels of an image need not be 1..n: loop over the labels present "
               "(np.unique without 0), not over range(1, number of nuclei + 1)")

    # 5. a crowded field, compared with the chapter's target everywhere
    rng = np.random.RandomState(4)
    field = np.zeros((64, 80), np.int32)
    for i in range(8):
        r = int(rng.randint(5, 11))
        field[_disc(field.shape, (rng.randint(0, 64), rng.randint(0, 80)), r)] = i + 1
    before = field.copy()
    out = _array(fn(field), field.shape, "distance_target")
    yield Case("8 discs, some touching, some cut by the edge: the chapter's target at every pixel",
               out is not None and close(out, distance_map(before), atol=1e-5),
               "some pixels differ from the chapter's target: check the rules above (one nucleus at "
               "a time, the image edge counts as outside, 0 on the background) on overlapping discs")
    yield Case("the label image is left unchanged", np.array_equal(field, before),
               "work on copies (e.g. labels == i makes a new mask): the caller's labels must not change")


# ---------------------------------------------------------------------------- h-maxima seeds
def _two_discs():
    """One blob of two overlapping discs and its distance: peaks 15.0 and 13.0, neck 7.0 at column 34.

    The radii differ so that no two peaks tie (equal peaks are a corner case on which
    skimage's ``h_maxima`` and the regional maxima of HMAX disagree).
    """
    from scipy import ndimage as ndi

    yy, xx = np.mgrid[:40, :70]
    two = ((yy - 20) ** 2 + (xx - 20) ** 2 <= 15 ** 2) | ((yy - 20) ** 2 + (xx - 45) ** 2 <= 13 ** 2)
    return ndi.distance_transform_edt(two), two


def _seeds(fn, distance, mask, h):
    """The learner's seeds as an int array, or None when the output is not a label image of the right shape."""
    out = fn(np.array(distance, float), np.array(mask, bool), h)
    try:
        a = np.asarray(out)
    except (TypeError, ValueError):
        return None
    if a.shape != np.shape(mask) or a.dtype.kind not in "ui":  # a bool mask does not number the seeds
        return None
    return a.astype(np.int64)


def _count(seeds) -> int:
    return len(np.unique(seeds[seeds > 0]))


@register("ex-04-hmaxima-seeds", name="hmax_seeds", reference="islteach.postprocess.hmax_seeds",
          hint="four steps: set the distance outside the mask below every value inside it; the h-maxima "
               "transform (skimage.morphology.reconstruction by dilation of distance - h under "
               "distance); its regional maxima (skimage.morphology.local_maxima) inside the mask; "
               "numbered by connected component (scipy.ndimage.label)")
def _hmax_seeds(fn):
    from scipy import ndimage as ndi

    d, two = _two_discs()
    shape_hint = ("hmax_seeds must return an integer label image of the mask's shape: 0 where there "
                  "is no seed, 1..n for the n seeds")

    s = _seeds(fn, d, two, 2.0)
    if s is None:
        yield Case("two touching discs: an integer label image of the mask's shape", False, shape_hint)
        return
    left, right = s[:, :34], s[:, 35:]
    yield Case("two touching discs, h = 2: 2 seeds, one in each disc",
               _count(s) == 2 and _count(left) == 1 and _count(right) == 1
               and not set(np.unique(left[left > 0])) & set(np.unique(right[right > 0])),
               "the smaller disc's centre is a peak about 6 pixels above the neck between the discs, "
               "more than h: "
               "both peaks must survive, each as its own connected seed")
    yield Case("seeds are numbered 1..n, 0 elsewhere",
               sorted(np.unique(s).tolist()) == list(range(_count(s) + 1)),
               "number the connected components of the maxima (scipy.ndimage.label): "
               "background 0, seeds 1, 2, ..., n")

    s = _seeds(fn, d, two, 10.0)
    yield Case("the same discs, h = 10 (more than the smaller peak rises above the neck): 1 seed",
               s is not None and _count(s) == 1,
               "peaks less than h above the saddle that joins them to a higher peak must merge: "
               "look for maxima in the h-maxima transform (reconstruction by dilation of "
               "distance - h under distance), not in the distance itself")

    disc = _disc((50, 50), (25, 25), 12)
    dd = ndi.distance_transform_edt(disc)
    s = _seeds(fn, dd, disc, 1.0)
    yield Case("a single disc: 1 seed, at its centre",
               s is not None and _count(s) == 1 and s[25, 25] > 0,
               "a disc's distance map has one peak, at its centre: one seed there")

    yy, xx = np.mgrid[:50, :50]
    bumpy = dd + 0.4 * np.sin(xx * 1.3) * np.cos(yy * 1.1) * disc
    s = _seeds(fn, bumpy, disc, 1.0)
    yield Case("a bumpy disc (ripples 0.4 high, h = 1): 1 seed",
               s is not None and _count(s) == 1,
               "every ripple is a local maximum of the distance: the h-maxima transform flattens the "
               "ripples lower than h before you look for maxima")

    rect = np.zeros((30, 40), bool)
    rect[5:25, 5:35] = True
    s = _seeds(fn, ndi.distance_transform_edt(rect), rect, 1.0)
    yield Case("a rectangle (its maximum is a flat ridge, not a point): 1 seed",
               s is not None and _count(s) == 1,
               "a maximum can be a plateau of equal values: take regional maxima "
               "(skimage.morphology.local_maxima) and number their connected components, rather "
               "than one seed per maximal pixel")

    outside = np.zeros((40, 80), float)
    inside = _disc(outside.shape, (20, 20), 10)
    bump = _disc(outside.shape, (20, 60), 10)
    outside += ndi.distance_transform_edt(inside) + 2 * ndi.distance_transform_edt(bump)
    s = _seeds(fn, outside, inside, 1.0)
    yield Case("a high peak outside the mask: no seed there, 1 inside",
               s is not None and _count(s) == 1 and not (s[~inside] > 0).any(),
               "only maxima inside the mask are seeds: combine the maxima with the mask (& mask)")

    pair = _disc((40, 60), (20, 20), 12) | _disc((40, 60), (20, 48), 3)
    s = _seeds(fn, ndi.distance_transform_edt(pair), pair, 4.0)
    yield Case("a big and a small separate nucleus (peaks 12 and 3), h = 4: 2 seeds",
               s is not None and _count(s) == 2 and s[20, 48] > 0,
               "the small nucleus is a peak only 3 above the background, less than h, so the h-maxima "
               "transform flattens it and the nucleus is lost; the background is not part of any "
               "nucleus: set the distance outside the mask below every value inside it first")

    s = _seeds(fn, np.zeros((20, 20)), np.zeros((20, 20), bool), 1.0)
    yield Case("an empty mask: no seed", s is not None and _count(s) == 0,
               "a flat image is one big maximum: without the mask it becomes a seed")

    from ..postprocess import hmax_seeds

    noisy, mask = _bumpy_domes()
    s = _seeds(fn, noisy, mask, 1.5)
    ref = hmax_seeds(noisy, mask, 1.5)
    yield Case("12 touching nuclei with bumpy domes, h = 1.5: the chapter's 12 seeds",
               s is not None and _one_to_one(s, ref),
               "your seeds differ from the chapter's on a bumpy map (too many, too few, or in other "
               "places): check each step above (the distance outside the mask, h-maxima, regional "
               "maxima inside the mask, connected components)")


def _bumpy_domes():
    """12 touching nuclei, each a dome as high as its radius, with smooth ripples: (distance, mask).

    Plain local maxima find 17 seeds here, the h-maxima with h = 1.5 find the 12 nuclei. The
    domes have no diagonal ridges (a Euclidean distance map does), so 4- and 8-connected
    versions of the seeding agree on this field.
    """
    from scipy import ndimage as ndi

    rng = np.random.RandomState(1)
    shape = (64, 80)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    dome = np.zeros(shape)
    mask = np.zeros(shape, bool)
    for cy in (14, 32, 50):
        for cx in (14, 34, 54, 70):
            y0, x0, r = cy + rng.randint(-3, 4), cx + rng.randint(-3, 4), int(rng.randint(7, 11))
            inside = (yy - y0) ** 2 + (xx - x0) ** 2 < r * r
            mask |= inside
            dome[inside] = ((r * r - (yy - y0) ** 2 - (xx - x0) ** 2) / r)[inside]
    ripples = ndi.gaussian_filter(rng.normal(0, 1, shape), 1.5)
    return dome + 4 * ripples * mask, mask


def _one_to_one(seeds, ref) -> bool:
    """As many seeds as ``ref``, each overlapping exactly one seed of ``ref`` and none sharing one.

    The extent of a seed may differ (skimage's ``h_maxima`` keeps only each plateau's top pixels,
    another connectivity joins diagonal neighbours); its number and place may not.
    """
    ids = np.unique(seeds[seeds > 0])
    if len(ids) != _count(ref):
        return False
    hit = set()
    for i in ids:
        partners = set(np.unique(ref[(seeds == i) & (ref > 0)]).tolist())
        if len(partners) != 1 or partners & hit:
            return False
        hit |= partners
    return True
