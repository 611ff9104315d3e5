"""`python -m robust_transfer.aggregate RUN_DIRS... [--output DIR]`: seeds -> means, CIs, paired tests.

Runs are grouped by configuration (`naming.config_group`: every key but seed, output_dir and
other volatile keys). Per group and language it reports the mean and a 95% confidence
interval (Student t over seeds, or `--ci bootstrap`) of the clean accuracy, of every perturbed
accuracy and of every degradation (clean minus perturbed).

**Baseline.** Each group is compared with its baseline *on the seeds both have*. By default the
baseline of a group is the group with adversary `none` at both stages that is otherwise equal
(same intermediate task, model, data, ...; only the `adversary` subtrees may differ). With
`--baseline KEY=VALUE` (repeatable, dotted keys of the resolved config, e.g.
`--baseline intermediate.task=synthetic_nli --baseline target.adversary.name=none`) the
baseline is the group matching every KEY=VALUE that agrees with the compared group on all other
keys; if no such group exists but exactly one group matches the KEY=VALUEs, that one is used.
The comparison reports, per metric and language (and `avg`, the mean over languages):
- the mean paired difference (group minus baseline) over the common seeds;
- its 95% CI and two-sided p-value from a two-level paired bootstrap that resamples seeds and test
  examples (predictions.csv of both runs, aligned on example id; `stats.bootstrap`);
- the paired t-test over seeds (its CI and p), the small-sample reference for the seed level;
- p = the larger of the two p-values (intersection-union: both must reject), Holm-corrected over
  every comparison and language of the same metric (`stats.multiple`);
- ASO's epsilon_min (deepsig; Dror et al. 2019) over the per-seed scores, both ways (`stats.aso`);
- a verdict in words (`stats.verdict`): "reduces degradation", "increases degradation", "raises
  accuracy", "lowers accuracy" or "no evidence either way";
- for accuracies, McNemar's exact test per seed on that seed's paired predictions (statsmodels),
  never pooled over seeds (mcnemar.csv holds one row per seed, split and language).

Writes to `--output` (default `aggregate/`): aggregate.md, groups.csv, paired.csv, mcnemar.csv,
aggregate.json, and PNG plots with error bars; and a W&B run with both tables when W&B is
online (`--wandb auto`, the default) or asked for (`--wandb online|offline`).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robust_transfer import wandb_env
from robust_transfer.keys import CLEAN
from robust_transfer.naming import comparable_config, config_group, flatten
from robust_transfer.plots import grouped_bars, save_figure
from robust_transfer.stats import (
    ASO_THRESHOLD,
    McNemar,
    aso,
    holm,
    intersection_union,
    mcnemar,
    mean_ci,
    paired_diff_ci,
    paired_t_p,
)
from robust_transfer.stats.bootstrap import RESAMPLES, BootstrapResult, two_level_bootstrap
from robust_transfer.stats.verdict import ALPHA, verdict

AVG = "avg"  # the mean over languages, reported beside each language
DEFAULT_BASELINE = {"intermediate.adversary.name": "none", "target.adversary.name": "none"}
NOT_TESTED_ONE_SEED = "not tested (one common seed)"
NOT_TESTED_NO_PREDICTIONS = "not tested (no predictions.csv)"


class AggregateError(ValueError):
    pass


@dataclass
class Run:
    dir: Path
    results: dict
    seed: int
    group: str

    @property
    def config(self) -> dict:
        return self.results.get("config", {})

    def predictions(self) -> dict[tuple[str, str], tuple[list[str], np.ndarray]] | None:
        """(split, lang) -> (example ids, prediction == label), or None without predictions.csv."""
        if "_predictions" not in self.__dict__:
            self.__dict__["_predictions"] = _read_predictions(self.dir / "predictions.csv")
        return self.__dict__["_predictions"]


def _read_predictions(path: Path) -> dict[tuple[str, str], tuple[list[str], np.ndarray]] | None:
    if not path.is_file():
        return None
    cells: dict[tuple[str, str], tuple[list[str], list[bool]]] = {}
    with path.open(newline="") as f:
        rows = csv.reader(f)
        header = next(rows, [])
        split, lang, id_, label, prediction = (header.index(k) for k in ("split", "lang", "id", "label", "prediction"))
        for r in rows:
            ids, right = cells.setdefault((r[split], r[lang]), ([], []))
            ids.append(r[id_])
            right.append(r[label] == r[prediction])
    return {c: (ids, np.asarray(right, dtype=bool)) for c, (ids, right) in cells.items()}


@dataclass
class Group:
    id: str
    label: str
    config: dict
    runs: list[Run] = field(default_factory=list)

    def by_seed(self) -> dict[int, Run]:
        return {r.seed: r for r in self.runs}


# ---------------------------------------------------------------- loading


def find_run_dirs(paths: list[str | Path]) -> list[Path]:
    """Run directories among `paths`: each path is a run directory or a folder holding some."""
    found: list[Path] = []
    for p in map(Path, paths):
        if (p / "results.json").is_file():
            found.append(p)
        elif p.is_dir():
            found += sorted(r.parent for r in p.rglob("results.json") if "wandb" not in r.parts)
    return list(dict.fromkeys(found))


def load_runs(paths: list[str | Path]) -> list[Run]:
    runs = []
    for d in find_run_dirs(paths):
        results = json.loads((d / "results.json").read_text())
        config = results.get("config", {})
        runs.append(Run(d, results, int(config.get("seed", 0)), config_group(config)))
    if not runs:
        raise AggregateError(f"No run directories (with results.json) under: {', '.join(map(str, paths))}.")
    return runs


def group_runs(runs: list[Run]) -> list[Group]:
    groups: dict[str, Group] = {}
    for run in runs:
        g = groups.setdefault(run.group, Group(run.group, run.group, comparable_config(run.config)))
        g.runs.append(run)
    out = list(groups.values())
    for g, label in zip(out, labels([g.config for g in out]), strict=True):
        g.label = label
    return out


def labels(configs: list[dict]) -> list[str]:
    """Short names: the keys whose values differ between groups (adversaries by name only)."""
    flats = [flatten(c) for c in configs]
    keys = list(dict.fromkeys(k for f in flats for k in f))
    varying = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flats}) > 1]
    names = {k.rsplit(".", 1)[0] for k in varying if k.endswith("adversary.name")}
    shown = [k for k in varying if not (k.rsplit(".", 1)[0] in names and not k.endswith(".name"))]
    if not shown:
        return [str(c.get("experiment", "run")) for c in configs]
    short = lambda k: k.removesuffix(".name")  # noqa: E731
    return [", ".join(f"{short(k)}={f.get(k)}" for k in shown) for f in flats]


# ---------------------------------------------------------------- baselines


def parse_baseline(pairs: list[str] | None) -> dict[str, str]:
    if not pairs:
        return dict(DEFAULT_BASELINE)
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise AggregateError(f"--baseline expects KEY=VALUE (e.g. target.adversary.name=none), got {pair!r}.")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _matches(flat: dict, spec: dict[str, str]) -> bool:
    return all(str(flat.get(k)) == v for k, v in spec.items())


def _free_prefixes(spec: dict[str, str], default: bool) -> list[str]:
    prefixes = [k.rsplit(".", 1)[0] + "." if k.endswith(".name") else k for k in spec]
    return [*prefixes, "adversary."] if default else prefixes


def baselines(groups: list[Group], spec: dict[str, str], default: bool) -> dict[str, Group | None]:
    """group id -> its baseline group (None when none exists, or when it is its own baseline)."""
    free = _free_prefixes(spec, default)

    def rest(flat: dict) -> dict:
        return {k: v for k, v in flat.items() if not any(k == p or k.startswith(p) for p in free)}

    flats = {g.id: flatten(g.config) for g in groups}
    candidates = [g for g in groups if _matches(flats[g.id], spec)]
    out: dict[str, Group | None] = {}
    for g in groups:
        same = [b for b in candidates if rest(flats[b.id]) == rest(flats[g.id])]
        base = same[0] if same else (candidates[0] if len(candidates) == 1 and not default else None)
        out[g.id] = None if base is None or base.id == g.id else base
    return out


# ---------------------------------------------------------------- statistics


def metric_values(run: Run) -> dict[tuple[str, str], float]:
    """(metric, lang) -> value, for accuracy/<split> and degradation/<split>, with lang `avg`."""
    out = {}
    for family in ("accuracy", "degradation"):
        for split, by_lang in run.results.get(family, {}).items():
            for lang, v in by_lang.items():
                out[(f"{family}/{split}", lang)] = float(v)
            if by_lang:
                out[(f"{family}/{split}", AVG)] = sum(by_lang.values()) / len(by_lang)
    return out


def group_table(groups: list[Group], ci: str = "t") -> list[dict]:
    rows = []
    for g in groups:
        values: dict[tuple[str, str], list[float]] = defaultdict(list)
        for run in sorted(g.runs, key=lambda r: r.seed):
            for key, v in metric_values(run).items():
                values[key].append(v)
        for (metric, lang), vs in values.items():
            e = mean_ci(vs, method=ci)
            rows.append(
                dict(group=g.id, label=g.label, metric=metric, lang=lang, n=e.n, mean=e.mean, ci_low=e.low, ci_high=e.high)
            )
    return rows


def paired_table(groups: list[Group], base_of: dict[str, Group | None], *, resamples: int = RESAMPLES,
                 seed: int = 0, aso_engine: str = "vectorized") -> tuple[list[dict], list[dict]]:
    """(paired rows, per-seed McNemar rows): every comparison of a group with its baseline.

    Per comparison, on the seeds both have: the mean difference of each metric (results.json), the
    two-level bootstrap over seeds and test examples (CI, p_boot), the paired t-test over seeds (CI,
    p_seeds), p = max(p_boot, p_seeds) Holm-corrected within the metric's family, ASO's epsilon_min
    both ways, and the verdict (`stats.verdict`); per seed, split and language, McNemar's exact test
    on that seed's paired predictions.
    """
    rows: list[dict] = []
    mcnemar_rows: list[dict] = []
    per_seed: list[tuple[list[float], list[float]]] = []  # rows[j]'s per-seed scores (configuration, baseline)
    for g in groups:
        base = base_of.get(g.id)
        if base is None:
            continue
        mine, theirs = g.by_seed(), base.by_seed()
        seeds = sorted(set(mine) & set(theirs))
        if not seeds:
            continue
        a = [metric_values(mine[s]) for s in seeds]
        b = [metric_values(theirs[s]) for s in seeds]
        paired = PairedExamples.build([mine[s] for s in seeds], [theirs[s] for s in seeds]) if len(seeds) > 1 else None
        boot = paired.bootstrap(resamples=resamples, seed=seed) if paired else {}
        examples = paired.examples if paired else 0
        mcnemar_by_cell = paired.mcnemar(seeds) if paired else {}
        for (split, lang), tests in mcnemar_by_cell.items():
            mcnemar_rows += [
                dict(group=g.id, label=g.label, baseline=base.id, baseline_label=base.label, split=split, lang=lang,
                     seed=s, b=m.b, c=m.c, p=m.p_value)
                for s, m in zip(seeds, tests, strict=True)
            ]
        for key in a[0]:
            if not all(key in x for x in a + b):
                continue
            metric, lang = key
            mine_v, theirs_v = [x[key] for x in a], [x[key] for x in b]
            r = boot.get(key)
            seed_ci, p_seeds = paired_diff_ci(mine_v, theirs_v), paired_t_p(mine_v, theirs_v)
            tests = mcnemar_by_cell.get((metric.split("/", 1)[1], lang)) if metric.startswith("accuracy/") else None
            row = dict(
                group=g.id, label=g.label, baseline=base.id, baseline_label=base.label, metric=metric, lang=lang,
                seeds=" ".join(map(str, seeds)), n=len(seeds), examples=examples if r else 0,
                diff=sum(mine_v) / len(seeds) - sum(theirs_v) / len(seeds),
                ci_low=r.low if r else math.nan, ci_high=r.high if r else math.nan,
                seed_ci_low=seed_ci.low, seed_ci_high=seed_ci.high,
                p_boot=r.p_value if r else math.nan, p_seeds=p_seeds,
                p=intersection_union(r.p_value, p_seeds) if r else math.nan, p_holm=math.nan, holm_m=0,
                aso_eps_min=math.nan, aso_eps_min_reverse=math.nan,
                mcnemar_b=" ".join(str(m.b) for m in tests) if tests else "",
                mcnemar_c=" ".join(str(m.c) for m in tests) if tests else "",
                mcnemar_p=" ".join(f"{m.p_value:.3g}" for m in tests) if tests else "",
                verdict=NOT_TESTED_ONE_SEED if len(seeds) < 2 else (NOT_TESTED_NO_PREDICTIONS if r is None else ""),
            )
            per_seed.append((mine_v, theirs_v))
            rows.append(row)
    _correct_and_read(rows, per_seed, seed, aso_engine)
    return rows, mcnemar_rows


def _correct_and_read(rows: list[dict], per_seed: list[tuple[list[float], list[float]]], seed: int,
                      aso_engine: str) -> None:
    """Holm within each metric (over comparisons and languages), ASO at that family size, verdicts."""
    for metric in dict.fromkeys(r["metric"] for r in rows):
        family = [j for j, r in enumerate(rows) if r["metric"] == metric and not math.isnan(r["p"])]
        sign = -1.0 if metric.startswith("degradation/") else 1.0  # ASO: higher is better
        for j, adjusted in zip(family, holm([rows[j]["p"] for j in family]), strict=True):
            r = rows[j]
            mine_v, theirs_v = ([sign * v for v in vs] for vs in per_seed[j])
            r.update(
                p_holm=adjusted, holm_m=len(family),
                aso_eps_min=aso(mine_v, theirs_v, num_comparisons=len(family), seed=seed, engine=aso_engine),
                aso_eps_min_reverse=aso(theirs_v, mine_v, num_comparisons=len(family), seed=seed, engine=aso_engine),
            )
            r["verdict"] = verdict(metric, r["ci_low"], r["ci_high"], r["p_holm"], r["aso_eps_min"],
                                   r["aso_eps_min_reverse"])


@dataclass
class PairedExamples:
    """Per-example correctness of two configurations on the same seeds, aligned on example ids.

    `correct_a/_b[c, s, i]` for cell c = (split, lang), seed s and example id i; `seen[c, s, i]`
    when both runs of seed s predicted example i of that cell. Ids are one unit across splits and
    languages (the parallel test sets; a perturbed example keeps its id).
    """

    cells: list[tuple[str, str]]
    correct_a: np.ndarray
    correct_b: np.ndarray
    seen: np.ndarray

    @property
    def examples(self) -> int:
        return int(self.seen.any(axis=(0, 1)).sum())

    @classmethod
    def build(cls, runs_a: list[Run], runs_b: list[Run]) -> PairedExamples | None:
        preds = [r.predictions() for r in runs_a + runs_b]
        if any(p is None for p in preds):
            return None
        reported = [{(split, lang) for split, by in r.results.get("accuracy", {}).items() for lang in by}
                    for r in runs_a + runs_b]  # results.json's splits: not e.g. the generalized pairs
        cells = [c for c in preds[0] if all(c in p for p in preds) and all(c in rep for rep in reported)]
        index: dict[str, int] = {}
        for p in preds:
            for c in cells:
                for i in p[c][0]:
                    index.setdefault(i, len(index))
        s = len(runs_a)
        shape = (len(cells), s, len(index))
        correct, seen = np.zeros((2, *shape)), np.zeros((2, *shape), dtype=bool)
        for side in (0, 1):
            for j in range(s):
                p = preds[side * s + j]
                for k, c in enumerate(cells):
                    ids, right = p[c]
                    at = np.fromiter((index[i] for i in ids), dtype=int, count=len(ids))
                    correct[side, k, j, at] = right
                    seen[side, k, j, at] = True
        both = seen[0] & seen[1]
        return cls(cells, np.where(both, correct[0], 0.0), np.where(both, correct[1], 0.0), both)

    def bootstrap(self, resamples: int, seed: int) -> dict[tuple[str, str], BootstrapResult]:
        """(metric, lang) -> two-level bootstrap of the paired difference, `avg` over languages too."""
        stats, keys, masks = [], [], []
        at = {c: k for k, c in enumerate(self.cells)}
        d = self.correct_a - self.correct_b
        for (split, lang), k in at.items():
            stats.append(d[k])
            masks.append(self.seen[k])
            keys.append((f"accuracy/{split}", lang))
        for (split, lang), k in at.items():
            clean = at.get((CLEAN, lang))
            if split == CLEAN or clean is None:
                continue
            stats.append(d[clean] - d[k])  # (clean - perturbed) of A minus that of B, per example
            masks.append(self.seen[clean] & self.seen[k])
            keys.append((f"degradation/{split}", lang))
        averages = defaultdict(list)
        for j, (metric, _) in enumerate(keys):
            averages[metric].append(j)
        per, avg = two_level_bootstrap(np.stack(stats), np.stack(masks), averages=averages,
                                       resamples=resamples, seed=seed)
        out = dict(zip(keys, per, strict=True))
        out.update({(metric, AVG): r for metric, r in avg.items()})
        return out

    def mcnemar(self, seeds: list[int]) -> dict[tuple[str, str], list[McNemar]]:
        """(split, lang) -> McNemar's exact test per seed (in `seeds` order), on that seed's examples."""
        return {
            c: [mcnemar(self.correct_a[k, j][self.seen[k, j]] > 0, self.correct_b[k, j][self.seen[k, j]] > 0)
                for j in range(len(seeds))]
            for k, c in enumerate(self.cells)
        }


def mean_generalized(group: Group) -> dict[str, dict[str, float]] | None:
    """The seed mean of results.json's optional `generalized` {lang1: {lang2: acc}}."""
    tables = [r.results["generalized"] for r in group.runs if r.results.get("generalized")]
    if not tables:
        return None
    out: dict[str, dict[str, float]] = {}
    for l1 in tables[0]:
        for l2 in tables[0][l1]:
            vs = [t[l1][l2] for t in tables if l2 in t.get(l1, {})]
            out.setdefault(l1, {})[l2] = sum(vs) / len(vs)
    return out


