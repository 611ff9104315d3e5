"""Faults a user can cause, tried as a user would: real PAWS-X files, real runs, real signals.

Every case asserts the exit code, that the one-paragraph message names the file (and line) or
key and the fix, that there is no traceback, and that nothing the user had is lost (input files
untouched, no checkpoint left that would block a rerun, earlier results intact).

One trained run (`reference`) is shared: the resume, damaged-checkpoint and signal cases start
from it or compare with it. Errors that must come before training are called in-process through
`fit.main`, as the command line runs them, to keep the suite fast.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from robust_transfer.fit import main
from robust_transfer.pipeline import RUN_FILE
from tests.conftest import ROOT, SHARED_DATA, smoke_args

LANGS = ("en", "de", "ja")
LINES = 240  # lines copied from each real dev file; ja gets 200: its test slice is shorter
TEST_SPLIT = "validation[160:224]"


def _copy_pawsx(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for lang in LANGS:
        lines = (SHARED_DATA / "pawsx" / f"dev-{lang}.tsv").read_bytes().splitlines(keepends=True)
        (dest / f"dev-{lang}.tsv").write_bytes(b"".join(lines[: 200 if lang == "ja" else LINES]))
    return dest


def _args(cache_dir: Path, data: Path, out: Path, *extra: str) -> list[str]:
    """A seconds-long PAWS-X run: target stage only, 128 training pairs, 3 test languages."""
    return [
        *smoke_args(cache_dir, out),
        "intermediate=none",
        "target.task=pawsx",
        "data.source=xtreme",
        f"data.path={data}",
        "data.train_split=validation[:128]",
        "data.val_split=validation[128:160]",
        f"data.test_split={TEST_SPLIT}",
        f"data.languages=[{','.join(LANGS)}]",
        "eval.generalized=false",
        # a combined family: README advertises it; before, it failed in every evaluation
        "eval.perturbations={mix: {family: char_noise+punctuation}}",
        *extra,
    ]


def _fit(capsys, args: list[str]) -> tuple[int, str, float]:
    """`python -m robust_transfer.fit ARGS`, in-process: exit code, stderr, seconds."""
    capsys.readouterr()
    started = time.perf_counter()
    code = main(args)
    return code, capsys.readouterr().err, time.perf_counter() - started


def _user_error(code: int, err: str) -> str:
    """The one-paragraph message of exit code 2 (progress bars may precede it on stderr)."""
    assert code == 2, err[-3000:]
    assert "Traceback" not in err
    (message,) = [line for line in err.splitlines() if line.startswith("error: ")]
    return message


def _nothing_blocks_a_rerun(out: Path) -> None:
    ckpts = out / "checkpoints"
    assert not (ckpts.is_dir() and any(ckpts.iterdir())), "a checkpoint was written before the error"
    assert not any((out / name).exists() for name in (RUN_FILE, "results.json", "metrics.csv"))


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return _copy_pawsx(tmp_path_factory.mktemp("pawsx"))


@pytest.fixture(scope="module")
def reference(cache_dir, data, tmp_path_factory) -> tuple[list[str], Path]:
    """One finished run; its arguments (without output_dir) and its directory."""
    out = tmp_path_factory.mktemp("reference") / "run"
    args = _args(cache_dir, data, out)
    assert main(args) == 0
    return [a for a in args if not a.startswith("output_dir=")], out


# ---------------------------------------------------------------- data files, before training


@pytest.mark.parametrize(
    "damage, expected",
    [
        # Latin-1 bytes in a test file: was UnicodeDecodeError with no file or line, after training
        (lambda p: p.write_bytes(p.read_bytes().replace(b"\n", "\nCaf\u00e9 cr\u00e8me\t".encode("latin-1"), 1)),
         r"dev-de\.tsv, line 2, column 4: byte 0xe9 is not valid UTF-8"),
        (lambda p: p.write_bytes(b""), r"dev-de\.tsv: no labelled row"),
        (lambda p: p.write_text("".join(f"a{i}\tb{i}\t-1\n" for i in range(LINES))), r"dev-de\.tsv: no labelled row.*64 unlabelled"),
        (lambda p: p.unlink(), r"dev-de\.tsv is missing"),
        (lambda p: p.write_text("one\ttwo\t1\n" * 170 + "only two\tfields\n" + "a\tb\t0\n" * 69), r"dev-de\.tsv, line 171: malformed line"),
    ],
    ids=["latin1", "empty", "all-unlabelled", "missing", "malformed"],
)
def test_a_bad_test_file_fails_before_training(capsys, cache_dir, data, tmp_path, damage, expected):
    files = _copy_pawsx(tmp_path / "pawsx")
    damage(files / "dev-de.tsv")
    before = {p.name: p.read_bytes() for p in files.iterdir()}
    out = tmp_path / "run"
    code, err, _ = _fit(capsys, _args(cache_dir, files, out))
    assert re.search(expected, _user_error(code, err)), err
    assert "data.test_split" in err or "data.languages" in err  # the key that chose the file
    _nothing_blocks_a_rerun(out)
    assert {p.name: p.read_bytes() for p in files.iterdir()} == before  # the user's files untouched


def test_a_slice_past_the_end_of_a_shorter_file_names_file_and_key(capsys, cache_dir, data, tmp_path):
    """Before: zero steps or zero rows without a word, then `Column 'input_ids' doesn't exist`."""
    out = tmp_path / "run"
    code, err, _ = _fit(capsys, _args(cache_dir, data, out, "data.test_split=validation[1900:]"))
    err = _user_error(code, err)
    assert "dev-en.tsv: no labelled row in the selection 'validation[1900:]' (0 of 240 data lines)" in err
    assert "data.test_split=validation[1900:]" in err
    _nothing_blocks_a_rerun(out)


def test_repeated_ids_in_a_test_file_name_both_lines(capsys, cache_dir, tmp_path):
    root = tmp_path / "original"
    for lang in ("en", "de"):
        rows = (SHARED_DATA / "pawsx" / f"dev-{lang}.tsv").read_text().splitlines()[:LINES]
        ids = list(range(len(rows)))
        if lang == "de":
            ids[170] = ids[165]  # inside the test slice (lines 160-223 of the data)
        (root / lang).mkdir(parents=True)
        (root / lang / "dev_2k.tsv").write_text(
            "id\tsentence1\tsentence2\tlabel\n" + "".join(f"{i}\t{r}\n" for i, r in zip(ids, rows, strict=True))
        )
    args = [*_args(cache_dir, root, tmp_path / "run"), "data.source=original", "data.languages=[en,de]"]
    code, err, _ = _fit(capsys, args)
    err = _user_error(code, err)
    assert "de/dev_2k.tsv, line 172: malformed line (id 165 repeats line 167" in err


@pytest.mark.parametrize(
    "override, expected",
    [
        ("data.languages=[en,de,en]", "data.languages=['en', 'de', 'en'] lists en more than once"),
        ("model.max_length=200", "model.max_length=200 is longer than the 128 token positions"),
        # a combined family's parameters must be keyed by its parts
        ("eval.perturbations={mix: {family: char_noise+punctuation, rate: 0.2}}", "eval.perturbations.mix"),
    ],
    ids=["repeated-language", "max-length", "bad-combined-family"],
)
def test_late_mistakes_now_fail_before_training(capsys, cache_dir, data, tmp_path, override, expected):
    out = tmp_path / "run"
    code, err, _ = _fit(capsys, [*_args(cache_dir, data, out), override])
    assert expected in _user_error(code, err)
    _nothing_blocks_a_rerun(out)


# ---------------------------------------------------------------- a finished run


def test_combined_family_and_a_shorter_language_are_run_and_reported(reference):
    _, out = reference
    results = json.loads((out / "results.json").read_text())
    assert list(results["accuracy"]) == ["clean", "mix"]
    assert results["test_examples"] == {"en": 64, "de": 64, "ja": 40}
    assert any("ja test split has 40 labelled pairs, fewer than the 64" in w for w in results["warnings"])
    assert results["perturbation_stats"]["mix"]["ja"]["changed_fraction"] > 0
    record = json.loads((out / RUN_FILE).read_text())
    assert len(record["fingerprint"]) == 16 and record["config"]["seed"] == 0


def test_resume_with_another_config_is_refused_and_lists_the_keys(capsys, reference):
    args, out = reference
    results = (out / "results.json").read_bytes()
    code, err, _ = _fit(capsys, [*args, f"output_dir={out}", "resume=true", "seed=5", "target.adversary=fgsm"])
    err = _user_error(code, err)
    assert "seed: 0 -> 5" in err and "target.adversary.name: 'none' -> 'fgsm'" in err
    assert "intermediate.adversary" not in err  # only what differs
    assert (out / "results.json").read_bytes() == results
    # and a plain rerun into a run directory is refused, whatever it holds
    code, err, _ = _fit(capsys, [*args, f"output_dir={out}"])
    assert "already holds a run" in _user_error(code, err) and "resume=true" in err


def test_a_results_folder_without_checkpoints_is_not_overwritten(capsys, reference, tmp_path):
    args, out = reference
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("checkpoints", "*.lock"))
    code, err, _ = _fit(capsys, [*args, f"output_dir={copy}"])
    assert "already holds a run (run.json, results.json, metrics.csv)" in _user_error(code, err)
    assert (copy / "results.json").read_bytes() == (out / "results.json").read_bytes()


@pytest.mark.parametrize("name, damage", [("last.ckpt", "truncate"), ("target.ckpt", "empty")])
def test_a_damaged_checkpoint_is_reported_with_the_way_out(capsys, reference, tmp_path, name, damage):
    args, out = reference
    run = tmp_path / "run"
    shutil.copytree(out, run)
    path = run / "checkpoints" / name
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(size // 2 if damage == "truncate" else 0)
    code, err, _ = _fit(capsys, [*args, f"output_dir={run}", "resume=true"])
    err = _user_error(code, err)
    assert f"Cannot resume from {path}" in err and f"mv {path} {path}.damaged" in err
    assert path.exists() and (run / "results.json").exists()  # nothing deleted
    # the way out works: move it aside and resume
    path.rename(f"{path}.damaged")
    code, err, _ = _fit(capsys, [*args, f"output_dir={run}", "resume=true"])
    assert code == 0, err[-3000:]
    resumed, expected = (json.loads((d / "results.json").read_text()) for d in (run, out))
    assert resumed["accuracy"] == expected["accuracy"]
    # a stage loaded from its checkpoint reports the record it wrote (was: skipped_steps null);
    # a stage finished again from last.ckpt trains no further step
    keys = ("steps", "skipped_steps", "val_accuracy", "train_examples") if name == "last.ckpt" else ("steps", "train_examples")
    assert [{k: s[k] for k in keys} for s in resumed["stages"]] == [{k: s[k] for k in keys} for s in expected["stages"]]


# ---------------------------------------------------------------- signals, locks, resume history

PAUSER = """
import sys, time
from pathlib import Path
import pytorch_lightning as pl
from robust_transfer import pipeline
from robust_transfer.fit import main

