"""Chapter 4's exercise checks: the chapter's solutions are checked fast and agree with the
references, typical mistakes fail on the case they get wrong (with its hint), other correct ways of
writing the function pass, and ``hmax_seeds`` is the seeding step of ``postprocess.hmax_watershed``.
(That every solution passes its check and every stub fails it is tested for all chapters in
``test_exercises.py``.)"""
import time

import numpy as np
import pytest
from fixtures import BOOK, chapter_exercises, exercise_function
from scipy import ndimage as ndi

from islteach import checks, distance_maps, postprocess
from islteach.notebooks import exercises

ALL = exercises(BOOK / "04_distance_maps.md")
EXERCISES = chapter_exercises("04_distance_maps")
LABELS = ["ex-04-distance-target", "ex-04-hmaxima-seeds"]


def _written(label: str, source: str):
    """The function that ``source``, a cell a learner could write for exercise ``label``, defines."""
    return exercise_function({"label": label, "solution": [source]})


def _failed(report) -> dict:
    """``{case name: hint}`` of the cases a report failed."""
    return {c.name: c.hint for c in report.cases if not c.passed}


def _random_labels(rng, shape=(90, 100), n=10):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    lab = np.zeros(shape, np.int32)
    for _ in range(n):  # later discs overwrite earlier ones: touching, cut and odd-numbered nuclei
        r = rng.randint(3, 14)
        lab[(yy - rng.randint(0, shape[0])) ** 2 + (xx - rng.randint(0, shape[1])) ** 2 < r * r] = rng.randint(1, 50)
    return lab


def test_the_chapter_has_these_code_exercises_and_three_questions():
    assert sorted(EXERCISES) == sorted(LABELS)
    questions = sorted(e["label"] for e in ALL if e["kind"] == "question")
    assert questions == ["ex-04-nucleus-size", "ex-04-predict-h", "ex-04-read-f1-iou"]
    assert all(e["has_solution"] and not e["problems"] for e in ALL)


@pytest.mark.parametrize("label", LABELS)
def test_chapter_solution_is_checked_fast(label):
    solution = exercise_function(EXERCISES[label])
    t0 = time.perf_counter()
    report = checks.evaluate(label, solution)
    assert time.perf_counter() - t0 < 5  # each check is meant to take under 2 s on a CPU
    assert report.passed, str(report)


@pytest.mark.parametrize("label", LABELS)
def test_references_pass_their_own_checks_and_checks_are_deterministic(label):
    first = checks.evaluate(label, checks.reference(label))
    assert first.passed, str(first)
    again = checks.evaluate(label, checks.reference(label))
    assert [c.name for c in first.cases] == [c.name for c in again.cases]


def test_distance_solution_agrees_with_the_chapter_target_on_random_fields():
    distance_target = exercise_function(EXERCISES["ex-04-distance-target"])
    rng = np.random.RandomState(3)
    for _ in range(20):
        lab = _random_labels(rng)
        np.testing.assert_allclose(distance_target(lab), postprocess.distance_map(lab), atol=1e-6)
        np.testing.assert_allclose(distance_target(lab), distance_maps.bonte_targets(lab)[0], atol=1e-6)


def test_seed_solution_agrees_with_the_reference_on_random_maps():
    hmax_seeds = exercise_function(EXERCISES["ex-04-hmaxima-seeds"])
    rng = np.random.RandomState(5)
    for t in range(20):
        lab = _random_labels(rng)
        d = postprocess.distance_map(lab) + (t % 3) * 0.5 * rng.normal(0, 1, lab.shape)
        mask = lab > 0 if t % 4 else d > 0.8
        for h in (0.0, 0.5, 1.5, 3.0):
            assert np.array_equal(hmax_seeds(d, mask, h), distance_maps.hmax_seeds(d, mask, h)), (t, h)


#: A correct distance_target cell, as a learner could write it: the mistakes below are edits of it.
DISTANCE_CELL = '''
def distance_target(labels):
    import numpy as np
    from scipy import ndimage as ndi
    labels = np.asarray(labels)
    out = np.zeros(labels.shape)
    for i in np.unique(labels[labels > 0]):
        m = labels == i
        out[m] = ndi.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1][m]
    return out
'''


def _edited(source: str, *edits) -> str:
    """``source`` with each ``(old, new)`` of ``edits`` replaced (every ``old`` must be there)."""
    for old, new in edits:
        assert old in source, old
        source = source.replace(old, new)
    return source


