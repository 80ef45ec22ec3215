"""Claims as code (islteach.claims), and every claim of the built book holds.

The second half reads ``results/<profile>/*.json`` of the book build: each chapter with
outcomes must have saved a non-empty ``claims`` list and its ``headline`` block, and every
claim must hold when recomputed from its saved numbers. In CI (``ISLTEACH_REQUIRE_BOOK``) a
missing results file fails instead of skipping.
"""
import json
import math
import os

import pytest

from islteach import claims
from islteach.provenance import results_dir

# --------------------------------------------------------------------------- the module
def test_claim_holds_by_its_comparison():
    assert claims.claim("a", "A.", 0.8, ">=", 0.8).holds
    assert not claims.claim("a", "A.", 0.8, ">", 0.8).holds
    assert claims.claim("a", "A.", 0.1, "<", 0.2).holds
    assert not claims.claim("a", "A.", float("nan"), "<", 0.2).holds


@pytest.mark.parametrize("kwargs, exc, word", [
    ({"id": ""}, ValueError, "id"),
    ({"sentence": " "}, ValueError, "sentence"),
    ({"op": "=="}, ValueError, "op"),
    ({"value": "0.5"}, TypeError, "value"),
    ({"threshold": True}, TypeError, "threshold"),
    ({"threshold": float("inf")}, ValueError, "threshold"),
])
def test_claim_rejects_bad_arguments_by_name(kwargs, exc, word):
    args = {"id": "x", "sentence": "S.", "value": 1.0, "op": ">", "threshold": 0.0, **kwargs}
    with pytest.raises(exc, match=word):
        claims.claim(**args)


def test_over_seeds_needs_a_margin_larger_than_the_spread():
    # means 0.5 vs 0.4: difference 0.1; spreads 0.2 and 0.0 -> does not hold
    c = claims.over_seeds("x", "A beats B.", [0.4, 0.6], [0.4, 0.4])
    assert math.isclose(c.value, 0.1) and math.isclose(c.threshold, 0.2) and not c.holds
    c = claims.over_seeds("x", "A beats B.", [0.55, 0.6], [0.4, 0.42])
    assert c.holds and c.data == {"a": [0.55, 0.6], "b": [0.4, 0.42]}
    assert not claims.over_seeds("x", "A beats B.", [0.9], [0.1], min_seeds=2).holds


def test_ratio_and_target_claims():
    assert claims.ratio_at_least("r", "A is 1.25 x B.", [0.5, 0.5], [0.4, 0.4], 1.25).holds
    assert not claims.ratio_at_least("r", "A is 1.25 x B.", [0.49], [0.4], 1.25).holds
    assert claims.at_least("t", "Reaches 0.78.", [0.78, 0.80], 0.78).holds
    assert not claims.at_least("t", "Reaches 0.78.", [0.70, 0.80], 0.78).holds


def test_saved_claims_are_rechecked_from_their_numbers_not_their_flag():
    saved = claims.to_results([claims.claim("a", "A.", 0.9, ">", 0.5), claims.claim("b", "B.", 0.1, ">", 0.5)])
    saved[1]["holds"] = True  # a stale or edited flag is not trusted
    assert [c.id for c in claims.check_saved(json.loads(json.dumps(saved)))] == ["b"]
    with pytest.raises(ValueError, match="unique"):
        claims.to_results([claims.claim("a", "A.", 1, ">", 0), claims.claim("a", "B.", 1, ">", 0)])


# --------------------------------------------------------------------------- the built book
#: the headline block each results file must carry (issue 15), nested keys as tuples
HEADLINES = {
    "01_virtual_staining": ["pcc_isl", "pcc_isl_tiles_mean", "pcc_linear", "pcc_sephace"],
    "03_transfer_learning": [("isl_field", k) for k in ("n1_random", "n1_isl", "n1_zero_shot", "n1_control",
                                                        "nmax", "nmax_isl", "nmax_zero_shot", "seeds",
                                                        "n1_tiles")]
                            + [("synthetic", "difficulties"), ("synthetic", "gain_n1_by_difficulty")],
    "04_distance_maps": ["best_recipe", "best_f1_07", "best_f1_09", "classical_f1_07", "classical_f1_09",
                         "fpn2ws_f1_07", "seeds", "isl_transfer_map_isl", "isl_transfer_map_random",
                         "isl_bbbc039_net_map_real", "isl_bbbc039_net_map_virtual"],
    "05_shape_priors": ["f1_05_no_count", "f1_05_count_post", "shape_axis_ratio_init",
                        "shape_axis_ratio_learned"],
}
CHAPTERS = ["01_virtual_staining", "02_cellpose_ground_truth", "03_transfer_learning", "04_distance_maps",
            "05_shape_priors"]


def _results(chapter):
    path = results_dir() / f"{chapter}.json"
    if not path.exists():
        if os.environ.get("ISLTEACH_REQUIRE_BOOK"):
            pytest.fail(f"ISLTEACH_REQUIRE_BOOK is set (CI) but {path} is missing: build the book first")
        pytest.skip(f"{path} not built")
    return json.loads(path.read_text())


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_claim_of_the_built_book_holds(chapter):
    res = _results(chapter)
    saved = res.get("claims")
    assert isinstance(saved, list) and saved, f"{chapter} saved no claims list"
    failing = claims.check_saved(saved)
    assert not failing, "claims that do not hold:\n" + "\n".join(
        f"  {c.id}: {c.sentence!r}: {c.value:.4g} {c.op} {c.threshold:.4g} ({c.detail})" for c in failing)


@pytest.mark.parametrize("chapter", sorted(HEADLINES))
def test_each_results_file_has_its_headline_block(chapter):
    head = _results(chapter).get("headline")
    assert isinstance(head, dict), f"{chapter} has no headline block"
    for key in HEADLINES[chapter]:
        node = head
        for k in (key if isinstance(key, tuple) else (key,)):
            assert k in node, f"{chapter} headline lacks {key}"
            node = node[k]
        assert node is not None, f"{chapter} headline {key} is None"
