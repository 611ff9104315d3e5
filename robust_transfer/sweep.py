"""`python -m robust_transfer.sweep FILE`: run a W&B sweep file, online through W&B or locally.

Online (a W&B API key, no `--local`) creates the sweep on the W&B server and starts an agent.
Locally this module is the controller: `grid` (every combination, the last parameter fastest),
`random` (`--count` distinct draws, Optuna's RandomSampler) and `bayes` (Optuna's TPE on `metric`,
the study stored in `OUTPUT_ROOT/optuna.db`), with W&B's own parameter -> Optuna conversion and
command macros. Each run gets `OUTPUT_ROOT/<values>-<hash>` (`output_dir=`); a restart skips runs
with `results.json`, continues those with a checkpoint (`resume=true`), and reads a bayes study back.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import ctypes
import hashlib
import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from robust_transfer.report import ignores_its_input, text_table

METHODS = ("grid", "random", "bayes")
PLAIN_INTERPRETERS = ("python", "python3")  # run under the controller's interpreter, as ${interpreter}
MACROS = ("env", "interpreter", "program", "args", "args_no_hyphens", "args_no_equals", "args_no_boolean_flags",
          "args_json", "args_append_hydra", "args_override_hydra")  # those W&B's agent fills in, but args_json_file
RESULTS, RUN_LOG, STORAGE = "results.json", "sweep.log", "optuna.db"
FIT_RECORD = "run.json"  # pipeline.RUN_FILE: written once a fit has passed its checks
STOP_GRACE = 60.0  # seconds a stopped run has to save its checkpoint before it is killed


class SweepError(ValueError):
    """A mistake in the sweep file or the command line; printed without a traceback."""


def load_sweep(path: str | Path) -> dict:
    """The file, checked for what online and local sweeps both need."""
    try:
        sweep = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SweepError(f"Cannot read the sweep file {path} ({err}). Sweep files live in configs/sweep/.") from None
    method = sweep.get("method") if isinstance(sweep, dict) else None
    if method not in METHODS:
        raise SweepError(f"{path}: a sweep file is a mapping whose 'method' is one of {', '.join(METHODS)}, not {method!r}.")
    if not isinstance(sweep.get("parameters"), dict) or not sweep["parameters"]:
        raise SweepError(f"{path}: 'parameters' must be a non-empty mapping of name -> spec.")
    metric = sweep.get("metric") or {}
    if method == "bayes" and ("name" not in metric or metric.get("goal", "minimize") not in ("minimize", "maximize")):
        raise SweepError(f"{path}: a bayes sweep needs metric: {{name: ..., goal: minimize|maximize}}.")
    if "${program}" in (sweep.get("command") or ["${program}"]) and not sweep.get("program"):
        raise SweepError(f"{path}: the command uses ${{program}} but the file has no 'program'.")
    return sweep


def search_space(params: dict[str, dict]) -> dict:
    """Each parameter as an Optuna distribution, converted as W&B's own Optuna scheduler converts it."""
    from wandb.sdk.sweeps.scheduler.optuna import sweep_parameter_to_distribution

    space = {}
    for name, spec in params.items():
        try:
            if "probabilities" in spec:
                raise ValueError("'probabilities' is unsupported locally")
            space[name] = sweep_parameter_to_distribution(spec)
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise SweepError(f"Parameter '{name}': the local controller cannot sample {spec} ({type(err).__name__}: {err}). "
                             "Locally: value, values, or min/max with int_uniform, uniform, q_uniform, log_uniform_values or "
                             "q_log_uniform_values; the others (normal, beta, log_uniform, nested parameters, ...) only "
                             "W&B online supports.") from None
    return space


def grid(params: dict[str, dict]) -> list[dict[str, Any]]:
    """Every combination of the parameters' values, the last parameter varying fastest."""
    space = search_space(params)
    if ranged := [name for name, dist in space.items() if not hasattr(dist, "choices")]:
        raise SweepError(f"Parameter '{ranged[0]}': a grid sweep takes only value/values parameters, not {params[ranged[0]]}.")
    return [dict(zip(params, combo, strict=True)) for combo in itertools.product(*(space[n].choices for n in params))]


