"""The one grouped bar plot: bar heights, positions and error bars come from the numbers given, for
the run report (a bar per split) and the aggregation (a bar per configuration, with CIs)."""

from __future__ import annotations

import math

from matplotlib.container import BarContainer, ErrorbarContainer

from robust_transfer import aggregate
from robust_transfer.plots import grouped_bars, save_figure
from robust_transfer.report import write_plots


def _bars(fig) -> dict[str, list[tuple[float, float]]]:
    """{series: [(bar centre, height), ...]} read back from the drawn figure."""
    (ax,) = fig.axes
    out = {}
    for container in ax.containers:
        if isinstance(container, BarContainer):
            out[container.get_label()] = [
                (round(p.get_x() + p.get_width() / 2, 6), round(p.get_height(), 6))
                for p in container.patches
            ]
    return out


def _errors(fig) -> list[list[tuple[float, float]]]:
    """Per series, the (bottom, top) of each error bar."""
    (ax,) = fig.axes
    out = []
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            (segments,) = container.lines[2]
            out.append([(round(s[0][1], 6), round(s[1][1], 6)) for s in segments.get_segments()])
    return out


def test_series_side_by_side_per_language_and_a_missing_language_has_no_bar():
    fig = grouped_bars(
        {"clean": {"en": 0.9, "de": 0.8, "ja": 0.7}, "noise": {"en": 0.85, "ja": 0.5}},
        title="accuracy per language",
        ylabel="accuracy",
        langs=["en", "de", "ja"],
    )
    assert _bars(fig) == {
        "clean": [(-0.2, 0.9), (0.8, 0.8), (1.8, 0.7)],
        "noise": [(0.2, 0.85), (2.2, 0.5)],
    }
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["en", "de", "ja"]
    assert (ax.get_title(), ax.get_ylabel()) == ("accuracy per language", "accuracy")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["clean", "noise"]
    assert _errors(fig) == []


def test_languages_default_to_first_appearance_and_ci_bounds_become_error_bars():
    fig = grouped_bars(
        {"a": {"en": 0.1, "zh": -0.05}},
        title="t",
        ylabel="y",
        ci={"a": {"en": (0.0, 0.3), "zh": (math.nan, math.nan)}},
    )
    assert _bars(fig) == {"a": [(0.0, 0.1), (1.0, -0.05)]}
    assert _errors(fig) == [[(0.0, 0.3), (-0.05, -0.05)]]  # NaN bounds (one seed): no error bar


def test_aggregate_bars_take_value_and_ci_from_the_rows(tmp_path):
    rows = [
        {"label": "fgsm", "lang": "en", "mean": 0.04, "ci_low": 0.01, "ci_high": 0.07},
        {"label": "none", "lang": "en", "mean": 0.10, "ci_low": 0.08, "ci_high": 0.12},
        {"label": "fgsm", "lang": "avg", "mean": 0.05, "ci_low": 0.02, "ci_high": 0.08},
        {"label": "none", "lang": "avg", "mean": 0.09, "ci_low": math.nan, "ci_high": math.nan},
        {
            "label": "fgsm",
            "lang": "de",
            "mean": 0.06,
            "ci_low": 0.07,
            "ci_high": 0.09,
        },  # CI above the value
    ]
    fig = aggregate.bar_figure(rows, "mean", "degradation/noise", "degradation")
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["en", "de", "avg"]  # the mean last
    assert _bars(fig) == {
        "fgsm": [(-0.2, 0.04), (0.8, 0.06), (1.8, 0.05)],
        "none": [(0.2, 0.1), (2.2, 0.09)],
    }
    assert _errors(fig) == [
        [(0.01, 0.07), (0.06, 0.09), (0.02, 0.08)],
        [(0.08, 0.12), (0.09, 0.09)],
    ]
    path = aggregate.bar_plot(tmp_path / "b.png", rows, "mean", "t", "y")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_run_report_draws_accuracy_and_degradation_bars(tmp_path, monkeypatch):
    drawn = {}

    def keep(fig, path):
        if len(fig.axes) == 1:  # the bar plots (a heatmap has its colour bar too)
            drawn[path.name] = _bars(fig)
        return save_figure(fig, path)

    monkeypatch.setattr("robust_transfer.report._save", keep)
    results = {
        "accuracy": {"clean": {"en": 0.9, "de": 0.7}, "noise": {"en": 0.8, "de": 0.4}},
        "degradation": {"noise": {"en": 0.1, "de": 0.3}},
    }
    paths = write_plots(tmp_path, results)
    assert [p.name for p in paths] == ["accuracy.png", "degradation.png", "degradation_heatmap.png"]
    assert drawn["accuracy.png"] == {
        "clean": [(-0.2, 0.9), (0.8, 0.7)],
        "noise": [(0.2, 0.8), (1.2, 0.4)],
    }
    assert drawn["degradation.png"] == {"noise": [(0.0, 0.1), (1.0, 0.3)]}
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)
