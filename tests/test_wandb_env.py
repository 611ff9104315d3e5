"""One W&B-mode decision: `wandb_env.wandb_mode`, and the three places that ask it (the fit's
logger, the sweep's choice of an online agent, the aggregation's W&B run) agree on every
environment."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from robust_transfer import aggregate, sweep
from robust_transfer.wandb_env import has_api_key, wandb_mode

KEY = "k" * 40


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean environment: no WANDB_MODE, no API key, a HOME without ~/.netrc, no LOCAL."""
    for name in ("WANDB_MODE", "WANDB_API_KEY", "LOCAL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return monkeypatch


def test_the_api_key_comes_from_the_environment_or_netrc(env, tmp_path):
    assert not has_api_key()
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + KEY + "\n")
    netrc.chmod(0o600)
    assert has_api_key()
    netrc.write_text("machine example.org\n  login user\n  password x\n")
    assert not has_api_key()
    env.setenv("WANDB_API_KEY", KEY)
    assert has_api_key()


# WANDB_MODE, API key -> what `auto` resolves to
CASES = [
    (None, False, "offline"),
    (None, True, "online"),
    ("online", True, "online"),
    ("online", False, "offline"),  # an online start without a key would ask for a login
    ("offline", True, "offline"),
    ("dryrun", True, "offline"),
    ("disabled", True, "disabled"),
    ("disabled", False, "disabled"),
]


@pytest.mark.parametrize(("wandb_mode_env", "key", "expected"), CASES)
def test_auto_follows_wandb_mode_and_the_api_key(env, wandb_mode_env, key, expected):
    if wandb_mode_env:
        env.setenv("WANDB_MODE", wandb_mode_env)
    if key:
        env.setenv("WANDB_API_KEY", KEY)
    assert wandb_mode("auto") == wandb_mode() == expected
    for explicit in ("online", "offline", "disabled"):  # an explicit mode is never overridden
        assert wandb_mode(explicit) == explicit


@pytest.mark.parametrize(("wandb_mode_env", "key", "expected"), CASES)
def test_sweep_and_aggregate_go_online_exactly_when_the_decision_says_online(
    env, wandb_mode_env, key, expected, tmp_path
):
    if wandb_mode_env:
        env.setenv("WANDB_MODE", wandb_mode_env)
    if key:
        env.setenv("WANDB_API_KEY", KEY)
    assert sweep.use_online(local=False) is (expected == "online")
    assert sweep.use_online(local=True) is False

    started = []

    class Run:
        def log(self, _):
            pass

        def finish(self):
            pass

    fake = types.SimpleNamespace(
        init=lambda **kw: started.append(kw["mode"]) or Run(),
        Settings=lambda **kw: kw,
        Table=lambda **kw: kw,
        Image=lambda path: path,
    )
    env.setitem(sys.modules, "wandb", fake)
    rows = [{"metric": "accuracy/clean", "label": "a", "lang": "en", "mean": 0.5}]
    got = aggregate.log_wandb("auto", rows, [], [], tmp_path, "project")
    assert (got, started) == (("online", ["online"]) if expected == "online" else (None, []))
    # an explicit mode is used as given, with or without a key
    assert aggregate.log_wandb("offline", rows, [], [], tmp_path, "project") == "offline"
    assert aggregate.log_wandb("disabled", rows, [], [], tmp_path, "project") is None


def test_the_fit_logger_starts_wandb_in_the_decided_mode(env, tmp_path):
    from robust_transfer.config import compose
    from robust_transfer.loggers import start_wandb

    cfg = compose(["experiment=smoke", f"output_dir={tmp_path}", "logger.wandb=true"])
    started = []
    fake = types.SimpleNamespace(
        init=lambda **kw: started.append(kw["mode"]), Settings=lambda **kw: kw
    )
    env.setitem(sys.modules, "wandb", fake)
    env.setenv("WANDB_MODE", "online")  # without a key: offline, not a login prompt
    start_wandb(cfg, Path(tmp_path))
    env.setenv("WANDB_API_KEY", KEY)
    start_wandb(cfg, Path(tmp_path))
    env.setenv("WANDB_MODE", "disabled")
    assert start_wandb(cfg, Path(tmp_path)) is None
    assert started == ["offline", "online"]
