"""Checks of chapter 4's code exercises (distance maps). See :mod:`islteach.checks`."""
from __future__ import annotations

from . import Case, close, register  # noqa: F401
