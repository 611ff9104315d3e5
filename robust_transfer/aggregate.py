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
The comparison reports the paired difference (group minus baseline) with its CI, and McNemar's
exact test on the per-example predictions (predictions.csv of both runs, joined on split,
language and example id, pooled over the common seeds).

Writes to `--output` (default `aggregate/`): aggregate.md, groups.csv, paired.csv,
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

from robust_transfer.naming import comparable_config, config_group, flatten
from robust_transfer.stats import mcnemar_p, mean_ci, paired_diff_ci

CLEAN = "clean"
AVG = "avg"  # the mean over languages, reported beside each language
DEFAULT_BASELINE = {"intermediate.adversary.name": "none", "target.adversary.name": "none"}


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

    def predictions(self) -> dict[tuple[str, str, str], bool] | None:
        """(split, lang, id) -> prediction == label, or None without predictions.csv."""
        path = self.dir / "predictions.csv"
        if not path.is_file():
            return None
        with path.open() as f:
            return {(r["split"], r["lang"], r["id"]): r["label"] == r["prediction"] for r in csv.DictReader(f)}


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


def paired_table(groups: list[Group], base_of: dict[str, Group | None], ci: str = "t") -> list[dict]:
    rows = []
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
        discordant = _discordant(mine, theirs, seeds)
        for key in a[0]:
            if not all(key in x for x in a + b):
                continue
            e = paired_diff_ci([x[key] for x in a], [x[key] for x in b], method=ci)
            metric, lang = key
            row = dict(
                group=g.id, label=g.label, baseline=base.id, baseline_label=base.label, metric=metric, lang=lang,
                seeds=" ".join(map(str, seeds)), n=e.n, diff=e.mean, ci_low=e.low, ci_high=e.high,
                mcnemar_b=None, mcnemar_c=None, mcnemar_p=None,
            )
            split = metric.split("/", 1)[1]
            if metric.startswith("accuracy/") and (split, lang) in discordant:
                bb, cc = discordant[(split, lang)]
                row.update(mcnemar_b=bb, mcnemar_c=cc, mcnemar_p=mcnemar_p(bb, cc))
            rows.append(row)
    return rows


def _discordant(mine: dict[int, Run], theirs: dict[int, Run], seeds: list[int]) -> dict[tuple[str, str], tuple[int, int]]:
    """(split, lang) -> (b, c) pooled over seeds; `avg` pools every language."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for s in seeds:
        p, q = mine[s].predictions(), theirs[s].predictions()
        if p is None or q is None:
            return {}
        for key, right in p.items():
            other = q.get(key)
            if other is None or right == other:
                continue
            split, lang, _ = key
            for k in ((split, lang), (split, AVG)):
                counts[k][0 if right else 1] += 1
    for s in seeds:  # splits with no discordant pair still get a row (b = c = 0)
        for split, lang, _ in mine[s].predictions() or {}:
            counts[(split, lang)], counts[(split, AVG)]  # noqa: B018
    return {k: (v[0], v[1]) for k, v in counts.items()}


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


def markdown(groups: list[Group], grows: list[dict], prows: list[dict], base_of: dict, spec: dict, ci: str) -> str:
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
        f"Baseline: the configuration with {base_text}, otherwise equal; same seeds. Cells: difference "
        "(configuration minus baseline) ± CI half-width; for accuracies, McNemar's exact p over the "
        "per-example predictions pooled over seeds.",
        "",
    ]
    if not prows:
        lines += ["No configuration has a baseline among these runs.", ""]
    pindex = {(r["group"], r["metric"], r["lang"]): r for r in prows}
    for metric in [m for m in dict.fromkeys(r["metric"] for r in prows)]:
        lines += [f"### {metric}", "", "| configuration | baseline | " + " | ".join(langs) + " |", "|---" * (len(langs) + 2) + "|"]
        for g in groups:
            if base_of.get(g.id) is None or (g.id, metric, AVG) not in pindex:
                continue
            cells = []
            for lang in langs:
                r = pindex.get((g.id, metric, lang))
                if r is None:
                    cells.append("-")
                    continue
                cell = _fmt(r["diff"], r["ci_low"], r["ci_high"], signed=True)
                if r["mcnemar_p"] is not None:
                    cell += f" (p={r['mcnemar_p']:.2g})"
                cells.append(cell)
            lines.append(f"| {g.label} | {base_of[g.id].label} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        path.write_text("")
        return
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def bar_plot(path: Path, rows: list[dict], value: str, title: str, ylabel: str) -> Path:
    """Grouped bars: languages on x, one bar per configuration, CI error bars."""
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    langs = _langs(rows)
    configs = list(dict.fromkeys(r["label"] for r in rows))
    index = {(r["label"], r["lang"]): r for r in rows}
    fig = Figure(figsize=(1.5 + 1.1 * len(langs), 4.2))
    ax = fig.subplots()
    width = 0.8 / max(1, len(configs))
    for k, label in enumerate(configs):
        xs, ys, errs = [], [], [[], []]
        for i, lang in enumerate(langs):
            r = index.get((label, lang))
            if r is None:
                continue
            xs.append(i + (k - (len(configs) - 1) / 2) * width)
            ys.append(r[value])
            lo, hi = r["ci_low"], r["ci_high"]
            errs[0].append(0 if math.isnan(lo) else r[value] - lo)
            errs[1].append(0 if math.isnan(hi) else hi - r[value])
        ax.bar(xs, ys, width, yerr=errs, capsize=2, label=label)
    ax.set_xticks(range(len(langs)), langs)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


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
    import os

    if mode == "auto":
        env = os.environ.get("WANDB_MODE")
        if env in ("offline", "disabled", "dryrun"):
            return None
        from robust_transfer.loggers import _has_api_key

        if not _has_api_key():
            return None
        mode = "online"
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
              ci: str = "t", wandb_mode: str = "disabled", project: str = "robust-transfer") -> dict:
    """Everything the command line does; returns aggregate.json's content."""
    groups = group_runs(load_runs(paths))
    spec = parse_baseline(baseline)
    base_of = baselines(groups, spec, default=not baseline)
    grows = group_table(groups, ci)
    prows = paired_table(groups, base_of, ci)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "groups.csv", grows)
    write_csv(out / "paired.csv", prows)
    plots = write_plots(out, grows, prows)
    text = markdown(groups, grows, prows, base_of, spec, ci)
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
        "stats": grows,
        "paired": prows,
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
    parser.add_argument("--wandb", choices=("auto", "online", "offline", "disabled"), default="auto",
                        help="W&B summary tables: auto = online when an API key is set")
    parser.add_argument("--project", default="robust-transfer")
    args = parser.parse_args(argv)
    try:
        payload = aggregate(args.runs, args.output, baseline=args.baseline, ci=args.ci, wandb_mode=args.wandb,
                            project=args.project)
    except AggregateError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(payload["markdown"])
    print(f"\nWritten to {args.output}/ (aggregate.md, groups.csv, paired.csv, aggregate.json, plots/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
