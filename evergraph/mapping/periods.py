"""Calendar periods (year, quarter, month) that dated papers fall into, labelled as text.

Labels sort in time order ("2008", "2008-Q3", "2008-07") and a range of them is contiguous:
a period without papers is still a period (zero counts are data for a trend).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum


class Freq(StrEnum):
    year = "year"
    quarter = "quarter"
    month = "month"


_STEPS = {Freq.year: 12, Freq.quarter: 3, Freq.month: 1}


def _index(when: datetime, freq: Freq) -> int:
    """Months since year 0, rounded down to the period's first month."""
    months = when.year * 12 + when.month - 1
    return months - months % _STEPS[freq]


def _label(index: int, freq: Freq) -> str:
    year, month0 = divmod(index, 12)
    if freq is Freq.year:
        return f"{year:04d}"
    if freq is Freq.quarter:
        return f"{year:04d}-Q{month0 // 3 + 1}"
    return f"{year:04d}-{month0 + 1:02d}"


def period_of(when: datetime, freq: Freq) -> str:
    return _label(_index(when, freq), freq)


def period_range(first: datetime, last: datetime, freq: Freq) -> list[str]:
    """Every period from the one holding `first` to the one holding `last`, in order."""
    step = _STEPS[freq]
    return [_label(i, freq) for i in range(_index(first, freq), _index(last, freq) + 1, step)]


def period_start(label: str, freq: Freq) -> datetime:
    """The first instant of a labelled period (UTC)."""
    if freq is Freq.year:
        return datetime(int(label), 1, 1, tzinfo=UTC)
    year, part = label.split("-")
    month = (int(part[1:]) - 1) * 3 + 1 if freq is Freq.quarter else int(part)
    return datetime(int(year), month, 1, tzinfo=UTC)
