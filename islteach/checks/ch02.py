"""Checks of chapter 2's code exercises (Cellpose ground truth). See :mod:`islteach.checks`."""
from __future__ import annotations

from . import Case, close, register  # noqa: F401
