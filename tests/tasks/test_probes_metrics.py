"""fetch_frames: Prometheus range queries into the long-form frame the report reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from tasks.probes.metrics import COLUMNS, fetch_frames
from tests.tasks.helpers import poll


def _frame(prometheus: str) -> pd.DataFrame:
    end = datetime.now(UTC)
    return fetch_frames(prometheus, {"val": "gameday_test_value", "total": "sum(gameday_test_value)"},
                        end - timedelta(seconds=30), end, step=1.0)


def test_long_form_frame_with_rendered_series(prometheus: str, exporter: str) -> None:
    """Each observable's series become rows: observable, series like {pod="a"}, UTC timestamp, float value."""
    [frame] = poll(lambda: [f] if set((f := _frame(prometheus))["observable"]) == {"val", "total"} else None,
                   timeout=30, interval=0.5)
    assert list(frame.columns) == COLUMNS
    assert set(frame[frame["observable"] == "val"]["series"]) == {
        f'{{instance="{exporter}",job="test",pod="a"}}', f'{{instance="{exporter}",job="test",pod="b"}}'}
    assert set(frame[frame["observable"] == "total"]["series"]) == {"{}"}
    assert str(frame["timestamp"].dt.tz) == "UTC" and frame["value"].dtype == float
    assert set(frame[frame["observable"] == "total"]["value"]) == {49.0}


def test_observables_given_as_blueprint_models(prometheus: str) -> None:
    """Blueprint Observables (name + query) are accepted as well as a name → query mapping."""
    from blueprints.campaign import Observable

    end = datetime.now(UTC)
    obs = [Observable(name="total", query="sum(gameday_test_value)")]
    [frame] = poll(lambda: None if (f := fetch_frames(prometheus, obs, end - timedelta(seconds=30),
                                                      datetime.now(UTC), 1.0)).empty else [f], timeout=30, interval=0.5)
    assert set(frame["observable"]) == {"total"}


def test_nothing_returned_gives_an_empty_typed_frame(prometheus: str) -> None:
    """An observable with no data gives an empty frame that still has the four columns."""
    end = datetime.now(UTC)
    frame = fetch_frames(prometheus, {"none": "no_such_metric"}, end - timedelta(seconds=5), end, 1.0)
    assert frame.empty and list(frame.columns) == COLUMNS


def test_every_point_of_a_window_lies_inside_it(prometheus: str) -> None:
    """A window that starts and ends between whole seconds is evaluated at the whole seconds inside it only (the
    client alone would round its start of x.3 down to x, before the window began)."""
    query = {"total": "sum(gameday_test_value)"}
    poll(lambda: not fetch_frames(prometheus, query, datetime.now(UTC) - timedelta(seconds=12),
                                  datetime.now(UTC) - timedelta(seconds=11), 1.0).empty, timeout=30, interval=0.5)
    second = int(datetime.now(UTC).timestamp())
    start, end = datetime.fromtimestamp(second - 9 + 0.3, UTC), datetime.fromtimestamp(second - 3 + 0.4, UTC)
    frame = fetch_frames(prometheus, query, start, end, 1.0)
    stamps = sorted(t.timestamp() for t in frame["timestamp"])
    assert stamps == [float(second - 8 + i) for i in range(6)], (start, end, stamps)
