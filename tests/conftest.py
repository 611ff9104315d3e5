"""Shared fixtures: hermetic environment, one cheap tiny encoder per session, fast run arguments."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


FRESH_DEFAULT_ENCODER = "fresh_default_encoder"  # the fixture of the tests that rebuild the shipped encoder
_BUILD_DEFAULT = (
    "import sys; from pathlib import Path; from robust_transfer.models.tiny import TinyEncoderSpec, "
    "build_tiny_encoder; build_tiny_encoder(TinyEncoderSpec(), Path(sys.argv[1]) / 'tiny')"
)
_default_build = pytest.StashKey[tuple[Path, subprocess.Popen]]()


def _rebuilds(item) -> bool:
    return FRESH_DEFAULT_ENCODER in getattr(item, "fixturenames", ())


def _idle_priority() -> None:
    """The build takes only the cycles the tests leave idle. Linux schedules each session (an
    autogroup) as one unit, and the sweep's runs start sessions of their own: a build merely
    niced inside pytest's session got a whole group's share against them (the smoke sweep took
    228 s beside it, 91 s alone). In a session of its own with the group's nice at 19 and
    SCHED_IDLE, the smoke sweep took 112 s beside it."""
    os.setsid()
    os.nice(19)
    with contextlib.suppress(OSError):  # no autogroups (or not Linux): nice and SCHED_IDLE still apply
        Path("/proc/self/autogroup").write_text("19")
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def pytest_collection_modifyitems(config, items) -> None:
    """When a selected test compares a fresh build of the default encoder with the shipped one,
    build it in the background from the start and run those tests last, so its 2.5 minutes
    overlap the other tests instead of adding to them."""
    items.sort(key=_rebuilds)  # stable: the rest keep their order
    if _default_build not in config.stash and any(_rebuilds(i) for i in items):
        from robust_transfer.models.tiny import SHIPPED_KERNELS  # the shipped build's CPU kernels

        root = Path(tempfile.mkdtemp(prefix="rt-default-encoder-"))
        # Its two OpenMP threads sleep while they wait for each other: spinning, a thread burns the
        # little CPU a low-priority process gets on a busy machine (measured: 12 steps a minute, 30x slower)
        proc = subprocess.Popen([sys.executable, "-c", _BUILD_DEFAULT, str(root)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE", **SHIPPED_KERNELS},
                                preexec_fn=_idle_priority)
        config.stash[_default_build] = (root, proc)


def pytest_unconfigure(config) -> None:
    if _default_build in config.stash:
        root, proc = config.stash[_default_build]
        proc.kill()
        proc.wait()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def fresh_default_encoder(request) -> Path:
    """The default tiny encoder (8000 pretraining steps) built from scratch, not the shipped copy."""
    root, proc = request.config.stash[_default_build]
    _, err = proc.communicate(timeout=1800)
    assert proc.returncode == 0, f"building the default encoder failed:\n{err[-3000:]}"
    (built,) = (root / "tiny").iterdir()
    return built


@pytest.fixture(scope="session")
def default_encoder_cache(cache_dir) -> Path:
    """A cache_dir for runs on the default encoder: the shipped build, so nothing is built."""
    return cache_dir


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One cache (tiny encoder, datasets) for the whole session; never the user's."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a loaded box OpenMP barriers stall them."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def first_token_logits(model, inputs: dict, inputs_embeds=None):
    """The test classifiers' forward: the encoder from ids or from given embeddings, then
    `model.head` on the first token (the `AdversarialBatch` contract of the regularizer tests)."""
    kwargs = {k: v for k, v in inputs.items() if k != "input_ids"}
    if inputs_embeds is None:
        kwargs["input_ids"] = inputs["input_ids"]
    else:
        kwargs["inputs_embeds"] = inputs_embeds
    return model.head(model.encoder(**kwargs).last_hidden_state[:, 0])


def smoke_args(cache_dir: Path, output_dir: Path) -> list[str]:
    return [
        "experiment=smoke",
        f"cache_dir={cache_dir}",
        f"output_dir={output_dir}",
        "logger.wandb=false",
        "trainer.enable_progress_bar=false",
    ]


@pytest.fixture
def fast_args(cache_dir, tmp_path) -> list[str]:
    """CLI arguments for a seconds-long end-to-end run into a fresh output directory."""
    return smoke_args(cache_dir, tmp_path / "run")


def run_cli(*args: str, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    """`python -m robust_transfer.fit ARGS` in a subprocess, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "robust_transfer.fit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


HEAVY_LIBRARIES = ("torch", "datasets", "transformers", "pytorch_lightning", "lightning")


def heavy_imports(code: str, libraries: tuple[str, ...] = HEAVY_LIBRARIES) -> list[str]:
    """The `libraries` a fresh interpreter has loaded after running `code` (from the repository)."""
    probe = f"{code}\nimport sys\nprint(sorted({{m.split('.')[0] for m in sys.modules}} & set({libraries!r})))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return eval(done.stdout.strip().splitlines()[-1])  # noqa: S307  (our own print of a list of names)