class Pause(pl.Callback):  # mid-epoch: tell the test, then wait for its signal
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 1 and not trainer.received_sigterm:
            Path(sys.argv[1]).write_text("paused")
            deadline = time.time() + 120
            while not trainer.received_sigterm and time.time() < deadline:
                time.sleep(0.05)

run = pipeline.run
pipeline.run = lambda cfg, callbacks=(): run(cfg, callbacks=(Pause(),))
sys.exit(main(sys.argv[2:]))
"""


def test_sigterm_saves_a_checkpoint_and_resume_continues_the_same_run(capsys, reference, tmp_path):
    """A second fit into the directory is refused while the first runs; SIGTERM in the middle
    of an epoch exits 143 with last.ckpt; resume=true finishes with exactly the uninterrupted
    run's results, the whole metric history, the stage records and the same W&B run."""
    args, ref = reference
    out, mark = tmp_path / "run", tmp_path / "paused"
    run_args = [*args, f"output_dir={out}", "logger.wandb=true"]
    proc = subprocess.Popen([sys.executable, "-c", PAUSER, str(mark), *run_args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while not mark.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert mark.exists(), proc.communicate()[1][-3000:]
        code, err, _ = _fit(capsys, run_args)
        assert "is in use: another fit is writing to it" in _user_error(code, err) and ".lock" in err
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err[-3000:]
    assert "stopped by SIGTERM during stage target" in err and "resume=true" in err and "Traceback" not in err
    assert not (out / "results.json").exists() and (out / "checkpoints" / "last.ckpt").exists()

    code, err, _ = _fit(capsys, [*run_args, "resume=true"])
    assert code == 0, err[-3000:]
    resumed, expected = (json.loads((d / "results.json").read_text()) for d in (out, ref))
    assert resumed["accuracy"] == expected["accuracy"]
    assert (out / "predictions.csv").read_text() == (ref / "predictions.csv").read_text()
    assert [{k: s[k] for k in ("steps", "skipped_steps", "val_accuracy")} for s in resumed["stages"]] == [
        {k: s[k] for k in ("steps", "skipped_steps", "val_accuracy")} for s in expected["stages"]
    ]
    history = [(r["step"], r.get("target/train/loss")) for r in _rows(out / "metrics.csv")]
    assert history == [(r["step"], r.get("target/train/loss")) for r in _rows(ref / "metrics.csv")]
    runs = sorted((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and len({r.name.rsplit("-", 1)[1] for r in runs}) == 1  # one W&B run id


def test_sigint_exits_130_with_a_checkpoint(reference, tmp_path):
    import pytorch_lightning as pl

    from robust_transfer.callbacks.interrupt import Interrupted
    from robust_transfer.config import compose
    from robust_transfer.pipeline import run

    class CtrlC(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.current_epoch == 0 and batch_idx == 2:
                os.kill(os.getpid(), signal.SIGINT)

    args, _ = reference
    out = tmp_path / "run"
    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted) as stop:
        run(compose([*args, f"output_dir={out}"]), callbacks=(CtrlC(),))
    assert stop.value.exit_code == 130 and stop.value.checkpoint == out / "checkpoints" / "last.ckpt"
    assert signal.getsignal(signal.SIGINT) is previous  # the run's handler is gone again
    import torch

    assert torch.load(stop.value.checkpoint, weights_only=False)["global_step"] == 3


# ---------------------------------------------------------------- permissions

NOBODY = """
import json, sys
from robust_transfer.fit import main
codes = {}
for name, args in json.loads(sys.argv[1]).items():
    codes[name] = main(args)
print(json.dumps(codes))
"""


def test_unwritable_run_directories_are_refused_before_anything(reference, tmp_path):
    """Root ignores permission bits, so the fits run as `nobody` (setpriv) when we are root."""
    args, _ = reference
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: permission bits would be ignored")
        prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    base = Path(tempfile.mkdtemp(prefix="rt-faults-"))
    try:
        base.chmod(0o755)
        home = base / "home"
        home.mkdir(mode=0o777)
        home.chmod(0o777)
        readonly = base / "readonly"
        readonly.mkdir(mode=0o555)
        own = {}
        for name in ("ckpts", "wandb"):
            own[name] = base / name
            (own[name] / name.replace("ckpts", "checkpoints")).mkdir(parents=True, mode=0o555)
            if prefix:
                os.chown(own[name], 65534, -1)  # nobody owns the run dir, not what is inside
        cases = {
            "readonly": [*args, f"output_dir={readonly / 'run'}"],
            "ckpts": [*args, f"output_dir={own['ckpts']}", "resume=true"],
            "wandb": [*args, f"output_dir={own['wandb']}", "logger.wandb=true"],
        }
        env = {**os.environ, "HOME": str(home), "HF_HOME": str(home / "hf"), "WANDB_DIR": str(home)}
        proc = subprocess.run([*prefix, sys.executable, "-c", NOBODY, json.dumps(cases)], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"readonly": 2, "ckpts": 2, "wandb": 2}
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
        assert "Traceback" not in proc.stderr
        assert f"Cannot write to {readonly / 'run'}" in errors[0] and "output_dir" in errors[0]
        assert f"Cannot write to {own['ckpts'] / 'checkpoints'}" in errors[1]
        assert f"Cannot write to {own['wandb'] / 'wandb'}" in errors[2]
        assert not any((own["ckpts"] / "checkpoints").iterdir())
    finally:
        for path in base.rglob("*"):
            if path.is_dir():
                path.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- caches


@pytest.fixture(scope="module")
def micro_encoder(tmp_path_factory):
    """A tiny-encoder build that takes about a second (no pretraining): the cache logic is
    the same for every spec."""
    from robust_transfer.models.tiny import TinyEncoderSpec, build_tiny_encoder

    spec = TinyEncoderSpec(corpus_size=300, hidden_size=16, intermediate_size=32, num_attention_heads=2,
                           num_hidden_layers=1, pretrain_objective="none", pretrain_steps=0, num_threads=1)
    root = tmp_path_factory.mktemp("tiny")
    path = build_tiny_encoder(spec, root)
    return spec, root, path, _files(path)


def _files(path: Path) -> dict[str, bytes]:
    """A build's files (build_info.json records timings, so it is compared by its checksums)."""
    files = {p.name: p.read_bytes() for p in path.iterdir() if p.name != "build_info.json"}
    return {**files, "checksums": json.loads((path / "build_info.json").read_text())["files"]}


@pytest.mark.parametrize("damage", ["half-weights", "zeroed-64k", "no-tokenizer"])
def test_a_damaged_tiny_encoder_cache_is_rebuilt_with_a_warning(micro_encoder, caplog, damage):
    from robust_transfer.models.tiny import build_tiny_encoder

    spec, root, path, original = micro_encoder
    weights = path / "model.safetensors"
    if damage == "half-weights":
        weights.write_bytes(original["model.safetensors"][: len(original["model.safetensors"]) // 2])
    elif damage == "zeroed-64k":  # same size, silently different accuracies before
        data = bytearray(original["model.safetensors"])
        data[-65536:] = bytes(65536)
        weights.write_bytes(bytes(data))
    else:
        (path / "tokenizer.json").unlink()
    with caplog.at_level(logging.WARNING):
        assert build_tiny_encoder(spec, root) == path
    assert "is damaged" in caplog.text and "Building it again" in caplog.text
    assert _files(path) == original  # the deterministic build, again
    assert not list(root.glob(".*"))  # no partial or damaged directory left behind


def test_a_killed_tiny_encoder_build_leaves_nothing_behind(micro_encoder):
    from robust_transfer.models.tiny import OWNER, build_tiny_encoder

    spec, root, path, _ = micro_encoder
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    partial = root / f".{path.name}.abandoned"
    partial.mkdir()
    (partial / OWNER).write_text(dead.stdout.strip())  # a build killed with SIGKILL
    (partial / "model.safetensors").write_bytes(b"half")
    shutil.rmtree(path)
    assert build_tiny_encoder(spec, root) == path
    assert not partial.exists()


def test_a_damaged_perturbed_split_cache_is_rebuilt(tmp_path, caplog):
    from datasets import Dataset

    from robust_transfer.data.perturbations import build_perturbation
    from robust_transfer.data.perturbed import perturb_split

    rows = (SHARED_DATA / "pawsx" / "dev-en.tsv").read_text().splitlines()[:200]
    ds = Dataset.from_list([{"id": i, "sentence1": r.split("\t")[0], "sentence2": r.split("\t")[1], "label": 0}
                            for i, r in enumerate(rows)])
    perturbation = build_perturbation("char_noise", {"rate": 0.2, "seed": 1})
    first = perturb_split(ds, perturbation, "en", tmp_path).to_list()
    (arrow,) = tmp_path.glob("*.arrow")
    assert (tmp_path / f"{arrow.name}.sha256").exists()
    arrow.write_bytes(arrow.read_bytes()[: arrow.stat().st_size // 2])
    with caplog.at_level(logging.WARNING):
        assert perturb_split(ds, perturbation, "en", tmp_path).to_list() == first
    assert "does not match its checksum: deleting it and building it again" in caplog.text


# ---------------------------------------------------------------- the sweep controller

SPAWNER = """
import os, subprocess, sys, time
args = dict(a.split("=", 1) for a in sys.argv[1:])
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])  # a DDP rank, say
with open(os.environ["SPAWN_LOG"], "a") as f:
    f.write(f"{os.getpid()} {worker.pid}\\n")
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie is dead, only not yet reaped


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups and /proc: Linux")
def test_a_killed_sweep_controller_takes_its_runs_and_their_children_with_it(tmp_path):
    import yaml

    program, log = tmp_path / "spawner.py", tmp_path / "pids"
    program.write_text(SPAWNER)
    sweep = {"method": "grid", "program": str(program), "parameters": {"x": {"values": [1, 2]}},
             "command": ["${env}", "${interpreter}", "${program}", "${args_no_hyphens}"]}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    cmd = [sys.executable, "-m", "robust_transfer.sweep", str(tmp_path / "sweep.yaml"), "--output-root",
           str(tmp_path / "out"), "--local", "--no-progress", "--parallel", "2"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "SPAWN_LOG": str(log)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while not (log.exists() and log.read_text().strip()) and time.time() < deadline:
        time.sleep(0.05)
    pids = [int(p) for p in log.read_text().split()]
    assert pids and all(_alive(p) for p in pids)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=90) == 143
    time.sleep(0.2)
    assert not [p for p in pids if _alive(p)], "a run or its child outlived the controller"
