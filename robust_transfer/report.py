"""The results contract: results.json, report.md, plots/ and the terminal table."""

from __future__ import annotations

import json
from pathlib import Path
from statistics import mean
from typing import Any

from robust_transfer.evaluation import metrics
from robust_transfer.keys import CLEAN
from robust_transfer.plots import grouped_bars

MOSTLY_SKIPPED = 0.5  # a stage that skipped more than this share of its steps gets a warning


def training_warnings(stages: list[dict], predictions: list[dict]) -> list[str]:
    """One sentence per stage that made no optimizer step or skipped most of its steps (non-finite
    losses or gradients), and per (split, language) whose predictions are all one class."""
    warnings = []
    for stage in stages:
        made, skipped = stage.get("steps"), stage.get("skipped_steps")
        if made is None or skipped is None:  # a stage loaded from a finished checkpoint
            continue
        if made == 0:
            warnings.append(
                f"stage {stage['name']} made no optimizer step ({skipped} skipped): "
                "its results come from the weights it started with."
            )
        elif skipped > MOSTLY_SKIPPED * (made + skipped):
            warnings.append(
                f"stage {stage['name']} skipped {skipped} of {made + skipped} steps on non-finite "
                "values: lower the learning rate or the adversary's budget."
            )
    for split, by_lang in one_class(predictions).items():
        which = ", ".join(f"{lang} (class {c})" for lang, c in by_lang.items())
        warnings.append(
            f"{split}: every prediction is one class in {which}: the model ignores its input "
            "there, and its accuracy is that class's share."
        )
    return warnings


def one_class(predictions: list[dict]) -> dict[str, dict[str, int]]:
    """`{split: {lang: class}}` for each (split, language) whose predictions are all one class
    (results.json's `one_class`): there accuracy is the class's share and degradation means nothing."""
    classes: dict[str, dict[str, set[int]]] = {}
    for row in predictions:
        classes.setdefault(row["split"], {}).setdefault(row["lang"], set()).add(row["prediction"])
    found = {split: {lang: next(iter(c)) for lang, c in by_lang.items() if len(c) == 1} for split, by_lang in classes.items()}
    return {split: by_lang for split, by_lang in found.items() if by_lang}


def ignores_its_input(results: dict) -> bool:
    """The run predicts one class in every language of its clean test split: it learned nothing, so
    its degradation (0 there) is no measure of robustness."""
    clean = results.get("accuracy", {}).get(CLEAN, {})
    return bool(clean) and set(clean) <= set(results.get("one_class", {}).get(CLEAN, {}))


def build_results(
    accuracy: dict[str, dict[str, float]],
    *,
    stages: list[dict],
    config: dict,
    train_language: str = "en",
    **extra: Any,
) -> dict:
    """Assemble results.json: accuracy, degradation (clean minus perturbed, `evaluation.metrics`),
    summary, stages."""
    clean = accuracy[CLEAN]
    degradation = metrics.degradation(accuracy)
    relative = metrics.relative_degradation(accuracy, degradation)
    zero_shot = [acc for lang, acc in clean.items() if lang != train_language]
    zero_shot_avg = mean(zero_shot) if zero_shot else float("nan")
    summary = {
        "clean_avg": mean(clean.values()),
        "zero_shot_avg": zero_shot_avg,
        "transfer_gap": clean.get(train_language, float("nan")) - zero_shot_avg,
        "degradation_avg": {split: mean(by_lang.values()) for split, by_lang in degradation.items()},
    }
    return {
        "accuracy": accuracy,
        "degradation": degradation,
        "relative_degradation": relative,
        "summary": summary,
        "stages": stages,
        **extra,
        "config": config,
    }


def write_json(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=False, allow_nan=True) + "\n")


def _languages(results: dict) -> list[str]:
    return list(results["accuracy"][CLEAN])


def format_table(results: dict) -> str:
    """Language x (clean, each perturbed split, each degradation), as fixed-width text."""
    splits = [s for s in results["accuracy"] if s != CLEAN]
    header = ["lang", CLEAN, *splits, *[f"deg:{s}" for s in splits]]
    rows = []
    for lang in _languages(results):
        acc = [results["accuracy"][s].get(lang) for s in [CLEAN, *splits]]
        deg = [results["degradation"][s].get(lang) for s in splits]
        rows.append([lang, *[_fmt(v) for v in acc], *[_fmt(v, signed=True) for v in deg]])
    avg = results["summary"]
    rows.append(
        ["avg", _fmt(avg["clean_avg"]), *[""] * len(splits)]
        + [_fmt(avg["degradation_avg"][s], signed=True) for s in splits]
    )
    return text_table(header, rows)


