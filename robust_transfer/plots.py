"""The grouped bar plot of per-language numbers, drawn one way for the run report (a bar per split),
the aggregation and the analysis notebook (a bar per configuration, with confidence intervals).

matplotlib is imported when a plot is drawn, and only its object API (no pyplot), so a caller's
backend (a notebook's inline one, a headless run's) is left alone; in a notebook,
`display(figure)` shows the result under `%matplotlib inline`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path


def grouped_bars(
    values: Mapping[str, Mapping[str, float]],
    *,
    title: str,
    ylabel: str,
    langs: Sequence[str] | None = None,
    ci: Mapping[str, Mapping[str, tuple[float, float]]] | None = None,
    legend_size: int = 8,
):
    """A figure with languages on the x axis and, per language, one bar per series side by side.

    `values` is `{series: {lang: value}}` (a series is a split of one run or a configuration of an
    aggregate); a language a series lacks gets no bar. `langs` orders the x axis (default: every
    language in order of first appearance). `ci` is `{series: {lang: (low, high)}}`, absolute
    bounds drawn as error bars; a NaN bound (one seed) draws none, nor does a bound on the
    wrong side of its value (a percentile interval need not contain the point estimate). A line marks zero, since
    degradations and paired differences have either sign. Returns a `matplotlib.figure.Figure`.
    """
    from matplotlib.figure import Figure

    if langs is None:
        langs = list(dict.fromkeys(lang for by_lang in values.values() for lang in by_lang))
    fig = Figure(figsize=(1.5 + 1.0 * len(langs), 4.0))
    ax = fig.subplots()
    width = 0.8 / max(1, len(values))
    for k, (name, by_lang) in enumerate(values.items()):
        shown = [(i, lang) for i, lang in enumerate(langs) if lang in by_lang]
        xs = [i + (k - (len(values) - 1) / 2) * width for i, _ in shown]
        ys = [by_lang[lang] for _, lang in shown]
        errs = None
        if ci is not None:
            bounds = [ci.get(name, {}).get(lang, (math.nan, math.nan)) for _, lang in shown]
            errs = [
                [
                    0.0 if math.isnan(low) else max(0.0, y - low)
                    for y, (low, _) in zip(ys, bounds, strict=True)
                ],
                [
                    0.0 if math.isnan(high) else max(0.0, high - y)
                    for y, (_, high) in zip(ys, bounds, strict=True)
                ],
            ]
        ax.bar(xs, ys, width, yerr=errs, capsize=2 if errs else 0, label=name)
    ax.set_xticks(range(len(langs)), langs)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=legend_size, loc="best")
    fig.tight_layout()
    return fig


def save_figure(fig, path: Path) -> Path:
    """Write `fig` as a PNG (110 dpi, the run directory's and the aggregation's resolution)."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
