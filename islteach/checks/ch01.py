"""Checks of chapter 1's code exercises (virtual staining). See :mod:`islteach.checks`."""
from __future__ import annotations

from . import Case, close, register  # noqa: F401
