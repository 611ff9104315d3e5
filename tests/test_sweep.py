"""The sweep runner: W&B command construction, the local grid/random/bayes controller, resume.

Most tests run a stand-in program (writes results.json in milliseconds); one runs the real
`configs/sweep/smoke.yaml`, kills the controller midway and restarts it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from robust_transfer import sweep as sw
from robust_transfer.config import compose
from tests.conftest import ROOT
from tests.sweep_runs import SMOKE_SWEEP, smoke_sweep_env, smoke_sweep_runs  # noqa: F401 (fixture)

FAKE = """
import json, os, sys, time
args = dict(a.lstrip("-").split("=", 1) for a in sys.argv[1:])
out = args.pop("output_dir")
if os.environ.get("FAKE_CKPT"):  # a checkpoint before the work: a stopped run is resumable
    os.makedirs(os.path.join(out, "checkpoints"), exist_ok=True)
    open(os.path.join(out, "checkpoints", "last.ckpt"), "w").close()
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps(args) + "\\n")
if os.environ.get("FAKE_CHECKED"):  # a fit writes run.json once it has passed its checks
    os.makedirs(out, exist_ok=True)
    open(os.path.join(out, "run.json"), "w").close()
started = time.time()
time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
with open(os.environ["FAKE_LOG"] + ".spans", "a") as f:
    f.write(json.dumps([args.get("x"), started, time.time()]) + "\\n")
if args.get("fail") == "True":
    sys.exit(3)
x = float(args.get("x", 0))
os.makedirs(out, exist_ok=True)
blind = {"one_class": {"clean": {"en": 0}}} if args.get("blind") == "True" else {}  # predicts one class
json.dump({"summary": {"score": (x - 0.3) ** 2, "clean_avg": 0.5, "degradation_avg": {"noise": x}},
           "accuracy": {"clean": {"en": 0.5}}, **blind}, open(os.path.join(out, "results.json"), "w"))
"""


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A sweep file factory whose program is FAKE; returns (write_sweep, invocations)."""
    program = tmp_path / "fake.py"
    program.write_text(FAKE)
    log = tmp_path / "invocations.jsonl"
    monkeypatch.setenv("FAKE_LOG", str(log))

    def write(method: str, parameters: dict, **extra) -> Path:
        path = tmp_path / f"{method}.yaml"
        sweep = {"method": method, "program": str(program), "parameters": parameters,
                 "command": ["${env}", "${interpreter}", "${program}", "${args}"], **extra}
        path.write_text(yaml.safe_dump(sweep, sort_keys=False))
        return path

    def invocations() -> list[dict]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return write, invocations


def _main(*args: str) -> int:
    return sw.main([*map(str, args), "--no-progress", "--local"])


# ---------------------------------------------------------------- commands


def test_args_are_rendered_exactly_as_the_wandb_agent_renders_them():
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    params = {"seed": 1, "target.adversary": "pgd", "adversary.epsilon": 0.5, "resume": False,
              "data.languages": ["en", "de"]}
    theirs = create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})
    for macro in set(theirs) - {"args_dict"}:  # every args macro of W&B's agent
        assert sw.build_command({"command": ["${" + macro + "}"]}, params) == theirs[macro], macro


def test_every_run_of_every_sweep_file_composes():
    """The parameters and the command's own key=value arguments are valid fit arguments, and the
    research grid is {no intermediate, clean, fgsm, pgd, freelb} x {clean, pgd target} x 3 seeds."""
    files = sorted((ROOT / "configs" / "sweep").glob("*.yaml"))
    assert {f.name for f in files} >= {"smoke.yaml", "adversarial_intermediate.yaml", "adversarial_intermediate_xlmr.yaml"}
    for path in files:
        sweep = sw.load_sweep(path)
        assert "${args_no_hyphens}" in sweep["command"]
        runs = sw.grid(sweep["parameters"])
        cells = set()
        for params in runs:
            argv = sw.build_command(sweep, params, {"output_dir": "/tmp/x"})
            assert argv[:3] == [sys.executable, "-m", "robust_transfer.fit"]
            cfg = compose(argv[3:])
            assert cfg.seed == params["seed"] and cfg.output_dir == "/tmp/x"
            inter = "skipped" if cfg.intermediate.task == "none" else cfg.intermediate.adversary.name
            cells.add((inter, cfg.target.adversary.name, cfg.seed))
        assert len({sw.run_name(p) for p in runs}) == len(runs)
        if path.stem.startswith("adversarial_intermediate"):
            assert len(runs) == 30 and cells == {
                (i, t, s) for i in ("skipped", "none", "fgsm", "pgd", "freelb") for t in ("none", "pgd") for s in (0, 1, 2)
            }


