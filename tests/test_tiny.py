"""The tiny encoder builds, caches, and loads through the hub code path; the default one ships."""

import dataclasses
import json
import logging
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("transformers")

from transformers import AutoModel, AutoTokenizer  # noqa: E402

from robust_transfer.models import tiny  # noqa: E402
from robust_transfer.models.tiny import TinyEncoderSpec, build_tiny_encoder, fingerprint  # noqa: E402

SPEC = TinyEncoderSpec(vocab_size=600, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=64, corpus_size=2000, pretrain_steps=5,
                       pretrain_batch_size=8, pretrain_warmup=1)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return root, build_tiny_encoder(SPEC, root)


def test_builds_and_loads(built):
    _, path = built
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    assert model.config.model_type == "xlm-roberta"
    assert model.config.hidden_size == 32
    assert model.config.max_position_embeddings >= tok.model_max_length + 2
    enc = tok("Alice defeated Bob in 1990.", "Bob was defeated by Alice in 1990.", return_tensors="pt")
    out = model(**enc)
    assert out.last_hidden_state.shape == (1, enc["input_ids"].shape[1], 32)
    info = json.loads((path / "build_info.json").read_text())
    assert info["fingerprint"] == fingerprint(SPEC)


def test_cached_second_call(built):
    root, path = built
    mtime = (path / "build_info.json").stat().st_mtime_ns
    assert build_tiny_encoder(SPEC, root) == path
    assert (path / "build_info.json").stat().st_mtime_ns == mtime
    assert [p.name for p in root.iterdir()] == [path.name]  # no leftover temp dirs


def test_fingerprint_depends_on_spec():
    import dataclasses

    assert fingerprint(SPEC) == fingerprint(dataclasses.replace(SPEC))
    assert fingerprint(SPEC) != fingerprint(dataclasses.replace(SPEC, seed=1))


def test_tokenizer_special_tokens_and_round_trip(built):
    _, path = built
    tok = AutoTokenizer.from_pretrained(path)
    assert (tok.cls_token, tok.sep_token, tok.pad_token, tok.unk_token, tok.mask_token) == (
        "<s>", "</s>", "<pad>", "<unk>", "<mask>")
    ids = tok("Alice", "Bob")["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert ids.count(tok.sep_token_id) == 3  # <s> A </s></s> B </s>
    for text in ("Alice defeated Bob in 1990.", "Aliceは1990年にBobを破った。",
                 "Alice는 1990년에 Bob을 이겼다.", "Alice在1990年击败了Bob。"):
        decoded = tok.decode(tok(text)["input_ids"], skip_special_tokens=True)
        assert decoded.replace(" ", "") == text.replace(" ", "")


def test_names_tokenize_the_same_in_every_language(built):
    _, path = built
    tok = AutoTokenizer.from_pretrained(path)
    alice = tok.tokenize("Alice")
    for text in ("Alice defeated Bob.", "Aliceは", "Alice는", "Alice在"):
        toks = tok.tokenize(text)
        assert toks[: len(alice)] == alice


def test_tokenizer_training_is_identical_in_every_process():
    # the tokenizers library's hash maps are seeded per process: train in fresh ones
    script = (
        "from robust_transfer.models.tiny import TinyEncoderSpec, train_tokenizer, _synthetic_spec\n"
        "from robust_transfer.data.synthetic import unlabelled_corpus\n"
        "spec = TinyEncoderSpec(corpus_size=2000)\n"
        "print(train_tokenizer(spec, unlabelled_corpus(_synthetic_spec(spec), 0, 2000)).to_str())\n"
    )
    built = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
             for _ in range(3)}
    assert len(built) == 1


# ---------------------------------------------------------------- the shipped default encoder

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def _no_build(*args, **kwargs):
    raise AssertionError("the tiny encoder was built")


