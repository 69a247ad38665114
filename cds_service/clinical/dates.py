"""Calendar arithmetic in whole months, as clinicians count intervals."""

from __future__ import annotations

from calendar import monthrange
from datetime import date


def months_before(day: date, months: int) -> date:
    """The same day of the month ``months`` earlier, clamped to the month's length."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, monthrange(year, month + 1)[1]))


def whole_months_between(earlier: date, later: date) -> int:
    months = (later.year - earlier.year) * 12 + later.month - earlier.month
    return months - 1 if later.day < earlier.day else months