# ---------------------------------------------------------------- output


def _fmt(mean: float, low: float, high: float, signed: bool = False) -> str:
    if math.isnan(mean):
        return "-"
    m = f"{mean:+.3f}" if signed else f"{mean:.3f}"
    return m if math.isnan(low) else f"{m} ± {(high - low) / 2:.3f}"


def _langs(rows: list[dict]) -> list[str]:
    langs = list(dict.fromkeys(r["lang"] for r in rows if r["lang"] != AVG))
    return [*langs, AVG]


def markdown(groups: list[Group], grows: list[dict], prows: list[dict], base_of: dict, spec: dict, ci: str,
             stats: dict) -> str:
    langs = _langs(grows)
    metrics = [m for m in dict.fromkeys(r["metric"] for r in grows) if m == f"accuracy/{CLEAN}" or m.startswith("degradation/")]
    index = {(r["group"], r["metric"], r["lang"]): r for r in grows}
    ci_name = "Student t" if ci == "t" else "percentile bootstrap"
    lines = [
        "# Aggregate over seeds",
        "",
        f"{len(groups)} configurations, {sum(len(g.runs) for g in groups)} runs. Cells: mean ± half-width of the "
        f"95% CI ({ci_name} over seeds; no ± with a single seed). Degradation = clean minus perturbed accuracy.",
        "",
        "| configuration | id | seeds |",
        "|---|---|---|",
        *[f"| {g.label} | `{g.id}` | {' '.join(str(s) for s in sorted(g.by_seed()))} |" for g in groups],
        "",
    ]
    for metric in metrics:
        lines += [f"## {metric}", "", "| configuration | " + " | ".join(langs) + " |", "|---" * (len(langs) + 1) + "|"]
        for g in groups:
            cells = []
            for lang in langs:
                r = index.get((g.id, metric, lang))
                cells.append(_fmt(r["mean"], r["ci_low"], r["ci_high"], metric.startswith("deg")) if r else "-")
            lines.append(f"| {g.label} | " + " | ".join(cells) + " |")
        lines.append("")
    base_text = ", ".join(f"{k}={v}" for k, v in spec.items())
    lines += [
        "## Paired comparison with the baseline",
        "",
        f"Baseline: the configuration with {base_text}, otherwise equal; same seeds. Difference = "
        "configuration minus baseline, the mean over the common seeds. **CI**: 95% two-level paired bootstrap "
        f"(seeds and test examples resampled, the same examples for both configurations; {stats['resamples']} "
        "resamples). **p (Holm)**: the larger of the bootstrap's two-sided p and the paired t-test's over seeds "
        "(both must reject: with few seeds the bootstrap alone is too bold), Holm-corrected over the comparisons "
        "and languages of the same metric (m, the family size, below each heading). **ASO ε**: deepsig's epsilon_min over the "
        "per-seed scores that the configuration is better (higher accuracy, lower degradation) and, after the "
        f"slash, that the baseline is; < {ASO_THRESHOLD} counts. A verdict other than \"no evidence either way\" "
        f"needs Holm p < {ALPHA}, the CI on that side of zero and ASO ε < {ASO_THRESHOLD} that way. "
        "McNemar's exact test is run per seed on that seed's paired predictions (mcnemar.csv); it is never "
        "pooled over seeds.",
        "",
    ]
    if not prows:
        lines += ["No configuration has a baseline among these runs.", ""]
    pindex = {(r["group"], r["metric"], r["lang"]): r for r in prows}
    for metric in [m for m in dict.fromkeys(r["metric"] for r in prows)]:
        rows = [r for r in prows if r["metric"] == metric]
        m = max((r["holm_m"] for r in rows), default=0)
        lines += [
            f"### {metric}",
            "",
            f"Holm family: {m} tests (every configuration x language of {metric}).",
            "",
            "| configuration | baseline | seeds | difference (avg) | 95% CI | p (Holm) | ASO ε | verdict |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for g in groups:
            r = pindex.get((g.id, metric, AVG))
            if base_of.get(g.id) is None or r is None:
                continue
            lines.append(
                f"| {g.label} | {base_of[g.id].label} | {r['n']} | {r['diff']:+.3f} | {_ci(r)} | {_p(r['p_holm'])} "
                f"| {_eps(r)} | {r['verdict']} |"
            )
        lines += ["", "Per language: difference [95% CI]; ▼ / ▲ where the verdict is lower / higher.", "",
                  "| configuration | " + " | ".join(langs) + " |", "|---" * (len(langs) + 1) + "|"]
        for g in groups:
            if base_of.get(g.id) is None or (g.id, metric, AVG) not in pindex:
                continue
            cells = []
            for lang in langs:
                r = pindex.get((g.id, metric, lang))
                cells.append("-" if r is None else f"{r['diff']:+.3f} {_ci(r)}{_arrow(r)}")
            lines.append(f"| {g.label} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _ci(r: dict) -> str:
    return "" if math.isnan(r["ci_low"]) else f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"


def _p(p: float) -> str:
    return "-" if math.isnan(p) else f"{p:.2g}"


def _eps(r: dict) -> str:
    a, b = r["aso_eps_min"], r["aso_eps_min_reverse"]
    return "-" if math.isnan(a) else f"{a:.2f} / {b:.2f}"


def _arrow(r: dict) -> str:
    v = r["verdict"]
    if v.startswith(("reduces", "lowers")):
        return " ▼"
    if v.startswith(("increases", "raises")):
        return " ▲"
    return ""


def write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        path.write_text("")
        return
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def bar_figure(rows: list[dict], value: str, title: str, ylabel: str):
    """Grouped bars of group or paired rows: languages on x (the mean `avg` last), one bar per
    configuration (`label`), the rows' `ci_low`/`ci_high` as error bars. The notebook draws these too."""
    values: dict[str, dict[str, float]] = defaultdict(dict)
    ci: dict[str, dict[str, tuple[float, float]]] = defaultdict(dict)
    for r in rows:
        values[r["label"]][r["lang"]] = r[value]
        ci[r["label"]][r["lang"]] = (r["ci_low"], r["ci_high"])
    return grouped_bars(values, title=title, ylabel=ylabel, langs=_langs(rows), ci=ci, legend_size=7)


def bar_plot(path: Path, rows: list[dict], value: str, title: str, ylabel: str) -> Path:
    """`bar_figure` as a PNG file."""
    return save_figure(bar_figure(rows, value, title, ylabel), path)


def write_plots(out: Path, grows: list[dict], prows: list[dict]) -> list[Path]:
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    paths = []
    for metric in dict.fromkeys(r["metric"] for r in grows):
        if metric != f"accuracy/{CLEAN}" and not metric.startswith("degradation/"):
            continue
        name = metric.replace("/", "_")
        rows = [r for r in grows if r["metric"] == metric]
        paths.append(bar_plot(plots / f"{name}.png", rows, "mean", f"{metric} (mean, 95% CI)", metric))
    for metric in dict.fromkeys(r["metric"] for r in prows):
        if metric != f"accuracy/{CLEAN}" and not metric.startswith("degradation/"):
            continue
        rows = [r for r in prows if r["metric"] == metric]
        name = "paired_" + metric.replace("/", "_")
        paths.append(bar_plot(plots / f"{name}.png", rows, "diff", f"{metric}: configuration - baseline", "difference"))
    return paths


def log_wandb(mode: str, grows: list[dict], prows: list[dict], plots: list[Path], out: Path, project: str) -> str | None:
    """A W&B run holding the group and paired tables (and the plots); returns its mode or None."""
    if mode == "auto":  # a W&B run only when it can go online: `wandb_env.wandb_mode`'s rule
        mode = "online" if wandb_env.wandb_mode("auto") == "online" else "disabled"
    if mode == "disabled":
        return None
    import wandb

    run = wandb.init(project=project, job_type="aggregate", dir=str(out), mode=mode, reinit="finish_previous",
                     settings=wandb.Settings(silent=True))
    for name, rows in (("aggregate_groups", grows), ("aggregate_paired", prows)):
        if rows:
            cols = list(rows[0])
            run.log({name: wandb.Table(columns=cols, data=[[r[c] for c in cols] for r in rows])})
    run.log({f"aggregate_plots/{p.stem}": wandb.Image(str(p)) for p in plots})
    run.finish()
    return mode


def aggregate(paths: list[str | Path], output: str | Path = "aggregate", *, baseline: list[str] | None = None,
              ci: str = "t", wandb_mode: str = "disabled", project: str = "robust-transfer",
              resamples: int = RESAMPLES, seed: int = 0, aso_engine: str = "vectorized") -> dict:
    """Everything the command line does; returns aggregate.json's content."""
    groups = group_runs(load_runs(paths))
    spec = parse_baseline(baseline)
    base_of = baselines(groups, spec, default=not baseline)
    grows = group_table(groups, ci)
    prows, mrows = paired_table(groups, base_of, resamples=resamples, seed=seed, aso_engine=aso_engine)
    stats = {
        "paired_ci": "two-level paired bootstrap over seeds and test examples (percentile, 95%)",
        "p_value": "max(two-level bootstrap p, paired t over seeds p), two-sided, Holm-corrected within each metric",
        "resamples": resamples,
        "seed": seed,
        "alpha": ALPHA,
        "aso_threshold": ASO_THRESHOLD,
        "aso_engine": aso_engine,
        "holm_families": {r["metric"]: r["holm_m"] for r in prows if r["holm_m"]},
    }
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "groups.csv", grows)
    write_csv(out / "paired.csv", prows)
    write_csv(out / "mcnemar.csv", mrows)
    plots = write_plots(out, grows, prows)
    text = markdown(groups, grows, prows, base_of, spec, ci, stats)
    (out / "aggregate.md").write_text(text + "\n" + "".join(f"\n![{p.stem}](plots/{p.name})\n" for p in plots))
    payload = {
        "baseline": spec,
        "ci": ci,
        "groups": [
            {
                "id": g.id,
                "label": g.label,
                "baseline": base_of[g.id].id if base_of.get(g.id) else None,
                "runs": [str(r.dir) for r in g.runs],
                "seeds": sorted(g.by_seed()),
                "generalized": mean_generalized(g),
            }
            for g in groups
        ],
        "statistics": stats,
        "stats": grows,
        "paired": prows,
        "mcnemar": mrows,
    }
    (out / "aggregate.json").write_text(json.dumps(payload, indent=2, default=str, allow_nan=True) + "\n")
    payload["wandb"] = log_wandb(wandb_mode, grows, prows, plots, out, project)
    payload["markdown"] = text
    return payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m robust_transfer.aggregate", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories, or folders holding run directories")
    parser.add_argument("--output", default="aggregate", help="output directory (default: aggregate/)")
    parser.add_argument("--baseline", action="append", metavar="KEY=VALUE",
                        help="what the baseline configuration has (repeatable); default: adversary none at both stages")
    parser.add_argument("--ci", choices=("t", "bootstrap"), default="t", help="confidence interval over seeds")
    parser.add_argument("--wandb", choices=wandb_env.MODES, default="auto",
                        help="W&B summary tables: auto = online when an API key is set")
    parser.add_argument("--project", default="robust-transfer")
    parser.add_argument("--resamples", type=int, default=RESAMPLES,
                        help=f"two-level bootstrap resamples (default {RESAMPLES}; the smallest p is 1/(resamples+1))")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the bootstrap and of ASO (default 0)")
    parser.add_argument("--aso", choices=("vectorized", "deepsig"), default="vectorized",
                        help="ASO through our vectorized twin of deepsig.aso (default) or deepsig.aso itself (about 4 s a call)")
    args = parser.parse_args(argv)
    try:
        payload = aggregate(args.runs, args.output, baseline=args.baseline, ci=args.ci, wandb_mode=args.wandb,
                            project=args.project, resamples=args.resamples, seed=args.seed,
                            aso_engine=args.aso)
    except AggregateError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(payload["markdown"])
    print(f"\nWritten to {args.output}/ (aggregate.md, groups.csv, paired.csv, mcnemar.csv, aggregate.json, plots/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
