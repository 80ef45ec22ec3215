"""Self-checks for the book's exercises: run a learner's function on small cases with known answers.

Each code exercise of a chapter (label ``ex-NN-name``) has one check, registered in
``islteach/checks/chNN.py`` with :func:`register`. A check is a function that takes the learner's
function and yields :class:`Case` results; it never reveals the solution, only what is right and a
hint for what is wrong. In a chapter the check cell is::

    distance_target = checks.run("ex-04-distance-target", distance_target)

:func:`run` prints the report and returns the learner's function when every case passes, else the
package's reference implementation (saying so), so that the cells after an exercise that was left
undone still run. :func:`evaluate` returns the :class:`Report` without printing (for tests).
"""
from __future__ import annotations

import importlib
import traceback
from dataclasses import dataclass, field
from typing import Callable, Iterator

__all__ = ["Case", "Check", "Report", "CHECKS", "register", "evaluate", "run", "reference", "close"]


@dataclass
class Case:
    """One case of a check: its name, whether the learner's function got it right, and a hint when not."""

    name: str
    passed: bool
    hint: str = ""


@dataclass
class Check:
    label: str
    name: str  #: the function the exercise asks for (the stub and the solution define it)
    reference: str  #: dotted path of the package's implementation, the fallback
    cases: Callable[[Callable], Iterator[Case]]
    hint: str = ""  #: shown when the function raises NotImplementedError (the stub)


@dataclass
class Report:
    label: str
    passed: bool
    cases: list = field(default_factory=list)
    not_done: bool = False
    error: str = ""

    def lines(self) -> list:
        check = CHECKS[self.label]
        if self.not_done:
            return [f"✗ {self.label}: {check.name} is not written yet (it raised NotImplementedError).",
                    f"  hint: {check.hint}" if check.hint else ""]
        out = []
        for c in self.cases:
            out.append(f"  {'✓' if c.passed else '✗'} {c.name}" + ("" if c.passed or not c.hint else f"\n      hint: {c.hint}"))
        if self.error:
            out.append(f"  ✗ {self.error}")
        n_ok = sum(c.passed for c in self.cases)
        head = (f"✓ {self.label}: {check.name} passes all {n_ok} cases." if self.passed else
                f"✗ {self.label}: {check.name} passes {n_ok} of {len(self.cases)} cases.")
        return [head] + out

    def __str__(self) -> str:
        return "\n".join(x for x in self.lines() if x)


#: label -> :class:`Check`, filled by the chapter modules below.
CHECKS: dict = {}


def register(label: str, *, name: str, reference: str, hint: str = ""):
    """Decorator: register ``cases(fn)`` (a generator of :class:`Case`) as the check of exercise ``label``."""
    if not label.startswith("ex-"):
        raise ValueError(f"label must look like 'ex-NN-name', got {label!r}")

    def deco(cases):
        if label in CHECKS:
            raise ValueError(f"check {label!r} is registered twice")
        CHECKS[label] = Check(label, name, reference, cases, hint)
        return cases

    return deco


def reference(label: str) -> Callable:
    """The package's implementation that exercise ``label`` asks the learner to write."""
    module, _, attr = _check(label).reference.rpartition(".")
    obj = importlib.import_module(module)
    for part in attr.split("/"):
        obj = getattr(obj, part)
    return obj


def _check(label: str) -> Check:
    if label not in CHECKS:
        raise KeyError(f"label {label!r}: no such exercise check; known: {sorted(CHECKS)}")
    return CHECKS[label]


def evaluate(label: str, fn) -> Report:
    """Run the check of ``label`` on ``fn`` and return its :class:`Report` (prints nothing)."""
    check = _check(label)
    if not callable(fn):
        raise TypeError(f"fn must be the function {check.name!r} that exercise {label} asks for, "
                        f"got {type(fn).__name__}")
    report = Report(label, passed=False)
    try:
        for case in check.cases(fn):
            report.cases.append(case)
    except NotImplementedError:
        report.not_done = True
        return report
    except Exception as exc:  # the learner's code raised: say where, not how to fix it
        tb = traceback.extract_tb(exc.__traceback__)
        where = next((f" (line {f.lineno} of your {check.name})" for f in reversed(tb) if f.name == check.name), "")
        report.error = f"{check.name} raised {type(exc).__name__}: {exc}{where}"
        return report
    report.passed = bool(report.cases) and all(c.passed for c in report.cases)
    return report


def run(label: str, fn) -> Callable:
    """Check ``fn`` for exercise ``label``, print the report, and return the function to use from here on.

    That is ``fn`` when every case passes, else the package's reference implementation, with a
    line saying so (so that the chapter's later cells run in the student notebook too).
    """
    report = evaluate(label, fn)
    print(report)
    if report.passed:
        return fn
    ref = reference(label)
    print(f"  → the rest of the chapter uses islteach's implementation ({_check(label).reference}) instead.")
    return ref


def close(a, b, atol: float = 1e-6, rtol: float = 1e-5) -> bool:
    """True when arrays (or numbers) ``a`` and ``b`` have the same shape and agree within tolerance."""
    import numpy as np

    try:
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    except (TypeError, ValueError):
        return False
    return a.shape == b.shape and bool(np.allclose(a, b, atol=atol, rtol=rtol, equal_nan=True))


# the chapters' checks register themselves on import
from . import ch01, ch02, ch03, ch04, ch05  # noqa: E402,F401
