"""Claims as code: the outcomes a chapter's prose states, checked against the chapter's own run.

A chapter that writes "the ISL initialisation beats random initialisation" declares that
sentence once, as a :class:`Claim` computed from its results (a value, a comparison and a
threshold), shows the list at the end of its results section and saves it with its
results (``results["claims"]``). ``tests/test_claims.py`` reads the built book's results
files and fails when a claim does not hold, so the book cannot state an outcome that its own
numbers contradict. The prose itself is fixed text: no word of it is chosen at run time.

Comparisons over seeds use :func:`over_seeds`: the claim "A beats B" holds when the mean
difference is larger than the spread between seeds (the larger of A's and B's max - min),
so that it does not rest on one lucky draw.

Examples
--------
>>> c = claim("pcc", "The network beats the linear model.", 0.8, ">", 0.5)
>>> c.holds
True
>>> d = over_seeds("isl-beats-random", "ISL beats random.", [0.4, 0.45], [0.2, 0.25])
>>> round(d.value, 3), round(d.threshold, 3), d.holds
(0.2, 0.05, True)
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

import numpy as np

OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


@dataclass(frozen=True)
class Claim:
    """One stated outcome: ``value op threshold`` must hold.

    Attributes
    ----------
    id : str
        Short, stable name (``"isl-beats-linear"``).
    sentence : str
        The sentence of the chapter the check supports, as the reader sees it.
    value : float
        The measured quantity.
    op : {">", ">=", "<", "<="}
    threshold : float
        What ``value`` is compared with (a fixed target, or a spread between seeds).
    detail : str
        How ``value`` and ``threshold`` were computed (means over which seeds, ...).
    data : dict
        The numbers behind it (per-seed values), saved with the claim.
    """

    id: str
    sentence: str
    value: float
    op: str
    threshold: float
    detail: str = ""
    data: dict = field(default_factory=dict)

    @property
    def holds(self) -> bool:
        return bool(math.isfinite(self.value) and OPS[self.op](self.value, self.threshold))

    def to_dict(self) -> dict:
        return {"id": self.id, "sentence": self.sentence, "value": float(self.value), "op": self.op,
                "threshold": float(self.threshold), "holds": self.holds, "detail": self.detail,
                "data": self.data}


def claim(id: str, sentence: str, value, op: str, threshold, detail: str = "", data=None) -> Claim:
    """A :class:`Claim`, with its arguments checked.

    Raises
    ------
    ValueError
        ``id`` or ``sentence`` empty, ``op`` not one of ``>``, ``>=``, ``<``, ``<=``, or
        ``threshold`` not a finite number.
    TypeError
        ``value`` or ``threshold`` not a real number.
    """
    if not isinstance(id, str) or not id.strip():
        raise ValueError(f"id must be a non-empty string, got {id!r}")
    if not isinstance(sentence, str) or not sentence.strip():
        raise ValueError(f"sentence must be a non-empty string (the chapter's sentence), got {sentence!r}")
    if op not in OPS:
        raise ValueError(f"op must be one of {sorted(OPS)}, got {op!r}")
    for name, v in (("value", value), ("threshold", threshold)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} must be a real number, got {type(v).__name__}")
    if not math.isfinite(float(threshold)):
        raise ValueError(f"threshold must be finite, got {threshold!r}")
    return Claim(id, sentence.strip(), float(value), op, float(threshold), detail, dict(data or {}))


def _values(x, name):
    a = np.asarray(x, dtype=float).ravel()
    if a.size == 0:
        raise ValueError(f"{name} must hold at least one value (one per seed), got none")
    return a


def spread(values) -> float:
    """Max - min of per-seed values (0 for one seed)."""
    a = _values(values, "values")
    return float(a.max() - a.min())


def over_seeds(id: str, sentence: str, a, b, *, min_seeds: int = 1, detail: str = "") -> Claim:
    """"A beats B over seeds": ``mean(a) - mean(b)`` larger than the seed spread.

    Parameters
    ----------
    a, b : sequences of float
        Per-seed values of the two methods (same seeds, higher is better).
    min_seeds : int
        The claim fails (value NaN) when fewer seeds than this were run.

    Returns
    -------
    Claim
        ``value`` = mean difference, ``threshold`` = max(spread(a), spread(b)), ``op`` ``">"``.
    """
    a, b = _values(a, "a"), _values(b, "b")
    diff = float(a.mean() - b.mean())
    thr = max(spread(a), spread(b))
    if min(a.size, b.size) < int(min_seeds):
        diff = float("nan")
    text = detail or f"mean over {a.size} seeds, minus the other's mean; threshold: the larger max-min spread"
    return claim(id, sentence, diff, ">", thr, text, {"a": a.tolist(), "b": b.tolist()})


def at_least(id: str, sentence: str, values, target: float, detail: str = "") -> Claim:
    """"The mean over seeds reaches ``target``" (``mean(values) >= target``)."""
    a = _values(values, "values")
    return claim(id, sentence, float(a.mean()), ">=", target,
                 detail or f"mean over {a.size} seed(s); target {target}", {"values": a.tolist()})


def ratio_at_least(id: str, sentence: str, a, b, factor: float, detail: str = "") -> Claim:
    """"A is at least ``factor`` times B" (ratio of the means over seeds)."""
    a, b = _values(a, "a"), _values(b, "b")
    value = float(a.mean() / b.mean()) if b.mean() > 0 else float("inf")
    return claim(id, sentence, value, ">=", factor,
                 detail or f"ratio of means over {a.size} seeds; target x{factor}",
                 {"a": a.tolist(), "b": b.tolist()})


def to_results(claims) -> list:
    """The claims as JSON-ready dicts, for ``results["claims"]``.

    Raises
    ------
    ValueError
        Two claims share an id.
    """
    claims = list(claims)
    ids = [c.id for c in claims]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"claim ids must be unique, repeated: {dup}")
    return [c.to_dict() for c in claims]


def check_saved(saved) -> list:
    """Re-check saved claims (``results["claims"]``) from their numbers; return the failing ones.

    ``holds`` is recomputed from ``value``, ``op`` and ``threshold``, never read back.
    """
    if not isinstance(saved, list):
        raise TypeError(f"saved claims must be a list of dicts, got {type(saved).__name__}")
    bad = []
    for d in saved:
        c = Claim(d["id"], d["sentence"], float(d["value"]), d["op"], float(d["threshold"]),
                  d.get("detail", ""), d.get("data", {}))
        if not c.holds:
            bad.append(c)
    return bad


def show(claims, title: str = "What this chapter states, checked against this run") -> None:
    """Display the claims as a table (sentence, value, test, holds)."""
    from .viz import show_table

    def fmt(v):
        return "–" if not math.isfinite(v) else f"{v:.3g}"

    rows = [[c.sentence, fmt(c.value), f"{c.op} {fmt(c.threshold)}", "✓ holds" if c.holds else "✗ FAILS"]
            for c in claims]
    show_table(rows, ["statement", "measured", "test", ""], caption=title)
