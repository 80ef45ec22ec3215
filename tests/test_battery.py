"""Bad-input battery: every public array-taking function gets wrong shapes, dtypes, NaN/inf, empty,
all-background and negative-label inputs, and must answer with a correct result or a
ValueError/TypeError whose message names the argument. No silent garbage.

Each entry of ``SPECS`` is: a name, the function, a factory of valid keyword arguments, and the
kind of each array argument ("labels", "image", "mask", "stack"). The battery derives the bad
inputs from the kind, so adding a function is one line.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pytest

import torch

from islteach import data, groundtruth, metrics, postprocess, shape_prior, train


def _disc_labels(shape=(48, 48)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    lab = np.zeros(shape, np.int32)
    lab[(yy - 14) ** 2 + (xx - 14) ** 2 < 64] = 1
    lab[(yy - 30) ** 2 + (xx - 32) ** 2 < 81] = 2
    return lab


LAB = _disc_labels()
LAB2 = np.roll(LAB, 2, axis=1)
IMG = (LAB > 0).astype(np.float32) + 0.1 * np.random.default_rng(0).random(LAB.shape).astype(np.float32)
IMG2 = np.roll(IMG, 1, axis=0)
DIST = postprocess.distance_map(LAB, mode="normalized").astype(np.float32)
BORDER = postprocess.blurred_border(LAB).astype(np.float32)
MASK = LAB > 0


@dataclass
class Spec:
    name: str
    func: object
    valid: object  # () -> dict of keyword arguments
    kinds: dict = field(default_factory=dict)  # argument -> "labels" | "image" | "mask" | "stack"
    nd: bool = False  # True: any number of dimensions is valid (1-D and 4-D inputs need a correct result)
    moves_values: bool = False  # True: only copies/reshapes values, so NaN/inf in gives NaN/inf out correctly


def _label_pair(name, fn, a="y_true", b="y_pred"):
    """The Spec of a function of two label images (the truth and a prediction)."""
    return Spec(name, fn, lambda: {a: LAB, b: LAB2}, {a: "labels", b: "labels"})


SPECS = [
    Spec("metrics.pcc", metrics.pcc, lambda: dict(x=IMG, y=IMG2), {"x": "image", "y": "image"}),
    Spec("metrics.iou", metrics.iou, lambda: dict(x=MASK, y=LAB2 > 0), {"x": "mask", "y": "mask"}),
    _label_pair("metrics.matching", metrics.matching),
    _label_pair("metrics.mean_ap", metrics.mean_ap),
    _label_pair("metrics.match_pairs", metrics.match_pairs),
    Spec("postprocess.relabel_sequential", postprocess.relabel_sequential, lambda: dict(labels=LAB * 3),
         {"labels": "labels"}, nd=True),
    Spec("postprocess.remove_small_objects", postprocess.remove_small_objects,
         lambda: dict(labels=LAB, min_size=10), {"labels": "labels"}),
    Spec("postprocess.distance_map", postprocess.distance_map, lambda: dict(labels=LAB), {"labels": "labels"}),
    Spec("postprocess.blurred_border", postprocess.blurred_border, lambda: dict(labels=LAB), {"labels": "labels"}),
    Spec("postprocess.hmax", postprocess.hmax, lambda: dict(f=DIST, h=0.1), {"f": "image"}),
    Spec("postprocess.hmax_watershed", postprocess.hmax_watershed, lambda: dict(distance=DIST, mask=MASK, h=0.1),
         {"distance": "image", "mask": "mask"}),
    Spec("postprocess.seeded_watershed", postprocess.seeded_watershed, lambda: dict(distance=DIST, border=BORDER),
         {"distance": "image", "border": "image"}),
    Spec("data.normalize_percentile", data.normalize_percentile, lambda: dict(x=IMG), {"x": "image"}, nd=True),
    Spec("data.labels_from_color_mask", data.labels_from_color_mask, lambda: dict(mask=LAB.astype(np.uint8) * 40),
         {"mask": "labels"}),
    Spec("groundtruth.classical_labels", groundtruth.classical_labels, lambda: dict(image=IMG), {"image": "image"}),
    Spec("groundtruth.delete_labels", groundtruth.delete_labels, lambda: dict(labels=LAB, ids=[1]),
         {"labels": "labels"}),
    Spec("groundtruth.merge_labels", groundtruth.merge_labels, lambda: dict(labels=LAB, ids=[1, 2]),
         {"labels": "labels"}),
    Spec("groundtruth.relabel", groundtruth.relabel, lambda: dict(labels=LAB * 2), {"labels": "labels"}),
    Spec("groundtruth.labels_to_mask", groundtruth.labels_to_mask, lambda: dict(labels=LAB), {"labels": "labels"}),
    Spec("groundtruth.labels_to_distance", groundtruth.labels_to_distance, lambda: dict(labels=LAB),
         {"labels": "labels"}),
    _label_pair("metrics.error_objects", metrics.error_objects),
    _label_pair("metrics.best_iou_per_object", metrics.best_iou_per_object),
    _label_pair("metrics.score_record", metrics.score_record, "ys_true", "ys_pred"),
    Spec("shape_prior.count_instances", shape_prior.count_instances, lambda: dict(labels=LAB), {"labels": "labels"}),
    Spec("shape_prior.evaluate_instances", shape_prior.evaluate_instances,
         lambda: dict(gt_labels=LAB[None], pred_labels=LAB2[None]), {"gt_labels": "labels", "pred_labels": "labels"}),
    Spec("train.predict_tiled", train.predict_tiled,
         lambda: dict(model=torch.nn.Conv2d(1, 1, 3, padding=1), image=IMG[None], tile=32, overlap=8),
         {"image": "image"}),
    Spec("train.predict_tiled(tta=True)", train.predict_tiled,
         lambda: dict(model=torch.nn.Conv2d(1, 1, 3, padding=1), image=IMG[None], tile=32, overlap=8, tta=True),
         {"image": "image"}),
    Spec("data.extract_tiles", data.extract_tiles, lambda: dict(image=IMG, tile=16), {"image": "image"},
         moves_values=True, nd=True),
]


def _bad_inputs(kind, valid, nd=False):
    """(label, value, must_raise) for one argument of a kind, derived from its valid value."""
    v = np.asarray(valid)
    out = [
        ("None", None, True),
        ("string", "not an array", True),
        ("1-D", v.reshape(-1), not nd),
        ("4-D", v[None, None], not nd),
        ("empty", v[:0, :0], False),
    ]
    if kind == "labels":
        out += [
            ("float with fractions", v.astype(np.float64) + 0.5, True),
            ("negative labels", -v.astype(np.int64), True),
            ("NaN", np.where(v > 0, np.nan, 0.0), True),
            ("all background", np.zeros_like(v), False),
        ]
    elif kind == "image":
        out += [
            ("NaN", np.where(v > v.mean(), np.nan, v).astype(np.float32), True),
            ("inf", np.where(v > v.mean(), np.inf, v).astype(np.float32), True),
            ("complex", v.astype(np.complex64), True),
            ("all zero", np.zeros_like(v), False),
        ]
    elif kind == "mask":
        out += [
            ("NaN", np.where(v, np.nan, 0.0), True),
            ("all background", np.zeros_like(v), False),
        ]
    return out


def _cases():
    for spec in SPECS:
        for arg, kind in spec.kinds.items():
            for label, value, must_raise in _bad_inputs(kind, spec.valid()[arg], spec.nd):
                if spec.moves_values and label in ("NaN", "inf", "complex"):
                    continue
                yield pytest.param(spec, arg, value, must_raise, id=f"{spec.name}-{arg}-{label}")
        # shape mismatch between two array arguments of the same call
        arrays = [a for a, k in spec.kinds.items() if k in ("labels", "image", "mask")]
        if len(arrays) == 2:
            a0 = arrays[1]
            cropped = np.asarray(spec.valid()[a0])[:-3, :-5]
            yield pytest.param(spec, a0, cropped, True, id=f"{spec.name}-{a0}-shape mismatch")


def _finite(result) -> bool:
    if result is None:
        return True
    if isinstance(result, (float, np.floating)):
        return math.isfinite(float(result))
    if isinstance(result, np.ndarray):
        return result.dtype.kind not in "fc" or bool(np.all(np.isfinite(result)))
    if isinstance(result, (tuple, list)):
        return all(_finite(r) for r in result)
    if isinstance(result, dict):
        return all(_finite(r) for r in result.values())
    if hasattr(result, "as_dict"):
        d = result.as_dict()
        return all(_finite(np.asarray(x, dtype=float)) if isinstance(x, (list, tuple, np.ndarray)) and len(x) and
                   not isinstance(np.asarray(x).flat[0], str) else True for x in d.values())
    return True


@pytest.mark.parametrize("spec,arg,value,must_raise", list(_cases()))
def test_bad_input_gets_a_clear_error_or_a_correct_result(spec, arg, value, must_raise):
    kwargs = spec.valid()
    kwargs[arg] = value
    try:
        result = spec.func(**kwargs)
    except (ValueError, TypeError) as e:
        msg = str(e)
        # the message names the bad argument (or the argument it conflicts with, e.g. ids of a label image)
        named = [a for a in kwargs if re.search(rf"\b{re.escape(a)}\b", msg)]
        assert named, f"{spec.name}({arg}=<bad>) raised {type(e).__name__} without naming {arg!r}: {msg!r}"
        return
    assert not must_raise, f"{spec.name} accepted a bad {arg!r} silently and returned {type(result).__name__}"
    assert _finite(result), f"{spec.name} returned non-finite values for {arg!r}"


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_valid_input_is_accepted(spec):
    result = spec.func(**spec.valid())
    assert _finite(result)
