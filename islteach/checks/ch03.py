"""Checks of chapter 3's code exercises (transfer learning). See :mod:`islteach.checks`."""
from __future__ import annotations

from . import Case, close, register  # noqa: F401