def test_online_path_creates_the_sweep_and_starts_an_agent(monkeypatch, capsys):
    import wandb

    calls = {}
    monkeypatch.setattr(wandb, "sweep", lambda config, project=None, entity=None: calls.update(config=config, project=project) or "abc123")
    monkeypatch.setattr(wandb, "agent", lambda sweep_id, project=None, entity=None, count=None: calls.update(id=sweep_id, count=count))
    monkeypatch.delenv("LOCAL", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert sw.use_online(local=False)
    assert sw.main([str(SMOKE_SWEEP), "--count", "3", "--project", "p"]) == 0
    assert calls["id"] == "abc123" and calls["count"] == 3 and calls["project"] == "p"
    assert calls["config"]["command"][-1] == "${args_no_hyphens}" and calls["config"]["method"] == "grid"
    assert "wandb sweep" in capsys.readouterr().out
    monkeypatch.setenv("LOCAL", "1")
    assert not sw.use_online(local=False)
    monkeypatch.delenv("LOCAL")
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert not sw.use_online(local=False)


def test_makefile_sweep_target_passes_the_variables():
    out = subprocess.run(["make", "-n", "sweep", "LOCAL=1", "SWEEP=configs/sweep/x.yaml", "COUNT=4", "PARALLEL=2"],
                         cwd=ROOT, capture_output=True, text=True)
    line = [x for x in out.stdout.splitlines() if "robust_transfer.sweep" in x][-1]
    assert "configs/sweep/x.yaml" in line and "--count 4" in line and "--parallel 2" in line and "--local" in line


def test_bad_sweep_files_are_explained(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: hyperband\nparameters: {a: {values: [1]}}\n")
    assert _main(bad) == 2 and "method" in capsys.readouterr().err
    bad.write_text("method: grid\nparameters: {a: {min: 0.0, max: 1.0}}\ncommand: [x, '${args}']\n")
    assert _main(bad) == 2 and "grid sweep takes only value/values" in capsys.readouterr().err


# ---------------------------------------------------------------- the local controller


def test_grid_runs_every_combination_then_skips_finished_runs(fake, tmp_path, capsys):
    write, invocations = fake
    path = write("grid", {"x": {"values": [0.1, 0.5]}, "y": {"values": ["a", "b"]}, "k": {"value": 1}})
    root = tmp_path / "out"
    assert _main(path, "--output-root", root, "--parallel", "2") == 0
    text = capsys.readouterr().out
    assert "4 runs: 4 run now, 0 already finished" in text
    header = next(line for line in text.splitlines() if line.startswith("run "))
    assert header.split()[:6] == ["run", "status", "seconds", "x", "y", "k"]
    assert sorted((r["x"], r["y"]) for r in invocations()) == [("0.1", "a"), ("0.1", "b"), ("0.5", "a"), ("0.5", "b")]
    assert len(list(root.glob("*/results.json"))) == 4 and (root / "summary.csv").is_file()
    assert _main(path, "--output-root", root) == 0
    assert "0 run now, 4 already finished (skipped)" in capsys.readouterr().out
    assert len(invocations()) == 4


def test_a_run_that_predicts_one_class_everywhere_is_never_the_best(fake, tmp_path, capsys):
    """Its degradation is 0 because it ignores its input: not the best run, not a told trial."""
    write, _ = fake
    path = write("grid", {"x": {"values": [0.0, 0.5]}, "blind": {"values": [True, False]}},
                 metric={"name": "summary.degradation_avg.noise", "goal": "minimize"})
    assert _main(path, "--output-root", tmp_path / "out") == 0
    text = capsys.readouterr().out
    assert "best summary.degradation_avg.noise: 0.0000 (0.0-False-" in text
    assert "2 run(s) predict one class in every language (results.json one_class)" in text
    assert sum("finished, one class" in line for line in text.splitlines()) == 2


@pytest.mark.parametrize("checked", [True, False])
def test_the_first_run_goes_alone_until_it_has_passed_its_checks(fake, tmp_path, monkeypatch, checked):
    """Caches every run shares (the converted e5, the tiny encoder) are built in the first run's
    checks, so the second run waits for the first one's run.json, not for its whole training."""
    write, _ = fake
    monkeypatch.setenv("FAKE_SLEEP", "3")  # long enough for the second interpreter to start on a busy machine
    if checked:
        monkeypatch.setenv("FAKE_CHECKED", "1")
    root = tmp_path / "out"
    assert _main(write("grid", {"x": {"values": [0.1, 0.2]}}), "--output-root", root, "--parallel", "2") == 0
    spans = {x: (start, end) for x, start, end in map(json.loads, (tmp_path / "invocations.jsonl.spans").open())}
    assert (spans["0.2"][0] < spans["0.1"][1]) == checked  # overlapping runs only after the checks


def test_random_draws_count_distinct_runs_reproducibly(fake, tmp_path):
    write, invocations = fake
    params = {"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}, "y": {"values": [1, 2, 3]},
              "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-3}, "n": {"min": 1, "max": 4}}
    sweep = sw.load_sweep(write("random", params))
    first, again = sw.random_runs(sweep["parameters"], 5, 0), sw.random_runs(sweep["parameters"], 5, 0)
    assert first == again and len({sw.run_name(p) for p in first}) == 5
    assert all(0 <= p["x"] <= 1 and 1e-5 <= p["lr"] <= 1e-3 and p["n"] in (1, 2, 3, 4) for p in first)
    assert _main(write("random", params), "--output-root", tmp_path / "out", "--count", "3") == 0
    assert len(invocations()) == 3
    with pytest.raises(sw.SweepError, match="--count"):
        sw.LocalSweep(sweep, tmp_path)


def test_bayes_uses_tpe_on_the_metric_and_resumes(fake, tmp_path, capsys):
    write, invocations = fake
    path = write("bayes", {"x": {"min": 0.0, "max": 1.0}, "fail": {"value": False}},
                 metric={"name": "summary.score", "goal": "minimize"})
    root = tmp_path / "out"
    assert _main(path, "--output-root", root, "--count", "6") == 0
    assert "best summary.score" in capsys.readouterr().out
    assert len(invocations()) == 6
    study = _stored_study(root)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 6
    for trial in study.trials:  # each trial is told the metric of the run its parameters name
        results = json.loads((root / sw.run_name({"x": trial.params["x"], "fail": False}) / "results.json").read_text())
        assert trial.value == pytest.approx(results["summary"]["score"])
    assert _main(path, "--output-root", root, "--count", "8") == 0  # 6 known trials + 2 new
    assert len(invocations()) == 8
    assert "2 run now, 6 already finished" in capsys.readouterr().out
    assert [t.state.name for t in _stored_study(root).trials] == ["COMPLETE"] * 8


def _stored_study(root: Path):
    import optuna

    return optuna.load_study(study_name=None, storage=f"sqlite:///{root / sw.STORAGE}")


def _interrupt(cmd: list[str], env: dict, started) -> None:
    """Start the controller and SIGTERM it once `started()` says enough runs have started."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while not started() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143


@pytest.mark.parametrize("method", ["random", "bayes"])
def test_an_interrupted_sweep_resumes_without_repeating_finished_runs(fake, tmp_path, method):
    """Stopped after k runs and run again, a sweep runs only what is left: finished runs are not run
    again, the stopped run continues in its directory with resume=true, and a bayes sweep reads its
    Optuna study back from OUTPUT_ROOT/optuna.db (the first session's trials keep their numbers and
    values, the stopped trial is continued, not asked anew)."""
    write, invocations = fake
    path = write(method, {"x": {"min": 0.0, "max": 1.0}, "fail": {"value": False}},
                 metric={"name": "summary.score", "goal": "minimize"})
    root = tmp_path / "out"
    env = {**os.environ, "FAKE_SLEEP": "0.8", "FAKE_CKPT": "1"}
    cmd = [sys.executable, "-m", "robust_transfer.sweep", str(path), "--output-root", str(root), "--local",
           "--no-progress", "--count", "5"]
    _interrupt(cmd, env, started=lambda: len(invocations()) >= 3)  # two finished, the third running
    done, first = len(list(root.glob("*/results.json"))), invocations()
    assert done == 2 and len(first) == 3
    before = {t.number: (t.state.name, t.value) for t in _stored_study(root).trials} if method == "bayes" else {}
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{done} already finished (skipped)" in out.stdout and "5 runs:" in out.stdout
    second = invocations()[len(first):]
    assert len(second) == 5 - done
    assert second[0] == {**first[-1], "resume": "true"}  # the stopped run continues from its checkpoint
    assert not [r for r in second[1:] if r in first]  # nothing finished runs again
    assert len(list(root.glob("*/results.json"))) == 5
    if method == "bayes":
        study = _stored_study(root)
        assert len(study.trials) == 5 and all(t.state.name == "COMPLETE" for t in study.trials)
        assert all(study.trials[n].value == value for n, (state, value) in before.items() if state == "COMPLETE")
        assert [state for state, _ in before.values()].count("RUNNING") == 1


def test_failed_runs_are_reported_and_rerun(fake, tmp_path, capsys):
    write, invocations = fake
    path = write("grid", {"fail": {"values": [True, False]}})
    assert _main(path, "--output-root", tmp_path / "out") == 1
    out = capsys.readouterr().out
    assert "1 failed" in out and "sweep.log" in out
    assert _main(path, "--output-root", tmp_path / "out") == 1  # the failed one runs again
    assert len(invocations()) == 3


def test_killed_controller_stops_its_runs_and_resumes(fake, tmp_path, monkeypatch):
    write, invocations = fake
    path = write("grid", {"x": {"values": [0.0, 0.1, 0.2, 0.3]}})
    root = tmp_path / "out"
    env = {**os.environ, "FAKE_SLEEP": "0.6"}
    cmd = [sys.executable, "-m", "robust_transfer.sweep", str(path), "--output-root", str(root), "--local", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while len(list(root.glob("*/results.json"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    done = len(list(root.glob("*/results.json")))
    assert 2 <= done < 4
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60).stdout
    assert f"{done} already finished (skipped)" in out
    assert len(list(root.glob("*/results.json"))) == 4


# ---------------------------------------------------------------- the real smoke sweep


def test_smoke_sweep_killed_midway_restarts_and_skips_finished(smoke_sweep_runs):  # noqa: F811
    root, first, second = smoke_sweep_runs
    assert first["returncode"] != 0 and 1 <= first["finished"] < 4
    assert f"{first['finished']} already finished (skipped)" in second["stdout"], second["stdout"][-3000:]
    assert "4 runs:" in second["stdout"] and second["returncode"] == 0
    assert "target.adversary" in second["stdout"] and "degradation_avg" in second["stdout"]  # the summary table
    results = [json.loads(p.read_text()) for p in root.glob("*/results.json")]
    assert len(results) == 4
    assert {(r["config"]["target"]["adversary"]["name"], r["config"]["seed"]) for r in results} == {
        ("none", 0), ("none", 1), ("fgsm", 0), ("fgsm", 1)}
    assert all(r["config"]["experiment"] == "smoke" for r in results)


def test_a_literal_python_in_the_command_runs_under_the_controllers_interpreter():
    """W&B's docs write `command: [python, ...]`: with no venv activated, `python` on PATH would
    lack the project's packages, so the local controller runs it with its own interpreter."""
    for first in ("python", "python3"):
        sweep = {"command": [first, "-m", "robust_transfer.fit", "${args_no_hyphens}"]}
        argv = sw.build_command(sweep, {"seed": 1}, {"output_dir": "/tmp/x"})
        assert argv == [sys.executable, "-m", "robust_transfer.fit", "seed=1", "output_dir=/tmp/x"]
    # only in the interpreter's place: an argument that happens to read "python" stays as it is
    sweep = {"command": ["${interpreter}", "-m", "robust_transfer.fit", "logger.tags=[python]", "${args_no_hyphens}"]}
    assert sw.build_command(sweep, {}, {})[3] == "logger.tags=[python]"


def test_a_sweep_whose_command_says_python_runs_without_an_activated_venv(tmp_path):
    """`make sweep LOCAL=1` with no venv on PATH: a 1-run sweep whose command is `python PROGRAM`
    runs PROGRAM under the controller's interpreter, where the project's packages are."""
    program = tmp_path / "program.py"
    program.write_text("import json, os, sys\nimport omegaconf  # only in the project's environment\n"
                       "out = dict(a.split('=', 1) for a in sys.argv[1:])['output_dir']\nos.makedirs(out, exist_ok=True)\n"
                       "json.dump({'python': sys.executable}, open(os.path.join(out, 'results.json'), 'w'))\n")
    sweep = {"method": "grid", "parameters": {"seed": {"values": [0]}},
             "command": ["python", str(program), "${args_no_hyphens}"]}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    venv = Path(sys.executable).parent
    path = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep) if Path(d) != venv)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"} | {"PATH": path}
    cmd = [sys.executable, "-m", "robust_transfer.sweep", str(tmp_path / "sweep.yaml"), "--output-root",
           str(tmp_path / "out"), "--local", "--no-progress"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    [results] = (tmp_path / "out").glob("*/results.json")
    assert json.loads(results.read_text())["python"] == sys.executable
