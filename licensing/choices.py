"""Choices for WTForms select and radio fields."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wtforms import SelectChoice

__all__ = ["SelectChoice", "select_choices"]


def select_choices(pairs: Iterable[tuple[Any, str]]) -> list[SelectChoice]:
    """(value, label) pairs as WTForms choices (WTForms 3.3 deprecates tuples, and 3.4
    will refuse them)."""
    return [SelectChoice(value, label) for value, label in pairs]
