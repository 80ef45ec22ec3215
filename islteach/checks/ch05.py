"""Checks of chapter 5's code exercises (shape priors). See :mod:`islteach.checks`."""
from __future__ import annotations

from . import Case, close, register  # noqa: F401