def test_the_default_config_resolves_to_the_shipped_encoder_without_building(tmp_path, monkeypatch):
    from robust_transfer.config import compose
    from robust_transfer.models.encoder import load_encoder, load_tokenizer, resolve_model_path

    monkeypatch.setattr(tiny, "build_tiny_encoder", _no_build)
    cfg = compose([f"cache_dir={tmp_path}"])
    path = resolve_model_path(cfg)
    assert path == str(tiny.SHIPPED)
    assert not (tmp_path / "tiny").exists()
    assert load_encoder(path).config.hidden_size == cfg.model.tiny.hidden_size
    assert load_tokenizer(path).tokenize("Alice") == ["\u2581Alice"]


def test_the_shipped_encoder_records_its_spec_fingerprint_and_checksums():
    info = json.loads((tiny.SHIPPED / "build_info.json").read_text())
    assert info["spec"] == dataclasses.asdict(TinyEncoderSpec())
    assert info["fingerprint"] == fingerprint(TinyEncoderSpec()) == fingerprint(TinyEncoderSpec(**info["spec"]))
    assert info["version"] == tiny.TINY_VERSION
    assert {"model.safetensors", "config.json", *TOKENIZER_FILES} <= set(info["files"])
    assert sorted(p.name for p in tiny.SHIPPED.iterdir()) == sorted([*info["files"], "build_info.json"])
    assert tiny.first_mismatch(tiny.SHIPPED, info["files"]) is None


def test_another_spec_is_built_into_the_cache(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(tiny, "build_tiny_encoder", lambda spec, root: built.append((spec, root)) or root)
    other = dataclasses.replace(TinyEncoderSpec(), pretrain_steps=30)
    assert tiny.tiny_encoder_dir(other, tmp_path) == tmp_path
    assert built == [(other, tmp_path)]


@pytest.mark.parametrize("damage", ["truncated-weights", "no-tokenizer", "bad-build-info"])
def test_a_damaged_shipped_encoder_says_how_to_restore_it_and_is_built_instead(
        tmp_path, monkeypatch, caplog, damage):
    shipped = tmp_path / "tiny_default"
    shutil.copytree(tiny.SHIPPED, shipped)
    monkeypatch.setattr(tiny, "SHIPPED", shipped)
    if damage == "truncated-weights":
        weights = shipped / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:-1000])
    elif damage == "no-tokenizer":
        (shipped / "tokenizer.json").unlink()
    else:
        (shipped / "build_info.json").write_text("{")
    built = []
    monkeypatch.setattr(tiny, "build_tiny_encoder", lambda spec, root: built.append(spec) or root)
    with caplog.at_level(logging.WARNING):
        assert tiny.tiny_encoder_dir(TinyEncoderSpec(), tmp_path / "cache") == tmp_path / "cache"
    assert built == [TinyEncoderSpec()]
    assert "is damaged" in caplog.text and "git checkout -- robust_transfer/models/tiny_default" in caplog.text
    expected = {"truncated-weights": "model.safetensors", "no-tokenizer": "tokenizer.json missing",
                "bad-build-info": "build_info.json is unreadable"}[damage]
    assert all(word in caplog.text for word in expected.split())


@pytest.mark.slow
def test_a_fresh_build_of_the_default_encoder_equals_the_shipped_one(fresh_default_encoder):
    """The build is deterministic: from scratch it gives the shipped tensors and tokenizer bit for bit."""
    import torch
    from safetensors.torch import load_file

    fresh, shipped = fresh_default_encoder, tiny.SHIPPED
    assert fresh.name == json.loads((shipped / "build_info.json").read_text())["fingerprint"]
    a, b = load_file(fresh / "model.safetensors"), load_file(shipped / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and torch.equal(a[name], b[name]), name
    for name in TOKENIZER_FILES:
        assert (fresh / name).read_bytes() == (shipped / name).read_bytes(), name
    configs = [json.loads((d / "config.json").read_text()) for d in (fresh, shipped)]
    for config in configs:  # the library version that wrote it is no property of the model
        config.pop("transformers_version", None)
    assert configs[0] == configs[1]