def random_runs(params: dict[str, dict], count: int, seed: int) -> list[dict[str, Any]]:
    """`count` distinct draws (fewer when the space is smaller), the same for the same seed."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space, runs = search_space(params), {}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    while len(runs) < count and len(study.trials) < 100 * count:
        draw = study.ask(space).params
        runs.setdefault(run_name(draw := {name: draw[name] for name in params}), draw)
    return list(runs.values())


def build_command(sweep: dict, params: dict[str, Any], extra: dict[str, Any] | None = None) -> list[str]:
    """One run's argv: the file's `command` with W&B's macros, `extra` (output_dir, resume) appended
    to the parameters. ${interpreter}, and `python`/`python3` first in the command (as the W&B docs
    write it), mean this interpreter: the `python` first on PATH may lack the project's packages."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args

    macros = create_sweep_command_args({"args": {k: {"value": v} for k, v in {**params, **(extra or {})}.items()}})
    macros.update(env=[], interpreter=[sys.executable], program=[str(sweep.get("program"))])
    argv: list[str] = []
    for chunk in map(str, create_sweep_command(list(sweep.get("command") or []))):
        if chunk.startswith("${") and chunk.endswith("}"):
            if chunk[2:-1] not in MACROS:
                raise SweepError(f"The command's {chunk} is unsupported locally (W&B online may support it); "
                                 f"use {', '.join('${' + m + '}' for m in MACROS)}.")
            argv += macros[chunk[2:-1]]
        else:
            argv.append(sys.executable if not argv and chunk in PLAIN_INTERPRETERS else chunk)
    return argv


def use_online(local: bool) -> bool:
    if local or os.environ.get("LOCAL") in ("1", "true", "yes"):
        return False
    from robust_transfer.wandb_env import wandb_mode

    return wandb_mode("auto") == "online"


def run_name(params: dict[str, Any]) -> str:
    """`<values>-<hash>`: readable, and the same for the same parameters on every restart."""
    digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:6]
    slug = "-".join(re.sub(r"[^A-Za-z0-9.]+", "_", str(v)).strip("_") or "x" for v in params.values())
    return f"{slug[:80]}-{digest}"


def read_metric(results: dict, name: str) -> float | None:
    """The number at `name` in a run's results.json, a dotted or W&B-style slash path."""
    node: Any = results
    for part in re.split(r"[./]", name):
        node = node.get(part) if isinstance(node, dict) else None
    return float(node) if isinstance(node, int | float) else None


@dataclass
class RunSpec:
    params: dict[str, Any]
    dir: Path
    trial: int | None = None  # its Optuna trial number (bayes)
    status: str = "pending"  # pending | skipped | finished | failed
    metric: float | None = None
    started: float = 0.0
    seconds: float | None = None  # None: skipped

    @property
    def results(self) -> dict:
        return json.loads((self.dir / RESULTS).read_text()) if (self.dir / RESULTS).is_file() else {}


