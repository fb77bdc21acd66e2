"""Vital signs over time as inline SVG line charts: pure geometry, no JavaScript and no
chart library (the page loads nothing from elsewhere).

Observations are grouped by LOINC code (the FHIR vital-signs profile codes); a blood
pressure panel (85354-9) contributes its systolic and diastolic components."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

LOINC = "http://loinc.org"
# chart title, unit, [(LOINC code, series label, colour)]
CHARTS: tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...] = (
    ("Heart rate", "/min", (("8867-4", "Heart rate", "#c0392b"),)),
    ("Blood pressure", "mm[Hg]", (("8480-6", "Systolic", "#1f5f99"),
                                  ("8462-4", "Diastolic", "#6aa5d8"))),
    ("Body weight", "kg", (("29463-7", "Body weight", "#2e7d32"),)),
    ("Body temperature", "Cel", (("8310-5", "Body temperature", "#b26a00"),)),
)
WIDTH, HEIGHT = 232, 150
LEFT, RIGHT, TOP, BOTTOM = 40, 30, 12, 28
X_TICK_LABELS = 3  # date labels are ~50 px wide: more would overlap


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    value: float
    when: str  # the date, for the point's tooltip and the axis


@dataclass(frozen=True)
class Line:
    label: str
    colour: str
    points: tuple[Point, ...]

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str
    lines: tuple[Line, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def plot_left(self) -> int:
        return LEFT

    @property
    def plot_right(self) -> int:
        return self.width - RIGHT

    @property
    def point_count(self) -> int:
        return sum(len(line.points) for line in self.lines)


def measurements(observations: Iterable[dict[str, Any]]) -> dict[str, list[tuple[datetime, float]]]:
    """LOINC code → (time, value) for every quantity in the observations, components too."""
    found: dict[str, list[tuple[datetime, float]]] = {}
    for obs in observations:
        when = _when(obs)
        if when is None:
            continue
        for code, value in _values(obs):
            found.setdefault(code, []).append((when, value))
    return found


def vital_charts(observations: Iterable[dict[str, Any]]) -> list[Chart]:
    """One chart per vital sign that has at least one value, on a shared time axis."""
    values = measurements(observations)
    times = [when for code_values in values.values() for when, _ in code_values]
    if not times:
        return []
    span = (min(times), max(times))
    charts = []
    for title, unit, series in CHARTS:
        present = [(values[code], label, colour) for code, label, colour in series
                   if values.get(code)]
        if present:
            charts.append(_chart(title, unit, present, span))
    return charts


def _chart(title: str, unit: str,
           series: Sequence[tuple[list[tuple[datetime, float]], str, str]],
           span: tuple[datetime, datetime]) -> Chart:
    numbers = [value for points, _, _ in series for _, value in points]
    low, high = _padded(min(numbers), max(numbers))
    lines = tuple(
        Line(label, colour, tuple(
            Point(_x(when, span), _y(value, low, high), value, when.date().isoformat())
            for when, value in sorted(points)))
        for points, label, colour in series)
    y_ticks = tuple(Tick(_y(v, low, high), _number(v))
                    for v in (low, (low + high) / 2, high))
    dates = sorted({(p.x, p.when) for line in lines for p in line.points})
    x_ticks = tuple(Tick(x, when) for x, when in _spread(dates, X_TICK_LABELS))
    return Chart(title, unit, lines, y_ticks, x_ticks)


def _spread(items: list[tuple[float, str]], most: int) -> list[tuple[float, str]]:
    """At most ``most`` items, evenly picked, always the first and the last."""
    if len(items) <= most:
        return items
    step = (len(items) - 1) / (most - 1)
    return [items[round(i * step)] for i in range(most)]


def _padded(low: float, high: float) -> tuple[float, float]:
    """A value range with some room above and below (a flat series gets ±1)."""
    if high - low < 1e-9:
        return low - 1, high + 1
    margin = (high - low) * 0.1
    return low - margin, high + margin


def _x(when: datetime, span: tuple[datetime, datetime]) -> float:
    start, end = span
    usable = WIDTH - LEFT - RIGHT
    total = (end - start).total_seconds()
    if total <= 0:
        return LEFT + usable / 2
    return LEFT + usable * (when - start).total_seconds() / total


def _y(value: float, low: float, high: float) -> float:
    usable = HEIGHT - TOP - BOTTOM
    return TOP + usable * (high - value) / (high - low)


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.1f}"


def _when(obs: dict[str, Any]) -> datetime | None:
    raw = obs.get("effectiveDateTime")
    if not isinstance(raw, str):
        period = obs.get("effectivePeriod")
        raw = period.get("start") if isinstance(period, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _values(obs: dict[str, Any]) -> list[tuple[str, float]]:
    pairs = []
    for part in [obs, *[c for c in _list(obs.get("component")) if isinstance(c, dict)]]:
        code, value = _loinc(part.get("code")), _quantity(part.get("valueQuantity"))
        if code is not None and value is not None:
            pairs.append((code, value))
    return pairs


def _loinc(concept: object) -> str | None:
    if not isinstance(concept, dict):
        return None
    for coding in _list(concept.get("coding")):
        if isinstance(coding, dict) and coding.get("system") == LOINC:
            code = coding.get("code")
            return code if isinstance(code, str) else None
    return None


def _quantity(quantity: object) -> float | None:
    if not isinstance(quantity, dict):
        return None
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    # json accepts NaN and Infinity; neither can be drawn.
    return float(value) if math.isfinite(value) else None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
