"""Names that identify a configuration: the same for every seed, different for anything else.

W&B groups and the aggregation of seeds both key on `config_group`, so runs that differ only
in seed (or where they were written) land in one group. `run_info` is everything `wandb.init`
gets besides the config: a readable `name` (model, stages, adversaries and their key
hyperparameters, seed), the `group`, a `job_type` saying which stages are adversarial, and tags.

One W&B run covers the whole experiment (both training stages and the evaluation), so the
degradation table, the per-language summary keys and the training curves of a seed sit in one
run and a group's runs are exactly its seeds. `job_type` then carries the design factor that a
run-per-stage layout would have carried: which stages trained adversarially.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from robust_transfer.keys import STAGES

# keys that never change what is being measured (top level)
VOLATILE_KEYS = ("seed", "output_dir", "cache_dir", "resume", "logger")
# nested runtime knobs that never change what is being measured (dotted paths)
RUNTIME_KEYS = (
    "trainer.enable_progress_bar",
    "trainer.num_threads",
    "model.tiny.num_threads",
    "data.num_workers",
    "eval.save_predictions",
)
# adversary parameters worth a place in a run name, with their short labels
NAME_PARAMS = {"epsilon": "eps", "alpha": "a", "adv_lr": "lr", "steps": "k", "sigma": "sigma"}


def _drop(tree: dict[str, Any], path: list[str]) -> dict[str, Any]:
    head, *rest = path
    if head not in tree:
        return tree
    if not rest:
        return {k: v for k, v in tree.items() if k != head}
    if not isinstance(tree[head], dict):
        return tree
    return {**tree, head: _drop(tree[head], rest)}


def comparable_config(config: dict[str, Any]) -> dict[str, Any]:
    """The resolved config without the keys that differ between seeds of one configuration."""
    out = {k: v for k, v in config.items() if k not in VOLATILE_KEYS}
    for dotted in RUNTIME_KEYS:
        out = _drop(out, dotted.split("."))
    return out


def config_group(config: dict[str, Any]) -> str:
    """A short stable id of the configuration (experiment name + hash of everything but seed)."""
    blob = json.dumps(comparable_config(config), sort_keys=True, default=str)
    return f"{config.get('experiment', 'run')}-{hashlib.sha1(blob.encode()).hexdigest()[:8]}"


# ------------------------------------------------------------------ run identity


def stages_run(config: dict[str, Any]) -> list[str]:
    """The training stages this config runs, in order (`intermediate.task=none` skips one)."""
    return [s for s in STAGES if (config.get(s) or {}).get("task", "none") != "none"]


def stage_adversary(config: dict[str, Any], stage: str) -> dict[str, Any]:
    """The stage's resolved adversary (`{name: ..., params}`); `none` when unset."""
    adversary = (config.get(stage) or {}).get("adversary") or config.get("adversary") or {}
    return {"name": "none", **adversary}


def is_adversarial(config: dict[str, Any], stage: str) -> bool:
    return stage in stages_run(config) and stage_adversary(config, stage)["name"] != "none"


def model_label(config: dict[str, Any]) -> str:
    """`tiny`, `xlm-roberta-base` (hub ids and local directories: their last path part)."""
    name = str((config.get("model") or {}).get("name_or_path", "model"))
    return name.rstrip("/").split("/")[-1] or name


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def adversary_label(adversary: dict[str, Any]) -> str:
    """`none`, `fgsm(eps=1)`, `pgd(eps=1,a=0.3,k=3)`: the regularizer and its key knobs."""
    params = [f"{short}={_fmt(adversary[k])}" for k, short in NAME_PARAMS.items() if k in adversary]
    name = adversary["name"]
    return f"{name}({','.join(params)})" if params and name != "none" else name


def run_name(config: dict[str, Any]) -> str:
    """E.g. `tiny synthetic_nli:pgd(eps=1,a=0.3,k=3) > synthetic_paws:none s0` (`smoke/` prefixed
    for a named experiment): readable, and different for every seed of a group."""
    stages = " > ".join(
        f"{config[s]['task']}:{adversary_label(stage_adversary(config, s))}"
        for s in stages_run(config)
    )
    experiment = config.get("experiment", "default")
    prefix = "" if experiment in (None, "default") else f"{experiment}/"
    return f"{prefix}{model_label(config)} {stages} s{config.get('seed', 0)}"


def job_type(config: dict[str, Any]) -> str:
    """Which stages are adversarial: `baseline`, `adv-intermediate`, `adv-target`, `adv-both`;
    `no-intermediate-` in front when the intermediate stage is skipped."""
    adversarial = [s for s in stages_run(config) if is_adversarial(config, s)]
    if not adversarial:
        kind = "baseline"
    elif len(adversarial) == len(STAGES):
        kind = "adv-both"
    else:
        kind = f"adv-{adversarial[0]}"
    return kind if "intermediate" in stages_run(config) else f"no-intermediate-{kind}"


def run_tags(config: dict[str, Any]) -> list[str]:
    """`model:tiny`, `intermediate:synthetic_nli`, `intermediate-adv:pgd`, `target-adv:none`."""
    intermediate = (config.get("intermediate") or {}).get("task", "none")
    tags = [f"model:{model_label(config)}", f"intermediate:{intermediate}"]
    tags += [f"{s}-adv:{stage_adversary(config, s)['name']}" for s in stages_run(config)]
    return [t[:64] for t in tags]  # W&B's limit per tag


def run_info(config: dict[str, Any]) -> dict[str, Any]:
    """The `wandb.init` arguments that identify a run: name, group, job_type, tags."""
    return {
        "name": run_name(config),
        "group": config_group(config),
        "job_type": job_type(config),
        "tags": run_tags(config),
    }


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """Nested config -> dotted keys, the form W&B sweeps and filters address."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
