"""The vital-signs charts: values by LOINC code (panel components too) and the geometry."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from smartrealm.demoapp.chart import (
    BOTTOM,
    HEIGHT,
    LEFT,
    RIGHT,
    TOP,
    WIDTH,
    measurements,
    vital_charts,
)

LOINC = "http://loinc.org"


def _obs(code: str, when: str, value: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "effectiveDateTime": when,
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "valueQuantity": {"value": value, "unit": "x"}}


def _bp(when: str, systolic: float, diastolic: float) -> dict[str, Any]:
    return {"resourceType": "Observation", "effectiveDateTime": when,
            "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
            "component": [
                {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                 "valueQuantity": {"value": systolic}},
                {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                 "valueQuantity": {"value": diastolic}}]}


def test_panel_components_and_plain_values_are_measured() -> None:
    found = measurements([_bp("2024-01-01T09:00:00+00:00", 120, 80),
                          _obs("8867-4", "2024-01-01", 70)])
    assert {code: [v for _, v in values] for code, values in found.items()} == {
        "8480-6": [120.0], "8462-4": [80.0], "8867-4": [70.0]}


def test_unusable_values_are_skipped() -> None:
    observations = [_obs("8867-4", "2024-01-01", float("nan")),
                    _obs("8867-4", "2024-01-02", True), _obs("8867-4", "not a date", 60),
                    _obs("8867-4", "2024-01-03", "70"),
                    {"resourceType": "Observation", "effectiveDateTime": "2024-01-04"}]
    assert measurements(observations) == {}
    assert vital_charts(observations) == []


def test_time_runs_left_to_right_and_values_bottom_to_top() -> None:
    charts = vital_charts([_obs("8867-4", "2024-03-01", 90), _obs("8867-4", "2024-01-01", 60),
                           _obs("8867-4", "2024-02-01", 75)])
    assert [c.title for c in charts] == ["Heart rate"]
    (line,) = charts[0].lines
    assert [p.when for p in line.points] == ["2024-01-01", "2024-02-01", "2024-03-01"]
    assert [p.value for p in line.points] == [60.0, 75.0, 90.0]
    xs, ys = [p.x for p in line.points], [p.y for p in line.points]
    assert xs[0] == LEFT and xs[-1] == WIDTH - RIGHT and xs == sorted(xs)
    assert ys == sorted(ys, reverse=True)  # a higher value is drawn higher up
    assert line.polyline.count(",") == 3
    assert [t.label for t in charts[0].x_ticks] == ["2024-01-01", "2024-02-01", "2024-03-01"]


def test_one_point_sits_in_the_middle() -> None:
    (chart,) = vital_charts([_obs("29463-7", "2024-01-01", 70)])
    (point,) = chart.lines[0].points
    assert point.x == LEFT + (WIDTH - LEFT - RIGHT) / 2
    assert TOP < point.y < HEIGHT
    assert [t.label for t in chart.y_ticks] == ["69", "70", "71"]


def test_charts_follow_the_fixed_order_with_two_blood_pressure_lines() -> None:
    charts = vital_charts([_obs("8310-5", "2024-01-01", 37), _bp("2024-01-01", 120, 80),
                           _obs("8867-4", "2024-01-01", 70)])
    assert [c.title for c in charts] == ["Heart rate", "Blood pressure", "Body temperature"]
    assert [line.label for line in charts[1].lines] == ["Systolic", "Diastolic"]
    assert charts[1].point_count == 2


dates = st.dates().map(lambda d: d.isoformat())
values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(st.lists(st.tuples(st.sampled_from(["8867-4", "29463-7", "8480-6"]), dates, values),
                max_size=30))
def test_every_point_lies_inside_the_plot(items: list[tuple[str, str, float]]) -> None:
    charts = vital_charts([_obs(code, when, value) for code, when, value in items])
    assert sum(c.point_count for c in charts) == len(items)
    for chart in charts:
        assert len(chart.x_ticks) <= 3
        for line in chart.lines:
            for point in line.points:
                assert LEFT - 1e-6 <= point.x <= WIDTH - RIGHT + 1e-6
                assert TOP - 1e-6 <= point.y <= HEIGHT - BOTTOM + 1e-6
