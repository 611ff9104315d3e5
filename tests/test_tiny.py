"""The tiny encoder builds, caches, and loads through the hub code path."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("transformers")

from transformers import AutoModel, AutoTokenizer  # noqa: E402

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