def _die_with_parent() -> None:  # a SIGKILLed controller's runs get SIGTERM (Linux's PR_SET_PDEATHSIG)
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class LocalSweep:
    """The local controller: plans the runs (or asks Optuna for them), launches, skips, summarises."""

    def __init__(self, sweep: dict, output_root: Path, *, parallel: int = 1, count: int | None = None,
                 seed: int = 0, progress: bool = True):
        self.sweep, self.root, self.method = sweep, Path(output_root), sweep["method"]
        self.parallel, self.seed, self.progress = max(1, parallel), seed, progress
        self.count = count or sweep.get("run_cap") or sweep.get("count")
        self.metric_name, self.goal = (sweep.get("metric") or {}).get("name"), (sweep.get("metric") or {}).get("goal", "minimize")
        self.runs: list[RunSpec] = []
        self.started = time.perf_counter()
        # what only the local controller needs, checked before any run: parameters it can sample, macros it knows
        grid(sweep["parameters"]) if self.method == "grid" else search_space(sweep["parameters"])
        build_command(sweep, {})
        if self.method != "grid" and not self.count:
            raise SweepError(f"A {self.method} sweep needs a number of runs: --count N (or run_cap in the file).")

    def planned(self) -> list[dict[str, Any]]:
        params = self.sweep["parameters"]
        return grid(params)[: self.count or None] if self.method == "grid" else random_runs(params, int(self.count), self.seed)

    def spec(self, params: dict[str, Any], trial: int | None = None) -> RunSpec:
        params = {name: params[name] for name in self.sweep["parameters"]}  # in the file's order
        return RunSpec(params, self.root / run_name(params), trial)

    def run(self) -> list[RunSpec]:
        """Grid and random: the planned runs. Bayes: TPE on the study in OUTPUT_ROOT/optuna.db; a restart
        reads it back: told trials stay told (listed as skipped), trials a stopped session left running
        continue (their runs resume with resume=true), new trials fill --count."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.method != "bayes":
            self.runs = [self.spec(p) for p in self.planned()]
            self._execute(iter(self.runs), len(self.runs))
            return self.runs
        import optuna
        from optuna.trial import TrialState

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        # one study per search space and metric: a changed sweep file starts afresh beside the old one
        name = "sweep-" + hashlib.sha1(json.dumps([self.sweep["parameters"], self.sweep["metric"]], sort_keys=True,
                                                   default=str).encode()).hexdigest()[:8]
        study = optuna.create_study(storage=f"sqlite:///{(self.root / STORAGE).resolve()}", study_name=name,
                                    direction=self.goal, load_if_exists=True)
        # a restarted sweep must not replay the first session's random start-up draws
        study.sampler = optuna.samplers.TPESampler(seed=self.seed * 10_007 + len(study.trials))
        space, count = search_space(self.sweep["parameters"]), int(self.count)
        told = [t for t in study.trials if t.state == TrialState.COMPLETE][:count]
        orphans = [t for t in study.trials if t.state == TrialState.RUNNING]
        self.runs = [replace(self.spec(t.params, t.number), status="skipped", metric=t.value) for t in told]

        def suggestions():
            for i in range(count - len(told)):
                trial = orphans[i] if i < len(orphans) else study.ask(space)
                self.runs.append(self.spec(trial.params, trial.number))
                yield self.runs[-1]

        def tell(run: RunSpec) -> None:
            ok = run.status != "failed" and run.metric is not None
            study.tell(run.trial, run.metric if ok else None, state=TrialState.COMPLETE if ok else TrialState.FAIL)

        self._execute(suggestions(), count - len(told), tell)
        return self.runs

    def summary(self) -> int:
        """Print the table of runs (also OUTPUT_ROOT/summary.csv), the counts and the best run; the exit status."""
        header = ["run", "status", "seconds", *self.sweep["parameters"], self.metric_name or "clean_avg", "degradation_avg"]
        rows, blind = [], []  # blind: the runs that predict one class everywhere
        for r in self.runs:
            results = r.results
            metric = r.metric if self.metric_name else read_metric(results, "summary.clean_avg")
            deg = " ".join(f"{k}={v:+.3f}" for k, v in (results.get("summary", {}).get("degradation_avg") or {}).items())
            ignored = ignores_its_input(results)
            blind += [r.dir.name] if ignored else []
            status = f"{r.status}, one class" if ignored else r.status
            rows.append([r.dir.name, status, "-" if r.seconds is None else f"{r.seconds:.0f}",
                         *map(str, r.params.values()), "" if metric is None else f"{metric:.4f}", deg])
        with (self.root / "summary.csv").open("w", newline="") as f:
            csv.writer(f).writerows([header, *rows])
        print("", text_table(header, rows, left=True), "", sep="\n")
        counts = {s: sum(r.status == s for r in self.runs) for s in ("finished", "skipped", "failed")}
        print(f"{len(self.runs)} runs: {counts['finished']} run now, {counts['skipped']} already finished (skipped), "
              f"{counts['failed']} failed, in {time.perf_counter() - self.started:.0f}s. Run directories: {self.root}")
        if counts["failed"]:
            print("failed runs' logs: " + ", ".join(str(r.dir / RUN_LOG) for r in self.runs if r.status == "failed"))
        if best := [r for r in self.runs if r.metric is not None]:
            top = (max if self.goal == "maximize" else min)(best, key=lambda r: r.metric)
            print(f"best {self.metric_name}: {top.metric:.4f} ({top.dir.name})")
        if blind:
            print(f"{len(blind)} run(s) predict one class in every language (results.json one_class): no metric, "
                  f"not the best, in a bayes sweep told as failed: {', '.join(blind)}")
        return 1 if counts["failed"] else 0

    def _launch(self, run: RunSpec) -> subprocess.Popen:
        run.dir.mkdir(parents=True, exist_ok=True)
        stopped = (run.dir / FIT_RECORD).exists() or any((run.dir / "checkpoints").glob("*"))  # killed midway
        extra = {"output_dir": str(run.dir), **({"resume": "true"} if stopped else {})}  # it continues
        command, run.started = build_command(self.sweep, run.params, extra), time.perf_counter()
        log = (run.dir / RUN_LOG).open("a", buffering=1)  # line-buffered: the command is in before the output
        log.write(f"$ {shlex.join(command)}\n")
        # each run leads its own process group (its DDP ranks, data workers), so the controller stops them all
        kwargs = {"preexec_fn": _die_with_parent} if sys.platform.startswith("linux") else {}
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kwargs)

    def _execute(self, todo, total: int, tell=lambda run: None) -> None:
        """Keep up to `parallel` runs going until `todo` (asked lazily) is spent; skip finished ones."""
        active: dict[subprocess.Popen, RunSpec] = {}
        # the first run goes alone until it has passed its checks (run.json), so caches every run
        # shares (the tiny encoder, the converted e5) are built once
        alone, exhausted, first, ended = not any(self.root.glob(f"*/{RESULTS}")), False, None, []

        def stop(signum, frame):  # forward Ctrl-C / kill to the runs, give them STOP_GRACE, end their groups
            deadline = time.monotonic() + STOP_GRACE
            for proc in active:
                proc.send_signal(signum)  # the fit saves a resumable checkpoint, exits 128 + signum
            for proc in active:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                with contextlib.suppress(ProcessLookupError, PermissionError):  # what it started, or itself
                    os.killpg(proc.pid, signal.SIGKILL)
            raise SystemExit(128 + signum)

        def done(run: RunSpec, status: str) -> None:
            run.status, results = status, run.results
            # a run that predicts one class everywhere has no degradation to speak of: neither the best
            # run nor a trial TPE learns from (told as failed)
            learned = status != "failed" and not ignores_its_input(results)
            run.metric = read_metric(results, self.metric_name) if self.metric_name and learned else None
            run.seconds = None if status == "skipped" else time.perf_counter() - run.started
            ended.append(run)
            if self.progress:  # a line a run, not a progress bar: sweeps run for hours, into log files
                print(f"[{len(ended)}/{total}] {run.dir.name} {status} {run.seconds or 0:.0f}s", flush=True)
            tell(run)

        previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while active or not exhausted:
                alone = alone and not (first and (first.dir / FIT_RECORD).is_file())
                while not exhausted and len(active) < (1 if alone else self.parallel):
                    run = next(todo, None)
                    exhausted = run is None
                    if run is not None and (run.dir / RESULTS).is_file():
                        done(run, "skipped")
                    elif run is not None:
                        active[self._launch(run)] = run
                        first = first or run
                for proc in [p for p in active if p.poll() is not None]:
                    run, alone = active.pop(proc), False
                    done(run, "finished" if proc.returncode == 0 and (run.dir / RESULTS).is_file() else "failed")
                time.sleep(0.2 if active else 0)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m robust_transfer.sweep", description="Run a W&B sweep file: "
                                     "online through W&B, or locally (grid, random, bayes via Optuna TPE).")
    parser.add_argument("file", help="a W&B sweep YAML, e.g. configs/sweep/smoke.yaml")
    parser.add_argument("--output-root", default=None, help="where run directories go (default runs/sweep/<file stem>)")
    parser.add_argument("--parallel", type=int, default=1, help="runs at once (local)")
    parser.add_argument("--count", type=int, default=None, help="number of runs (random/bayes; caps a grid)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the local random / TPE sampler")
    parser.add_argument("--local", action="store_true", help="run locally even with a W&B API key")
    parser.add_argument("--project", default=None, help="W&B project (online)")
    parser.add_argument("--entity", default=None, help="W&B entity (online)")
    parser.add_argument("--no-progress", action="store_true", help="no line as each run ends")
    parser.add_argument("--dry-run", action="store_true", help="print the commands and exit")
    args = parser.parse_args(argv)
    try:
        sweep = load_sweep(args.file)
        if use_online(args.local) and not args.dry_run:
            import wandb

            where = {"project": args.project or sweep.get("project"), "entity": args.entity or sweep.get("entity")}
            print(f"W&B online: `wandb sweep {args.file}`, then `wandb agent` on the new sweep")
            wandb.agent(wandb.sweep({k: v for k, v in sweep.items() if k != "count"}, **where), **where, count=args.count)
            return 0
        root = Path(args.output_root or Path("runs") / "sweep" / Path(args.file).stem)
        controller = LocalSweep(sweep, root, parallel=args.parallel, count=args.count, seed=args.seed,
                                progress=not args.no_progress)
        if args.dry_run:
            plan = [] if controller.method == "bayes" else controller.planned()
            print(f"bayes sweep: {controller.count} runs chosen by TPE on {controller.metric_name}" if not plan else "\n".join(
                shlex.join(build_command(sweep, p, {"output_dir": str(controller.spec(p).dir)})) for p in plan))
            return 0
        controller.run()
    except SweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return controller.summary()


if __name__ == "__main__":
    sys.exit(main())