WRONG_DISTANCES = {
    "the whole foreground at once": ('''
def distance_target(labels):
    import numpy as np
    from scipy import ndimage as ndi
    return ndi.distance_transform_edt(np.asarray(labels) > 0)
''', "two touching squares: two hills, 1 on both sides of the contact line"),
    "no padding at the image edge": (
        _edited(DISTANCE_CELL, ("ndi.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1][m]",
                                "ndi.distance_transform_edt(m)[m]")),
        "a nucleus cut by the image edge: 1 on the edge row"),
    "labels assumed to be 1..n": (
        _edited(DISTANCE_CELL, ("for i in np.unique(labels[labels > 0]):",
                                "for i in range(1, len(np.unique(labels))):")),
        "labels 3 and 7 instead of 1 and 2: the same two hills"),
    "the distance to the border line (minus one)": (
        _edited(DISTANCE_CELL, ("[1:-1, 1:-1][m]", "[1:-1, 1:-1][m] - 1")),
        "a nucleus pixel next to the background is 1"),
    "the caller's labels overwritten": (
        _edited(DISTANCE_CELL, ("    labels = np.asarray(labels)\n", ""),
                               ("    return out", "    labels[:] = 0\n    return out")),
        "the label image is left unchanged"),
}


def test_the_cell_the_distance_mistakes_edit_is_correct():
    assert checks.evaluate("ex-04-distance-target", _written("ex-04-distance-target", DISTANCE_CELL)).passed


WRONG_SEEDS = {
    "plain local maxima, no h-maxima": ('''
def hmax_seeds(distance, mask, h):
    import numpy as np
    from scipy import ndimage as ndi
    from skimage.morphology import local_maxima
    return ndi.label(local_maxima(np.asarray(distance, float)) & mask)[0]
''', "the same discs, h = 10 (more than the smaller peak rises above the neck): 1 seed"),
    "maxima outside the mask kept": ('''
def hmax_seeds(distance, mask, h):
    import numpy as np
    from scipy import ndimage as ndi
    from skimage.morphology import local_maxima, reconstruction
    d = np.asarray(distance, float)
    return ndi.label(local_maxima(reconstruction(d - h, d)))[0]
''', "a high peak outside the mask: no seed there, 1 inside"),
    "the background not lowered": ('''
def hmax_seeds(distance, mask, h):
    import numpy as np
    from scipy import ndimage as ndi
    from skimage.morphology import local_maxima, reconstruction
    d = np.asarray(distance, float)
    return ndi.label(local_maxima(reconstruction(d - h, d), connectivity=1) & mask)[0]
''', "a big and a small separate nucleus (peaks 12 and 3), h = 4: 2 seeds"),
    "a boolean mask of maxima, not numbered": ('''
def hmax_seeds(distance, mask, h):
    import numpy as np
    from skimage.morphology import local_maxima, reconstruction
    d = np.asarray(distance, float)
    return local_maxima(reconstruction(d - h, d)) & mask
''', "two touching discs: an integer label image of the mask's shape"),
    "a threshold at h instead of h-maxima": ('''
def hmax_seeds(distance, mask, h):
    import numpy as np
    from scipy import ndimage as ndi
    return ndi.label((np.asarray(distance) > h) & mask)[0]
''', "two touching discs, h = 2: 2 seeds, one in each disc"),
}


@pytest.mark.parametrize("label, mistake", [("ex-04-distance-target", m) for m in WRONG_DISTANCES]
                         + [("ex-04-hmaxima-seeds", m) for m in WRONG_SEEDS])
def test_a_typical_mistake_fails_the_case_it_gets_wrong(label, mistake):
    mistakes = {"ex-04-distance-target": WRONG_DISTANCES, "ex-04-hmaxima-seeds": WRONG_SEEDS}[label]
    source, case = mistakes[mistake]
    report = checks.evaluate(label, _written(label, source))
    assert not report.passed
    failed = _failed(report)
    assert case in failed and failed[case], str(report)


#: The start of a seeds cell: the background lowered below the mask, as in the chapter's solution.
SEEDS_CELL_START = '''
def hmax_seeds(distance, mask, h):
    import numpy as np
    from scipy import ndimage as ndi
    from skimage.morphology import h_maxima, local_maxima, reconstruction
    d, m = np.asarray(distance, float), np.asarray(mask, bool)
    if not m.any():
        return np.zeros(d.shape, int)
    d = np.where(m, d, min(d[m].min(), 0) - h - 1)
'''

