"""`python -m robust_transfer.sweep FILE`: run a W&B sweep file, online through W&B or locally.

Online (a W&B API key, no `--local`): creates the sweep on the W&B server and starts an agent,
which runs the file's `command` with the parameters the server chooses.

Locally (`--local`, `WANDB_MODE=offline`/`disabled`, or no API key) this module is the
controller: it reads any standard W&B sweep file and runs it itself.

- `method: grid`: every combination of the `values`/`value` parameters, in file order.
- `method: random`: `--count` (or the file's `run_cap`) distinct draws from the parameters'
  distributions (`values`, `distribution: uniform | int_uniform | log_uniform_values | ...`).
- `method: bayes`: Optuna's TPE sampler optimising the file's `metric` (W&B's local Bayesian
  controller needs numpy<2, which this stack cannot take).

Each run gets its own directory `OUTPUT_ROOT/<values>-<hash>` (the hash is of its parameters),
passed to the command as `output_dir=...` in the style of the file's args macro. A run whose
directory holds `results.json` is finished and skipped on a restart; one that holds
checkpoints but no results is continued with `resume=true`. `--parallel N` runs N commands at
once. Every run's output goes to `<run dir>/sweep.log`; a progress bar tracks the runs and a
summary table (also `OUTPUT_ROOT/summary.csv`) ends the sweep.

The metric of a bayes sweep (`metric.name`) is read from the run's results.json, as a dotted
path (`summary.degradation_avg.char_noise`) or a W&B-style key (`degradation/char_noise/ja`,
`summary/clean_avg`), else the last value of that column in metrics.csv.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import math
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

METHODS = ("grid", "random", "bayes")
DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]
PLAIN_INTERPRETERS = ("python", "python3")  # run under the controller's interpreter, as ${interpreter}
ARGS_MACROS = (
    "args",
    "args_no_hyphens",
    "args_no_equals",
    "args_no_boolean_flags",
    "args_json",
    "args_append_hydra",
    "args_override_hydra",
)
ENV_VAR = re.compile(r"\$\{envvar:([A-Z0-9_]*)\}")
RESULTS = "results.json"
RUN_INFO = "sweep_run.json"
RUN_LOG = "sweep.log"
FIT_RECORD = "run.json"  # pipeline.RUN_FILE: written once a fit has passed its checks
STOP_GRACE = 60.0  # seconds a stopped run has to save its checkpoint before it is killed


class SweepError(ValueError):
    """A mistake in the sweep file or the command line; printed without a traceback."""


# ---------------------------------------------------------------- the sweep file


def load_sweep(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"No sweep file {path}. Sweep files live in configs/sweep/.")
    try:
        sweep = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SweepError(f"Cannot parse {path}: {err}") from None
    if not isinstance(sweep, dict):
        raise SweepError(f"{path}: a sweep file is a mapping with method, parameters and command.")
    method = sweep.get("method")
    if method not in METHODS:
        raise SweepError(f"{path}: 'method' must be one of {', '.join(METHODS)}, got {method!r}.")
    if not isinstance(sweep.get("parameters"), dict) or not sweep["parameters"]:
        raise SweepError(f"{path}: 'parameters' must be a non-empty mapping of name -> spec.")
    sweep["parameters"] = flatten_parameters(sweep["parameters"])
    for name, spec in sweep["parameters"].items():
        kind(name, spec)  # validates
    if method == "bayes":
        metric = sweep.get("metric") or {}
        if "name" not in metric or metric.get("goal", "minimize") not in ("minimize", "maximize"):
            raise SweepError(f"{path}: a bayes sweep needs metric: {{name: ..., goal: minimize|maximize}}.")
    command = sweep.get("command", DEFAULT_COMMAND)
    if "${program}" in command and not sweep.get("program"):
        raise SweepError(f"{path}: the command uses ${{program}} but the file has no 'program'.")
    return sweep


def flatten_parameters(params: dict, prefix: str = "") -> dict[str, dict]:
    """W&B's nested `parameters:` blocks become dotted names (`a: {parameters: {b: ...}}` -> a.b)."""
    flat: dict[str, dict] = {}
    for name, spec in params.items():
        if not isinstance(spec, dict):
            raise SweepError(f"Parameter '{prefix}{name}': expected a mapping (value, values, or a distribution).")
        if "parameters" in spec:
            flat.update(flatten_parameters(spec["parameters"], f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = spec
    return flat


DISTRIBUTIONS = (
    "constant",
    "categorical",
    "int_uniform",
    "uniform",
    "q_uniform",
    "log_uniform",
    "log_uniform_values",
    "q_log_uniform",
    "q_log_uniform_values",
    "inv_log_uniform",
    "inv_log_uniform_values",
    "normal",
    "q_normal",
    "log_normal",
    "q_log_normal",
    "beta",
    "q_beta",
)


def kind(name: str, spec: dict) -> str:
    """The parameter's distribution, inferred as W&B infers it when not given."""
    dist = spec.get("distribution")
    if dist is None:
        if "value" in spec:
            dist = "constant"
        elif "values" in spec:
            dist = "categorical"
        elif "min" in spec and "max" in spec:
            ints = all(isinstance(spec[k], int) and not isinstance(spec[k], bool) for k in ("min", "max"))
            dist = "int_uniform" if ints else "uniform"
        elif "mu" in spec or "sigma" in spec:
            dist = "normal"
        else:
            raise SweepError(f"Parameter '{name}': give value, values, min/max or a distribution.")
    if dist not in DISTRIBUTIONS:
        raise SweepError(f"Parameter '{name}': unknown distribution {dist!r}. Valid: {', '.join(DISTRIBUTIONS)}.")
    if dist == "categorical" and not spec.get("values"):
        raise SweepError(f"Parameter '{name}': a categorical parameter needs a non-empty 'values' list.")
    if dist == "constant" and "value" not in spec:
        raise SweepError(f"Parameter '{name}': a constant parameter needs 'value'.")
    return dist


def _quantize(x: float, q: float) -> float:
    return round(x / q) * q


def sample(name: str, spec: dict, rng: random.Random) -> Any:
    """One draw of a parameter (random search), with W&B's meaning of each distribution."""
    dist = kind(name, spec)
    q = spec.get("q", 1.0)
    lo, hi = spec.get("min"), spec.get("max")
    mu, sigma = spec.get("mu", 0.0), spec.get("sigma", 1.0)
    if dist == "constant":
        return spec["value"]
    if dist == "categorical":
        weights = spec.get("probabilities")
        return rng.choices(spec["values"], weights=weights)[0]
    if dist == "int_uniform":
        return rng.randint(int(lo), int(hi))
    if dist in ("uniform", "q_uniform"):
        x = rng.uniform(lo, hi)
        return _quantize(x, q) if dist == "q_uniform" else x
    if dist in ("log_uniform", "q_log_uniform"):  # min/max are natural-log exponents
        x = math.exp(rng.uniform(lo, hi))
        return _quantize(x, q) if dist.startswith("q_") else x
    if dist in ("log_uniform_values", "q_log_uniform_values"):
        x = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        return _quantize(x, q) if dist.startswith("q_") else x
    if dist == "inv_log_uniform":
        return 1.0 / math.exp(rng.uniform(lo, hi))
    if dist == "inv_log_uniform_values":
        return 1.0 / math.exp(rng.uniform(math.log(1.0 / hi), math.log(1.0 / lo)))
    if dist in ("normal", "q_normal"):
        x = rng.gauss(mu, sigma)
        return _quantize(x, q) if dist == "q_normal" else x
    if dist in ("log_normal", "q_log_normal"):
        x = math.exp(rng.gauss(mu, sigma))
        return _quantize(x, q) if dist == "q_log_normal" else x
    x = rng.betavariate(spec.get("a", 1.0), spec.get("b", 1.0))  # beta, q_beta
    return _quantize(x, q) if dist == "q_beta" else x


def grid(params: dict[str, dict]) -> list[dict[str, Any]]:
    """Every combination of the parameters' values, the last parameter varying fastest."""
    axes = []
    for name, spec in params.items():
        dist = kind(name, spec)
        if dist not in ("constant", "categorical"):
            raise SweepError(
                f"Parameter '{name}': a grid sweep takes only value/values parameters, not {dist}."
            )
        axes.append([spec["value"]] if dist == "constant" else list(spec["values"]))
    return [dict(zip(params, combo, strict=True)) for combo in itertools.product(*axes)]


def random_runs(params: dict[str, dict], count: int, seed: int) -> list[dict[str, Any]]:
    """`count` distinct draws (fewer when the space is smaller), the same for the same seed."""
    rng = random.Random(seed)
    runs: dict[str, dict] = {}
    for _ in range(100 * count):
        if len(runs) == count:
            break
        draw = {name: sample(name, spec, rng) for name, spec in params.items()}
        runs.setdefault(run_name(draw), draw)
    return list(runs.values())


# ---------------------------------------------------------------- commands


def format_args(params: dict[str, Any]) -> dict[str, list[str]]:
    """The args macros exactly as W&B's agent renders them (`f"{name}={value}"`)."""
    flags = [f"{k}={v}" for k, v in params.items()]
    no_equals: list[str] = []
    for k, v in params.items():
        no_equals += [f"--{k}", str(v)]
    return {
        "args": [f"--{f}" for f in flags],
        "args_no_hyphens": flags,
        "args_no_equals": no_equals,
        "args_no_boolean_flags": [
            f"--{k}" if isinstance(v, bool) else f"--{k}={v}"
            for k, v in params.items()
            if not (isinstance(v, bool) and not v)
        ],
        "args_json": [json.dumps(params)],
        "args_append_hydra": [f"+{f}" for f in flags],
        "args_override_hydra": [f"++{f}" for f in flags],
    }


def build_command(sweep: dict, params: dict[str, Any], extra: dict[str, Any] | None = None) -> list[str]:
    """The argv the local controller runs for one run: the file's `command` with its macros
    filled in, and `extra` (output_dir, resume) appended to the parameters. A literal `python` or
    `python3` first in the command (as the W&B docs write it) runs under this interpreter."""
    args = format_args({**params, **(extra or {})})
    argv: list[str] = []
    for chunk in sweep.get("command", DEFAULT_COMMAND):
        chunk = ENV_VAR.sub(lambda m: os.environ.get(m.group(1), m.group(1)), str(chunk))
        if chunk == "${env}":
            continue  # W&B's /usr/bin/env: nothing to add locally
        if chunk == "${interpreter}" or (not argv and chunk in PLAIN_INTERPRETERS):
            # a literal `python` would be whatever is first on PATH (often not the venv)
            argv.append(sys.executable)
        elif chunk == "${program}":
            argv.append(str(sweep["program"]))
        elif chunk.startswith("${") and chunk.endswith("}") and chunk[2:-1] in ARGS_MACROS:
            argv += args[chunk[2:-1]]
        else:
            argv.append(chunk)
    return argv


def online_command(sweep_file: str | Path, count: int | None, project: str | None, entity: str | None) -> list[str]:
    """`wandb sweep` + `wandb agent` as one shell line, for the record (we call the Python API)."""
    where = [a for a in (["--project", project] if project else []) + (["--entity", entity] if entity else [])]
    agent = ["wandb", "agent", *(["--count", str(count)] if count else []), "SWEEP_ID"]
    return ["wandb", "sweep", *where, str(sweep_file), "&&", *agent]


def run_online(sweep: dict, count: int | None, project: str | None, entity: str | None) -> str:
    """Create the sweep on the W&B server and run an agent in this process; returns its id."""
    import wandb

    config = {k: v for k, v in sweep.items() if k not in ("count",)}
    sweep_id = wandb.sweep(config, project=project, entity=entity)
    wandb.agent(sweep_id, project=project, entity=entity, count=count)
    return sweep_id


def use_online(local: bool) -> bool:
    if local or os.environ.get("LOCAL") in ("1", "true", "yes"):
        return False
    from robust_transfer.wandb_env import wandb_mode

    return wandb_mode("auto") == "online"


# ---------------------------------------------------------------- run directories


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", str(value)).strip("_") or "x"


def run_name(params: dict[str, Any]) -> str:
    """`<values>-<hash>`: readable, and the same for the same parameters on every restart."""
    digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:6]
    slug = "-".join(_slug(v) for v in params.values())
    return f"{slug[:80]}-{digest}"


def is_finished(run_dir: Path) -> bool:
    return (run_dir / RESULTS).is_file()


def read_metric(run_dir: Path, name: str) -> float | None:
    """A number from the run's results.json (dotted or slash path), else metrics.csv's last value."""
    results = run_dir / RESULTS
    if results.is_file():
        node: Any = json.loads(results.read_text())
        for sep in (".", "/"):
            cur = node
            for part in name.split(sep):
                cur = cur.get(part) if isinstance(cur, dict) else None
            if isinstance(cur, int | float):
                return float(cur)
    metrics = run_dir / "metrics.csv"
    if metrics.is_file():
        with metrics.open() as f:
            values = [row[name] for row in csv.DictReader(f) if row.get(name) not in (None, "")]
        if values:
            return float(values[-1])
    return None


@dataclass
class RunSpec:
    params: dict[str, Any]
    dir: Path
    trial: Any = None  # an optuna trial (bayes)
    status: str = "pending"  # pending | skipped | finished | failed
    seconds: float = 0.0
    metric: float | None = None
    returncode: int | None = None
    command: list[str] = field(default_factory=list)


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    """Send `signum` to the run's whole process group (it leads one: start_new_session)."""
    try:
        os.killpg(proc.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _die_with_parent() -> None:  # children never outlive a killed controller (Linux)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class LocalSweep:
    """The local controller: expands (or samples) the runs, launches, skips, summarises."""

    def __init__(
        self,
        sweep: dict,
        output_root: Path,
        *,
        parallel: int = 1,
        count: int | None = None,
        seed: int = 0,
        progress: bool = True,
        env: dict[str, str] | None = None,
    ):
        self.sweep, self.root = sweep, Path(output_root)
        self.parallel, self.seed, self.progress = max(1, parallel), seed, progress
        self.count = count or sweep.get("run_cap") or sweep.get("count")
        self.method = sweep["method"]
        if self.method in ("random", "bayes") and not self.count:
            raise SweepError(f"A {self.method} sweep needs a number of runs: --count N (or run_cap in the file).")
        metric = sweep.get("metric") or {}
        self.metric_name, self.goal = metric.get("name"), metric.get("goal", "minimize")
        self.env = {**os.environ, **(env or {})}
        self.runs: list[RunSpec] = []

    # -- planning

    def planned(self) -> list[dict[str, Any]]:
        params = self.sweep["parameters"]
        if self.method == "grid":
            runs = grid(params)
            return runs[: self.count] if self.count else runs
        return random_runs(params, int(self.count), self.seed)

    def _spec(self, params: dict[str, Any]) -> RunSpec:
        return RunSpec(params=params, dir=self.root / run_name(params))

    # -- launching

    def _launch(self, run: RunSpec) -> subprocess.Popen:
        run.dir.mkdir(parents=True, exist_ok=True)
        extra: dict[str, Any] = {"output_dir": str(run.dir)}
        ckpts = run.dir / "checkpoints"
        if (run.dir / FIT_RECORD).exists() or (ckpts.is_dir() and any(ckpts.iterdir())):
            extra["resume"] = "true"  # a run killed midway continues from its last checkpoint
        run.command = build_command(self.sweep, run.params, extra)
        (run.dir / RUN_INFO).write_text(json.dumps({"params": run.params, "command": run.command}, indent=2, default=str))
        log = (run.dir / RUN_LOG).open("a")
        log.write(f"$ {shlex.join(run.command)}\n")
        log.flush()
        run.started = time.perf_counter()  # type: ignore[attr-defined]
        # each run leads its own process group (its DDP workers, data workers join it), so the
        # controller stops the whole group; a SIGKILLed controller's runs get SIGTERM (Linux)
        kwargs = {"preexec_fn": _die_with_parent} if sys.platform.startswith("linux") else {}
        return subprocess.Popen(
            run.command, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True, **kwargs
        )

    def _finish(self, run: RunSpec, proc: subprocess.Popen) -> None:
        run.returncode = proc.returncode
        run.seconds = time.perf_counter() - run.started  # type: ignore[attr-defined]
        run.status = "finished" if proc.returncode == 0 and is_finished(run.dir) else "failed"
        if run.status == "finished" and self.metric_name:
            run.metric = read_metric(run.dir, self.metric_name)
        info = json.loads((run.dir / RUN_INFO).read_text())
        info.update(status=run.status, returncode=run.returncode, seconds=round(run.seconds, 1), metric=run.metric)
        (run.dir / RUN_INFO).write_text(json.dumps(info, indent=2, default=str))

    def run(self) -> list[RunSpec]:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.method == "bayes":
            return self._run_bayes()
        self.runs = [self._spec(p) for p in self.planned()]
        todo = []
        for run in self.runs:
            if is_finished(run.dir):
                run.status = "skipped"
                run.metric = read_metric(run.dir, self.metric_name) if self.metric_name else None
            else:
                todo.append(run)
        bar = self._bar(len(self.runs), len(self.runs) - len(todo))
        self._execute(iter(todo), bar, lambda run: None)
        bar.close()
        return self.runs

    def _bar(self, total: int, done: int):
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=done, desc="sweep", unit="run", disable=not self.progress, file=sys.stdout)

    def _execute(self, todo, bar, on_done) -> None:
        """Keep up to `parallel` commands running until `todo` is exhausted."""
        active: dict[subprocess.Popen, RunSpec] = {}
        # the first run goes alone, so caches every run shares (the tiny encoder) are built once
        warm = not any(r.status in ("skipped", "finished") for r in self.runs)

        def stop(signum, frame):  # forward Ctrl-C / kill to the runs, then end their groups
            for proc in active:
                proc.send_signal(signum)  # the fit saves a resumable checkpoint, exits 128 + signum
            deadline = time.monotonic() + STOP_GRACE
            for proc in active:
                try:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
                _signal_group(proc, signal.SIGKILL)  # whatever it started (DDP ranks, workers) or itself
                proc.wait()
            raise SystemExit(128 + signum)

        previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            exhausted = False
            while active or not exhausted:
                while not exhausted and len(active) < (1 if warm else self.parallel):
                    run = next(todo, None)
                    if run is None:
                        exhausted = True
                        break
                    if run.status == "skipped":  # bayes: a repeated suggestion, already known
                        bar.update(1)
                        on_done(run)
                        continue
                    active[self._launch(run)] = run
                for proc in [p for p in active if p.poll() is not None]:
                    run = active.pop(proc)
                    self._finish(run, proc)
                    warm = False
                    bar.update(1)
                    bar.set_postfix_str(f"last: {run.dir.name} {run.status}")
                    on_done(run)
                if active:
                    time.sleep(0.2)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # -- bayes (Optuna TPE)

    def _run_bayes(self) -> list[RunSpec]:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        params = self.sweep["parameters"]
        dists = {name: _optuna_distribution(name, spec) for name, spec in params.items()}
        direction = "maximize" if self.goal == "maximize" else "minimize"
        earlier = []  # earlier sessions' finished trials
        for info_path in sorted(self.root.glob(f"*/{RUN_INFO}")):
            run_dir = info_path.parent
            info = json.loads(info_path.read_text())
            value = read_metric(run_dir, self.metric_name) if is_finished(run_dir) else None
            if value is not None and "trial_params" in info:
                earlier.append((run_dir, info, value))
        # a restarted sweep must not replay the first session's random start-up draws
        sampler = optuna.samplers.TPESampler(seed=self.seed * 10_007 + len(earlier))
        study = optuna.create_study(direction=direction, sampler=sampler)
        known: dict[str, RunSpec] = {}
        for run_dir, info, value in earlier:
            try:
                study.add_trial(
                    optuna.trial.create_trial(params=info["trial_params"], distributions=dists, value=value)
                )
            except ValueError:
                continue  # written by a different version of the sweep file
            known[run_dir.name] = RunSpec(info["params"], run_dir, status="skipped", metric=value)
        self.runs = list(known.values())[: int(self.count)]
        remaining = int(self.count) - len(self.runs)
        bar = self._bar(int(self.count), len(self.runs))

        def suggestions():
            for _ in range(remaining):
                trial = study.ask(dists)
                values = {name: _decode(spec, trial.params[name]) for name, spec in params.items()}
                run = self._spec(values)
                run.trial = trial
                if run.dir.name in known:
                    run.status, run.metric = "skipped", known[run.dir.name].metric
                self.runs.append(run)
                yield run

        def tell(run: RunSpec) -> None:
            if run.trial is None:
                return
            if run.status != "failed" and run.metric is not None:
                study.tell(run.trial, run.metric)
                known[run.dir.name] = run
                info = json.loads((run.dir / RUN_INFO).read_text()) if (run.dir / RUN_INFO).is_file() else {}
                if run.status != "skipped":
                    info["trial_params"] = run.trial.params
                    (run.dir / RUN_INFO).write_text(json.dumps(info, indent=2, default=str))
            else:
                study.tell(run.trial, state=optuna.trial.TrialState.FAIL)

        self._execute(suggestions(), bar, tell)
        bar.close()
        return self.runs


def _optuna_distribution(name: str, spec: dict):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    dist = kind(name, spec)
    if dist == "constant":
        return CategoricalDistribution([0])
    if dist == "categorical":
        return CategoricalDistribution(list(range(len(spec["values"]))))  # indices: any value type
    if dist == "int_uniform":
        return IntDistribution(int(spec["min"]), int(spec["max"]))
    if dist == "uniform":
        return FloatDistribution(spec["min"], spec["max"])
    if dist == "q_uniform":
        return FloatDistribution(spec["min"], spec["max"], step=spec.get("q", 1.0))
    if dist == "log_uniform_values":
        return FloatDistribution(spec["min"], spec["max"], log=True)
    if dist == "log_uniform":
        return FloatDistribution(math.exp(spec["min"]), math.exp(spec["max"]), log=True)
    raise SweepError(
        f"Parameter '{name}': distribution {dist} is not supported by the local bayes controller "
        "(use values, int_uniform, uniform, q_uniform, log_uniform or log_uniform_values)."
    )


def _decode(spec: dict, value: Any) -> Any:
    if "value" in spec and "values" not in spec:
        return spec["value"]
    if "values" in spec and spec.get("distribution", "categorical") == "categorical":
        return spec["values"][value]
    return value


# ---------------------------------------------------------------- summary


def summary_rows(runs: list[RunSpec], metric_name: str | None) -> tuple[list[str], list[list[str]]]:
    names = list(dict.fromkeys(k for r in runs for k in r.params))
    header = ["run", "status", "seconds", *names, metric_name or "clean_avg", "degradation_avg"]
    rows = []
    for r in runs:
        clean, deg = "", ""
        if is_finished(r.dir):
            s = json.loads((r.dir / RESULTS).read_text()).get("summary", {})
            clean = f"{s['clean_avg']:.3f}" if isinstance(s.get("clean_avg"), int | float) else ""
            deg = " ".join(f"{k}={v:+.3f}" for k, v in (s.get("degradation_avg") or {}).items())
        first = f"{r.metric:.4f}" if metric_name and r.metric is not None else ("" if metric_name else clean)
        seconds = f"{r.seconds:.0f}" if r.status in ("finished", "failed") else "-"
        rows.append([r.dir.name, r.status, seconds, *[str(r.params.get(n, "")) for n in names], first, deg])
    return header, rows


def format_summary(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def write_summary(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m robust_transfer.sweep",
        description="Run a W&B sweep file: online through W&B, or locally (grid, random, bayes via Optuna TPE).",
    )
    parser.add_argument("file", help="a W&B sweep YAML, e.g. configs/sweep/smoke.yaml")
    parser.add_argument("--output-root", default=None, help="where run directories go (default runs/sweep/<file stem>)")
    parser.add_argument("--parallel", type=int, default=1, help="runs at once (local)")
    parser.add_argument("--count", type=int, default=None, help="number of runs (random/bayes; caps a grid)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the local random / TPE sampler")
    parser.add_argument("--local", action="store_true", help="run locally even with a W&B API key")
    parser.add_argument("--project", default=None, help="W&B project (online)")
    parser.add_argument("--entity", default=None, help="W&B entity (online)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--dry-run", action="store_true", help="print the commands and exit")
    args = parser.parse_args(argv)
    try:
        sweep = load_sweep(args.file)
        if use_online(args.local) and not args.dry_run:
            print("W&B online: " + " ".join(online_command(args.file, args.count, args.project, args.entity)))
            run_online(sweep, args.count, args.project or sweep.get("project"), args.entity or sweep.get("entity"))
            return 0
        root = Path(args.output_root or Path("runs") / "sweep" / Path(args.file).stem)
        controller = LocalSweep(
            sweep, root, parallel=args.parallel, count=args.count, seed=args.seed, progress=not args.no_progress
        )
        if args.dry_run:
            if controller.method == "bayes":
                print(f"bayes sweep: {controller.count} runs chosen by TPE on {controller.metric_name}")
                return 0
            for params in controller.planned():
                run = controller._spec(params)
                print(shlex.join(build_command(sweep, params, {"output_dir": str(run.dir)})))
            return 0
        started = time.perf_counter()
        runs = controller.run()
    except SweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    header, rows = summary_rows(runs, controller.metric_name)
    write_summary(root / "summary.csv", header, rows)
    counts = {s: sum(r.status == s for r in runs) for s in ("finished", "skipped", "failed")}
    print(f"\n{format_summary(header, rows)}\n")
    print(
        f"{len(runs)} runs: {counts['finished']} run now, {counts['skipped']} already finished (skipped), "
        f"{counts['failed']} failed, in {time.perf_counter() - started:.0f}s. Run directories: {root}"
    )
    if counts["failed"]:
        print("failed runs' logs: " + ", ".join(str(r.dir / RUN_LOG) for r in runs if r.status == "failed"))
    if best := [r for r in runs if r.metric is not None]:
        pick = max if controller.goal == "maximize" else min
        top = pick(best, key=lambda r: r.metric)
        print(f"best {controller.metric_name}: {top.metric:.4f} ({top.dir.name})")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
