"""The one decision whether W&B runs online, offline or not at all (torch-free, no wandb import).

The fit (`logger.mode`), the aggregation (`--wandb`) and the sweep controller (online agent or
local controller) all ask `wandb_mode`, so one environment gives one answer everywhere.
"""

from __future__ import annotations

import netrc
import os

MODES = ("auto", "online", "offline", "disabled")


def has_api_key() -> bool:
    """A W&B API key is available: `WANDB_API_KEY`, or an `api.wandb.ai` entry in ~/.netrc
    (where `wandb login` writes it)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_mode(requested: str = "auto") -> str:
    """The W&B mode to use for `requested` (`auto`, `online`, `offline` or `disabled`).

    The rule: an explicit mode is used as given. `auto` is `WANDB_MODE` when that is set
    (`dryrun`, W&B's old name for offline, is `offline`), except that online needs an API key
    (`has_api_key`): without one, `auto` is `offline`, since an online start would ask for a login
    or fail. With `WANDB_MODE` unset, `auto` is `online` with an API key and `offline` without.

    Callers that only act online (the sweep's online agent, the aggregation's W&B run under
    `--wandb auto`) compare the result with `"online"`.
    """
    if requested != "auto":
        return requested
    env = os.environ.get("WANDB_MODE") or "online"
    if env == "dryrun":
        return "offline"
    if env == "online" and not has_api_key():
        return "offline"
    return env