#: Correct ends of :data:`SEEDS_CELL_START`, other than the chapter's solution.
OTHER_CORRECT_SEEDS = {
    "skimage's h_maxima": '''\
    return ndi.label(h_maxima(d, h).astype(bool) & m)[0]
''',
    "4-connected throughout": '''\
    cross = ndi.generate_binary_structure(2, 1)
    return ndi.label(local_maxima(reconstruction(d - h, d, footprint=cross), connectivity=1) & m)[0]
''',
    "8-connected throughout": '''\
    return ndi.label(local_maxima(reconstruction(d - h, d)) & m, structure=np.ones((3, 3)))[0]
''',
}


@pytest.mark.parametrize("way", list(OTHER_CORRECT_SEEDS))
def test_other_correct_ways_of_seeding_pass(way):
    source = SEEDS_CELL_START + OTHER_CORRECT_SEEDS[way]
    report = checks.evaluate("ex-04-hmaxima-seeds", _written("ex-04-hmaxima-seeds", source))
    assert report.passed, str(report)


def test_a_failed_check_hands_back_the_reference(capsys):
    def broken(labels):
        return ndi.distance_transform_edt(np.asarray(labels) > 0)

    fn = checks.run("ex-04-distance-target", broken)
    out = capsys.readouterr().out
    assert fn is postprocess.distance_map
    assert "✗ ex-04-distance-target" in out and "islteach.postprocess.distance_map" in out


# ------------------------------------------------------------- hmax_seeds itself (postprocess, distance_maps)
def test_hmax_seeds_are_the_seeds_of_hmax_watershed():
    from skimage.segmentation import watershed

    assert distance_maps.hmax_seeds is postprocess.hmax_seeds  # one function, exported by both modules
    rng = np.random.RandomState(0)
    for t in range(12):
        lab = _random_labels(rng, (80, 90), 8)
        d = postprocess.distance_map(lab) + (t % 2) * rng.normal(0, 0.3, lab.shape)
        mask = lab > 0
        for h in (0.5, 2.0):
            for connectivity in (1, 2):
                seeds = distance_maps.hmax_seeds(d, mask, h, connectivity=connectivity)
                grown = watershed(-d, seeds, mask=mask, connectivity=connectivity)
                expected = postprocess.hmax_watershed(d, mask, h, min_size=0, connectivity=connectivity)
                assert np.array_equal(postprocess.relabel_sequential(grown), expected)


def test_hmax_seeds_two_touching_discs_give_two_seeds_until_h_exceeds_the_dip():
    yy, xx = np.mgrid[:40, :70]
    two = ((yy - 20) ** 2 + (xx - 20) ** 2 <= 15 ** 2) | ((yy - 20) ** 2 + (xx - 45) ** 2 <= 13 ** 2)
    d = ndi.distance_transform_edt(two)  # peaks 15 and 13, the neck 7 high
    assert distance_maps.hmax_seeds(d, two, 2).max() == 2
    assert distance_maps.hmax_seeds(d, two, 10).max() == 1
    seeds = distance_maps.hmax_seeds(d, two, 2)
    assert seeds.dtype == np.int32 and not seeds[~two].any()


def test_hmax_seeds_keeps_a_separate_nucleus_lower_than_h():
    yy, xx = np.mgrid[:40, :60]
    pair = ((yy - 20) ** 2 + (xx - 20) ** 2 < 144) | ((yy - 20) ** 2 + (xx - 48) ** 2 < 9)
    seeds = distance_maps.hmax_seeds(ndi.distance_transform_edt(pair), pair, 4.0)
    assert seeds.max() == 2 and seeds[20, 48] > 0


def test_hmax_seeds_of_an_empty_mask_is_empty():
    assert not distance_maps.hmax_seeds(np.ones((5, 5)), np.zeros((5, 5), bool), 1).any()


@pytest.mark.parametrize("args, message", [
    ((np.zeros((4, 4, 2)), np.ones((4, 4), bool), 1.0), "distance must be a real"),
    ((np.zeros((4, 4)), np.ones((4, 5), bool), 1.0), "mask must be a boolean"),
    ((np.zeros((4, 4)), np.full((4, 4), 0.5), 1.0), "mask must be a boolean"),
    ((np.zeros((4, 4)), np.ones((4, 4), bool), -1.0), "h must be a number >= 0"),
    ((np.full((4, 4), np.nan), np.ones((4, 4), bool), 1.0), "NaN"),
])
def test_hmax_seeds_refuses_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        distance_maps.hmax_seeds(*args)


def test_hmax_seeds_refuses_a_bad_connectivity():
    with pytest.raises(ValueError, match="connectivity"):
        distance_maps.hmax_seeds(np.zeros((4, 4)), np.ones((4, 4), bool), 1.0, connectivity=3)
