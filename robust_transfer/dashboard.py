"""The W&B dashboard as code: a workspace (and optionally a report) built with wandb-workspaces.

    python -m robust_transfer.dashboard --entity E --project P [--report] [--run-dir DIR]
                                        [--dry-run] [GROUP=OPTION ...] [dotted.key=value ...]

Which splits, languages and stages get panels comes from a finished run directory
(`--run-dir`, exact: what its results.json holds) or from a config composed like
`robust_transfer.fit`'s (the default config when nothing is given). Every panel's key comes from
`robust_transfer.keys`, the module the callbacks log with. Runs are grouped by W&B group (one
group per configuration, its seeds inside), so the bar panels show seed means with error bars.
`--dry-run` prints the sections and their keys without talking to W&B.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robust_transfer import keys

PGD_FAMILY = "embedding_pgd"
TITLE = "robust-transfer: does adversarial training reduce cross-lingual degradation?"
# the runs table: the stage adversaries (and what else tells runs apart) as columns
CONFIG_COLUMNS = (
    "intermediate.adversary.name",
    "target.adversary.name",
    "intermediate.task",
    "target.task",
    "model.name_or_path",
    "seed",
)
RUN_COLUMNS = ("run:group", "run:jobType")


def config_column(key: str) -> str:
    """Runs-table column of a (flat, dotted) config key: W&B stores it as `key.value`."""
    return f"config:{key}.value"


def summary_column(key: str) -> str:
    return f"summary:{key}"


@dataclass
class Layout:
    """What the panels cover: languages, evaluation splits and training stages."""

    languages: list[str]
    splits: dict[str, str]  # perturbed split name -> family (text perturbation or attack)
    split_languages: dict[str, list[str]] = field(default_factory=dict)  # where a split ran
    stages: list[str] = field(default_factory=lambda: list(keys.STAGES))

    def langs(self, split: str) -> list[str]:
        return self.split_languages.get(split, self.languages)

    @property
    def pgd_splits(self) -> list[str]:
        return [s for s, family in self.splits.items() if family == PGD_FAMILY]

    @classmethod
    def from_results(cls, results: dict) -> Layout:
        """Exactly what a finished run logged (its results.json)."""
        accuracy = {k: v for k, v in results["accuracy"].items() if k != keys.GENERALIZED_SPLIT}
        perturbations = results.get("config", {}).get("eval", {}).get("perturbations", {}) or {}
        splits = {
            s: (perturbations.get(s) or {}).get("family", s) for s in accuracy if s != keys.CLEAN
        }
        return cls(
            languages=list(accuracy[keys.CLEAN]),
            splits=splits,
            split_languages={s: list(accuracy[s]) for s in splits},
            stages=[st["name"] for st in results.get("stages", [])] or list(keys.STAGES),
        )

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layout:
        """What a run of `config` will log (text perturbations skip unsupported languages)."""
        from robust_transfer.naming import stages_run
        from robust_transfer.registry import build, eval_splits

        languages = list(config["data"]["languages"])
        splits, split_languages = {}, {}
        for spec in eval_splits(config["eval"]["perturbations"], config["data"]["seed"]):
            splits[spec.name] = spec.family
            split_languages[spec.name] = languages  # an embedding attack runs in every language
            if spec.kind == "perturbation":
                p = build("perturbation", spec.family, spec.params)
                split_languages[spec.name] = [lang for lang in languages if p.supports(lang)]
        return cls(languages, splits, split_languages, stages_run(config))


@dataclass
class Section:
    """A workspace section / report chapter: a title, the question it answers, its panels."""

    name: str
    question: str
    panels: list


def _bars(title: str, metrics: list[str], **kw):
    import wandb_workspaces.reports.v2 as wr

    # one bar per group (= configuration), averaged over its seeds, with the standard error
    return wr.BarPlot(
        title=title,
        metrics=metrics,
        orientation="v",
        groupby="Group",
        groupby_aggfunc="mean",
        groupby_rangefunc="stderr",
        **kw,
    )


def _lines(title: str, y: list[str]):
    import wandb_workspaces.reports.v2 as wr

    return wr.LinePlot(title=title, x=keys.GLOBAL_STEP, y=y, smoothing_factor=0.6)


def sections(layout: Layout) -> list[Section]:
    """Every section of the dashboard, in order."""
    import wandb_workspaces.reports.v2 as wr

    langs, splits = layout.languages, list(layout.splits)
    out = [
        Section(
            "Clean accuracy",
            "How well does each configuration transfer zero-shot from English to each language?",
            [
                _bars("clean accuracy per language", keys.accuracy_keys(keys.CLEAN, langs)),
                _bars(
                    "clean average, zero-shot average, transfer gap",
                    [keys.summary_key(n) for n in keys.SUMMARY_SCALARS],
                ),
            ],
        ),
        Section(
            "Degradation",
            "How many accuracy points does each perturbation cost in each language "
            "(clean minus perturbed; lower is more robust)?",
            [
                _bars(
                    "mean degradation per perturbation",
                    [keys.degradation_avg_key(s) for s in splits],
                )
            ]
            + [
                _bars(f"degradation per language: {s}", keys.degradation_keys(s, layout.langs(s)))
                for s in splits
            ]
            + [
                wr.MediaBrowser(
                    title="degradation heatmap (language x perturbation)",
                    media_keys=[keys.DEGRADATION_HEATMAP_PLOT],
                ),
                wr.WeavePanelSummaryTable(table_name=keys.DEGRADATION_TABLE),
            ],
        ),
        Section(
            "Relative degradation",
            "Which share of its clean accuracy does each language lose? (Compares languages "
            "whose clean accuracies differ.)",
            [
                _bars(
                    f"relative degradation per language: {s}",
                    keys.relative_degradation_keys(s, layout.langs(s)),
                )
                for s in splits
            ],
        ),
    ]
    if layout.pgd_splits:
        out.append(
            Section(
                "Robust accuracy under embedding_pgd",
                "What accuracy survives a worst-case attack in embedding space, per language?",
                [
                    _bars(
                        f"robust accuracy: {s}",
                        keys.accuracy_keys(s, layout.langs(s)),
                    )
                    for s in layout.pgd_splits
                ],
            )
        )
    out.append(
        Section(
            "Generalized setting",
            "Does robustness hold when sentence1 and sentence2 are in different languages "
            "(accuracy per language pair)?",
            [
                wr.MediaBrowser(
                    title="generalized: accuracy per language pair",
                    media_keys=[keys.GENERALIZED_PLOT],
                ),
                wr.WeavePanelSummaryTable(table_name=keys.GENERALIZED_TABLE),
            ],
        )
    )
    training = []
    for stage in layout.stages:
        training += [
            _lines(
                f"{stage}: clean and adversarial loss",
                keys.train_keys([stage], [keys.LOSS, keys.CLEAN_LOSS, keys.ADV_LOSS]),
            ),
            _lines(f"{stage}: perturbation norm", [keys.train_key(stage, keys.DELTA_NORM)]),
            _lines(f"{stage}: validation accuracy", [keys.val_accuracy_key(stage)]),
        ]
    out.append(
        Section(
            "Training",
            "Did each stage train, how large is the adversarial loss next to the clean one, and "
            "how far did the perturbation move the embeddings?",
            training,
        )
    )
    for s, family in layout.splits.items():
        split_langs = layout.langs(s)
        out.append(
            Section(
                f"Perturbation: {s}",
                f"Under {s} ({family}): clean vs perturbed accuracy, and the loss, per language.",
                [
                    _bars(
                        f"clean vs {s} accuracy",
                        keys.accuracy_keys(keys.CLEAN, split_langs)
                        + keys.accuracy_keys(s, split_langs),
                    ),
                    _bars(f"degradation: {s}", keys.degradation_keys(s, split_langs)),
                    _bars(
                        f"relative degradation: {s}", keys.relative_degradation_keys(s, split_langs)
                    ),
                ],
            )
        )
    return out


def runs_table_columns(layout: Layout) -> list[str]:
    """The runs table: stage adversaries and the other config columns, then the headline numbers."""
    return (
        ["run:displayName", *RUN_COLUMNS]
        + [config_column(k) for k in CONFIG_COLUMNS]
        + [summary_column(k) for k in keys.summary_keys(layout.splits)]
    )


def build_workspace(entity: str, project: str, layout: Layout, name: str = "robust-transfer"):
    """The workspace object (nothing is sent until `.save()`)."""
    import wandb_workspaces.workspaces as ws

    return ws.Workspace(
        entity=entity,
        project=project,
        name=name,
        sections=[
            ws.Section(name=s.name, panels=s.panels, is_open=i < 3)
            for i, s in enumerate(sections(layout))
        ],
        settings=ws.WorkspaceSettings(x_axis=keys.GLOBAL_STEP),
        runset_settings=ws.RunsetSettings(
            groupby=[ws.Metric("Group")], pinned_columns=runs_table_columns(layout)
        ),
    )


def build_report(entity: str, project: str, layout: Layout, title: str = TITLE):
    """The report object: one chapter per section, each saying the question it answers."""
    import wandb_workspaces.reports.v2 as wr

    def runset() -> wr.Runset:
        return wr.Runset(
            entity=entity,
            project=project,
            name="configurations (seeds grouped)",
            groupby=["Group"],
            pinned_columns=runs_table_columns(layout),
        )

    blocks: list = [
        wr.TableOfContents(),
        wr.P(
            "Each bar is one configuration (W&B group), averaged over its seeds; error bars are "
            "standard errors. Metric keys are defined in robust_transfer/keys.py."
        ),
    ]
    for s in sections(layout):
        blocks += [
            wr.H2(s.name),
            wr.P(s.question),
            wr.PanelGrid(runsets=[runset()], panels=s.panels),
        ]
    return wr.Report(
        entity=entity,
        project=project,
        title=title,
        description="Degradation (clean minus perturbed accuracy) per language, stage adversary and perturbation.",
        blocks=blocks,
    )


# ------------------------------------------------------------------ reading panels back


def panel_keys(panel) -> list[str]:
    """The metric, media and table keys one panel reads."""
    for attr in ("metrics", "y", "media_keys"):
        if getattr(panel, attr, None):
            out = list(getattr(panel, attr))
            x = getattr(panel, "x", None)
            return out + ([x] if attr == "y" and x else [])
    if getattr(panel, "metric", None):
        return [panel.metric]
    if getattr(panel, "table_name", None):
        return [panel.table_name]
    return []


def workspace_keys(workspace) -> list[str]:
    return [k for section in workspace.sections for p in section.panels for k in panel_keys(p)]


def report_keys(report) -> list[str]:
    return [
        k for b in report.blocks if hasattr(b, "panels") for p in b.panels for k in panel_keys(p)
    ]


def describe(layout: Layout) -> dict:
    """Sections -> panel titles -> keys, and the runs-table columns (what --dry-run prints)."""
    return {
        "sections": {
            s.name: {
                "question": s.question,
                "panels": {
                    (
                        getattr(p, "title", None)
                        or getattr(p, "table_name", "")
                        or type(p).__name__
                    ): panel_keys(p)
                    for p in s.panels
                },
            }
            for s in sections(layout)
        },
        "runs_table": runs_table_columns(layout),
    }


# ------------------------------------------------------------------ CLI


def _layout(args: argparse.Namespace) -> Layout:
    if args.run_dir:
        path = Path(args.run_dir) / "results.json"
        if not path.is_file():
            raise SystemExit(
                f"error: --run-dir {args.run_dir} has no results.json (is the run finished?)"
            )
        return Layout.from_results(json.loads(path.read_text()))
    from robust_transfer.config import ConfigError, compose, to_container

    try:
        return Layout.from_config(to_container(compose(args.overrides)))
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m robust_transfer.dashboard",
        description="Create the W&B workspace (and, with --report, a report) for robust-transfer runs.",
    )
    parser.add_argument("--entity", required=True, help="W&B entity (user or team)")
    parser.add_argument("--project", required=True, help="W&B project the runs log to")
    parser.add_argument("--report", action="store_true", help="also create a report")
    parser.add_argument("--name", default="robust-transfer", help="workspace name")
    parser.add_argument(
        "--run-dir", help="take splits, languages and stages from this finished run"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print sections and keys; save nothing"
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        help="config selection as for robust_transfer.fit (default config if none)",
    )
    args = parser.parse_args(argv)
    layout = _layout(args)
    workspace = build_workspace(args.entity, args.project, layout, name=args.name)
    report = build_report(args.entity, args.project, layout) if args.report else None
    if args.dry_run:
        print(json.dumps(describe(layout), indent=2))
        return 0
    try:
        print(f"workspace: {workspace.save().url}")
        if report is not None:
            print(f"report: {report.save().url}")
    except Exception as err:  # no API key, no network, no such project
        print(f"error: could not save to W&B ({err}). Run `wandb login` first.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