def text_table(header: list[str], rows: list[list[str]], *, left: bool = False) -> str:
    """Fixed-width columns under a dashed rule: right-aligned (numbers), or `left`-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    pad = str.ljust if left else str.rjust
    line = lambda r: "  ".join(pad(str(c), w) for c, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def write_report(path: Path, results: dict, plots: list[Path]) -> None:
    s = results["summary"]
    stages = "\n".join(
        f"| {st['name']} | {st['task']} | {st['adversary'].get('name', 'none')} | {st['steps']} | "
        f"{st['train_examples']} |"
        for st in results["stages"]
    )
    lines = [
        "# robust-transfer run",
        "",
        f"Clean average {s['clean_avg']:.3f}, zero-shot average {s['zero_shot_avg']:.3f}, "
        f"transfer gap {s['transfer_gap']:+.3f}.",
        "",
        "Degradation = clean accuracy minus perturbed accuracy (positive: the perturbation hurts).",
        "",
        "| stage | task | adversary | steps | train examples |",
        "|---|---|---|---|---|",
        stages,
        "",
        "## Accuracy and degradation per language",
        "",
        "```",
        format_table(results),
        "```",
        "",
        *_warnings_section(results),
        *_stats_section(results),
        *_generalized_section(results),
        *[f"![{p.stem}](plots/{p.name})" for p in plots],
        "",
    ]
    path.write_text("\n".join(lines))


def _generalized_section(results: dict) -> list[str]:
    matrix = results.get("generalized")
    if not matrix:
        return []
    langs = list(matrix)
    lines = [
        "## Generalized setting (row: sentence1 language, column: sentence2 language)",
        "",
        "| | " + " | ".join(langs) + " |",
        "|---|" + "---|" * len(langs),
    ]
    lines += [f"| {a} | " + " | ".join(f"{matrix[a][b]:.3f}" for b in langs) + " |" for a in langs]
    return [*lines, ""]


def _stats_section(results: dict) -> list[str]:
    """How much each text perturbation changed each language, so a degradation can be read."""
    stats = results.get("perturbation_stats") or {}
    if not stats:
        return []
    lines = [
        "## How much each perturbation changed the data",
        "",
        "changed fraction of texts / mean character edit rate / mean word edit rate",
        "",
        "| split | " + " | ".join(_languages(results)) + " |",
        "|---|" + "---|" * len(_languages(results)),
    ]
    for split, by_lang in stats.items():
        cells = [
            f"{s['changed_fraction']:.2f} / {s['char_edit_rate']:.3f} / {s['word_edit_rate']:.3f}"
            if (s := by_lang.get(lang))
            else "-"
            for lang in _languages(results)
        ]
        lines.append(f"| {split} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _warnings_section(results: dict) -> list[str]:
    """Every warning of the run (perturbations that barely changed a language, stages that
    skipped most steps, one-class predictions), whichever splits were evaluated."""
    warnings = results.get("warnings") or []
    return [*(f"> Warning: {w}" for w in warnings), ""] if warnings else []


def write_plots(plot_dir: Path, results: dict) -> list[Path]:
    """Clean vs perturbed accuracy and degradation per language, as PNG files."""
    plot_dir.mkdir(parents=True, exist_ok=True)
    langs = _languages(results)
    splits = list(results["accuracy"])
    paths = []

    for name, table, ylabel in [
        ("accuracy", results["accuracy"], "accuracy"),
        ("degradation", results["degradation"], "clean - perturbed accuracy"),
    ]:
        columns = {s: table[s] for s in splits if s in table}
        if columns:
            fig = grouped_bars(columns, title=f"{name} per language", ylabel=ylabel, langs=langs)
            paths.append(_save(fig, plot_dir / f"{name}.png"))
    if results["degradation"]:
        paths.append(_heatmap(plot_dir / "degradation_heatmap.png", results["degradation"], langs))
    if results.get("generalized"):
        paths.append(_generalized_heatmap(plot_dir / "generalized.png", results["generalized"]))
    return paths


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _generalized_heatmap(path: Path, matrix: dict[str, dict[str, float]]) -> Path:
    """Accuracy with sentence1 in the row language and sentence2 in the column language."""
    from matplotlib.figure import Figure

    langs = list(matrix)
    grid = [[matrix[a][b] for b in langs] for a in langs]
    fig = Figure(figsize=(1.5 + 0.7 * len(langs), 1.2 + 0.6 * len(langs)))
    ax = fig.subplots()
    image = ax.imshow(grid, cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(langs)), langs)
    ax.set_yticks(range(len(langs)), langs)
    ax.set_xlabel("sentence2 language")
    ax.set_ylabel("sentence1 language")
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 else "black")
    fig.colorbar(image, ax=ax, label="accuracy")
    ax.set_title("generalized setting")
    return _save(fig, path)


def _heatmap(path: Path, degradation: dict[str, dict[str, float]], langs: list[str]) -> Path:
    """Language x perturbation family, colour = degradation (red: the perturbation hurts)."""
    from matplotlib.figure import Figure

    splits = list(degradation)
    grid = [[degradation[s].get(lang, float("nan")) for lang in langs] for s in splits]
    bound = max(0.05, max(abs(v) for row in grid for v in row if v == v))
    fig = Figure(figsize=(1.5 + 0.8 * len(langs), 1.2 + 0.5 * len(splits)))
    ax = fig.subplots()
    image = ax.imshow(grid, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
    ax.set_xticks(range(len(langs)), langs)
    ax.set_yticks(range(len(splits)), splits)
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if v == v:
                ax.text(j, i, f"{v:+.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="clean - perturbed")
    ax.set_title("degradation per language and perturbation")
    return _save(fig, path)
