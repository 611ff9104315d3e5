"""PAWS-X sources (xtreme, original, hub), split slicing, bad lines, intermediate tasks, the
generalized setting, the model-loading error and the MiniLM resolver.

Local fixtures are written into tmp_path from a few real lines of ../shared/data at test time;
the hub is replaced by a monkeypatched `datasets.load_dataset` (it cannot be reached here).
"""

from __future__ import annotations

import logging
from pathlib import Path

import datasets
import pytest
from datasets import ClassLabel, Dataset, Features, Value
from omegaconf import OmegaConf

from robust_transfer import registry
from robust_transfer.config import compose, package_dir
from robust_transfer.data import sources
from robust_transfer.data.generalized import build_generalized
from robust_transfer.data.sources import DataError, load_pawsx, read_nli_tsv, read_pawsx_file
from robust_transfer.data.tasks import get_task
from robust_transfer.keys import LANGUAGES
from robust_transfer.pipeline import load_split

from .conftest import SHARED_DATA

PAWSX = SHARED_DATA / "pawsx"
XNLI = SHARED_DATA / "xnli" / "dev-en.tsv"
needs_shared = pytest.mark.skipif(
    not (PAWSX / "dev-en.tsv").is_file() or not XNLI.is_file(),
    reason=f"real data not found at {SHARED_DATA} (../shared/data beside the repository; present in CI)",
)


def _real_lines(lang: str, n: int, start: int = 0) -> list[str]:
    """Lines start..start+n of a real PAWS-X dev file, with their CRLF endings."""
    with open(PAWSX / f"dev-{lang}.tsv", encoding="utf-8", newline="") as f:
        lines = f.read().split("\r\n")
    return [line + "\r\n" for line in lines[start : start + n]]


def _write_xtreme(root: Path, langs=("en", "de", "ja"), n: int = 12) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for lang in langs:
        (root / f"dev-{lang}.tsv").write_bytes("".join(_real_lines(lang, n)).encode())
    return root


def _write_original(root: Path, langs=("en", "de", "ja"), n: int = 12) -> Path:
    """The same lines in the original release layout: a header and an id column (the line index)."""
    for lang in langs:
        (root / lang).mkdir(parents=True, exist_ok=True)
        body = [f"{i}\t{line.rstrip(chr(13) + chr(10))}\n" for i, line in enumerate(_real_lines(lang, n))]
        (root / lang / "dev_2k.tsv").write_text("id\tsentence1\tsentence2\tlabel\n" + "".join(body))
    return root


def _cfg(*args: str):
    return compose(["logger.wandb=false", *args])


# ---------------------------------------------------------------- local layouts


@needs_shared
def test_xtreme_and_original_layouts_give_identical_rows(tmp_path):
    xt = load_pawsx("xtreme", "validation", ["en", "de", "ja"], path=_write_xtreme(tmp_path / "x"))
    og = load_pawsx("original", "validation", ["en", "de", "ja"], path=_write_original(tmp_path / "o"))
    for lang in ("en", "de", "ja"):
        assert xt[lang].to_list() == og[lang].to_list()
        assert xt[lang].column_names == ["id", "sentence1", "sentence2", "label"]
        assert xt[lang]["id"][:] == list(range(12))
        assert not any(s.endswith("\r") for s in xt[lang]["sentence2"])  # CRLF stripped
    assert set(xt["en"]["label"][:]) <= {0, 1}


@needs_shared
def test_auto_detects_each_layout_and_reads_the_real_directory(tmp_path):
    assert sources.detect_layout(_write_xtreme(tmp_path / "x")) == "xtreme"
    assert sources.detect_layout(_write_original(tmp_path / "o")) == "original"
    assert sources.detect_layout(PAWSX) == "xtreme"
    real = load_pawsx("auto", "validation", list(LANGUAGES), path=PAWSX)
    assert {lang: len(ds) for lang, ds in real.items()} == dict.fromkeys(LANGUAGES, 2000)
    with pytest.raises(DataError, match="Cannot tell the layout"):
        sources.detect_layout(tmp_path)


@needs_shared
def test_split_slices_are_disjoint_line_ranges():
    train = load_pawsx("auto", "validation[:1000]", ["en"], path=PAWSX)["en"]
    test = load_pawsx("auto", "validation[1000:]", ["en"], path=PAWSX)["en"]
    assert train["id"][:] == list(range(1000)) and test["id"][:] == list(range(1000, 2000))
    pct = load_pawsx("auto", "validation[:10%]+validation[-5:]", ["de"], path=PAWSX)["de"]
    assert pct["id"][:] == [*range(200), *range(1995, 2000)]
    with pytest.raises(DataError, match="slicing syntax"):
        load_pawsx("auto", "validation[a:b]", ["en"], path=PAWSX)
    with pytest.raises(DataError, match="train.*missing"):
        load_pawsx("auto", "train", ["en"], path=PAWSX)


@needs_shared
def test_a_malformed_line_names_file_and_line_or_is_skipped_and_counted(tmp_path, caplog):
    lines = _real_lines("en", 6)
    lines[2] = "only one field\r\n"  # line 3
    lines[4] = lines[4].replace("\t1\r\n", "\tyes\r\n").replace("\t0\r\n", "\tyes\r\n")  # line 5
    (tmp_path / "dev-en.tsv").write_text("".join(lines), newline="")
    with pytest.raises(DataError, match=r"dev-en\.tsv, line 3: malformed line \(expected 3"):
        load_pawsx("xtreme", "validation", ["en"], path=tmp_path)
    with caplog.at_level(logging.WARNING):
        ds, stats = read_pawsx_file(tmp_path / "dev-en.tsv", "xtreme", "validation", on_bad_line="skip")
    assert stats.bad_lines == [3, 5] and len(ds) == 4 and ds["id"][:] == [0, 1, 3, 5]
    assert "skipped 2 malformed" in caplog.text
    # a label outside {0, 1, -1} is an error too: nothing is silently read as label 0
    (tmp_path / "dev-en.tsv").write_text("a\tb\t2\r\n")
    with pytest.raises(DataError, match="line 1: .*outside 0..1"):
        load_pawsx("xtreme", "validation", ["en"], path=tmp_path)


@needs_shared
def test_unlabelled_rows_are_dropped_and_counted_in_both_layouts(tmp_path, caplog):
    lines = _real_lines("en", 5)
    lines[1] = lines[1].rsplit("\t", 1)[0] + "\t-1\r\n"
    (tmp_path / "dev-en.tsv").write_text("".join(lines), newline="")
    with caplog.at_level(logging.WARNING):
        ds, stats = read_pawsx_file(tmp_path / "dev-en.tsv", "xtreme")
    assert stats.unlabelled == 1 and ds["id"][:] == [0, 2, 3, 4]
    assert "dropped 1 unlabelled" in caplog.text
    orig = tmp_path / "orig.tsv"
    orig.write_text("sentence1\tlabel\tid\tsentence2\na\t-1\t7\tb\nc\t1\t9\td\n")  # any column order
    ds, stats = read_pawsx_file(orig, "original")
    assert stats.unlabelled == 1 and ds.to_list() == [{"id": 9, "sentence1": "c", "sentence2": "d", "label": 1}]
    orig.write_text("id\tsentence1\tsentence2\nx\ty\tz\n")
    with pytest.raises(DataError, match="line 1: header .* lacks column"):
        read_pawsx_file(orig, "original")


@needs_shared
def test_pawsx_task_reads_splits_from_config(tmp_path):
    cfg = _cfg(
        "target.task=pawsx", "data.source=auto", f"data.path={PAWSX}",
        "data.train_split=validation[:100]", "data.test_split=validation[100:150]",
    )
    assert get_task("pawsx").num_labels == 2 and "pawsx" in registry.names("task", "target")
    assert len(load_split(cfg, "target", "train", ["en"])["en"]) == 100
    assert load_split(cfg, "target", "test", ["ja", "zh"])["zh"]["id"][:] == list(range(100, 150))
    with pytest.raises(DataError, match=r"target.task=pawsx .*\[target stage, train data: data.train_split="):
        load_split(OmegaConf.merge(cfg, {"target": {"task": "synthetic_paws"}}), "target", "train", ["en"])


# ---------------------------------------------------------------- the hub (monkeypatched)


def _fake_hub(calls: list, rows: dict, names: list[str], text=("sentence1", "sentence2")):
    features = Features({
        "id": Value("int32"), text[0]: Value("string"), text[1]: Value("string"), "label": ClassLabel(names=names)
    })

    def load_dataset(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        return Dataset.from_dict(rows, features=features)

    return load_dataset


def test_hub_pawsx_passes_repo_language_and_split(monkeypatch):
    calls = []
    rows = {"id": [1, 2, 3], "sentence1": ["a", "b", "c"], "sentence2": ["d", "e", "f"], "label": [0, 1, 1]}
    monkeypatch.setattr(datasets, "load_dataset", _fake_hub(calls, rows, ["0", "1"]))
    out = load_pawsx("hub", "validation[:1000]", ["en", "ja"])
    assert calls == [(sources.PAWSX_HUB, "en", "validation[:1000]"), (sources.PAWSX_HUB, "ja", "validation[:1000]")]
    assert out["ja"].to_list()[1] == {"id": 2, "sentence1": "b", "sentence2": "e", "label": 1}


def test_hub_intermediate_tasks_map_label_names_and_split_names(monkeypatch):
    calls = []
    # MNLI-like columns with labels in another order than the task's, and an unlabelled row
    rows = {"id": [0, 1, 2], "premise": ["p0", "p1", "p2"], "hypothesis": ["h0", "h1", "h2"], "label": [0, 1, -1]}
    names = ["contradiction", "entailment", "neutral"]
    features = Features({
        "id": Value("int32"), "premise": Value("string"), "hypothesis": Value("string"),
        "label": ClassLabel(names=names),
    })
    rows_ds = Dataset.from_dict(rows, features=features)

    def load_dataset(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        return rows_ds

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    cfg = _cfg("intermediate=mnli")
    ds = load_split(cfg, "intermediate", "validation", ["en"])["en"]
    assert calls[-1] == ("nyu-mll/glue", "mnli", "validation_matched")
    task_labels = get_task("mnli").labels
    assert [task_labels[y] for y in ds["label"][:]] == ["contradiction", "entailment"]
    assert ds["sentence1"][:] == ["p0", "p1"]
    cfg = _cfg("intermediate=mnli", "intermediate.val_split=validation[:10]")
    load_split(cfg, "intermediate", "validation", ["en"])
    assert calls[-1] == ("nyu-mll/glue", "mnli", "validation_matched[:10]")
    for name, repo, config, text in [
        ("qqp", "nyu-mll/glue", "qqp", ("question1", "question2")),
        ("xnli_en", "facebook/xnli", "en", ("premise", "hypothesis")),
        ("paws_en", sources.PAWSX_HUB, "en", ("sentence1", "sentence2")),
    ]:
        labels = list(get_task(name).labels)
        data = {"id": [5], text[0]: ["q1"], text[1]: ["q2"], "label": [1]}
        monkeypatch.setattr(datasets, "load_dataset", _fake_hub(calls, data, labels, text))
        ds = load_split(_cfg(f"intermediate={name}"), "intermediate", "train", ["en"])["en"]
        assert calls[-1] == (repo, config, "train")
        assert ds.to_list() == [{"id": 5, "sentence1": "q1", "sentence2": "q2", "label": 1}]


def test_hub_failure_is_a_clear_error(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match="paws-x.*Offline, use a local copy"):
        load_pawsx("hub", "test", ["de"])


# ---------------------------------------------------------------- the local NLI TSV


@needs_shared
def test_nli_tsv_reads_xnli_with_label_names(tmp_path):
    cfg = _cfg("intermediate=nli_tsv", f"data.intermediate_path={XNLI}")
    task = get_task("nli_tsv")
    train = load_split(cfg, "intermediate", "train", ["en"])["en"]
    val = load_split(cfg, "intermediate", "validation", ["en"])["en"]
    assert (len(train), len(val)) == (2000, 490) and task.num_labels == 3
    first = XNLI.read_text().split("\n")[0].split("\t")
    assert train[0]["sentence1"] == first[0] and task.labels[train[0]["label"]] == first[2]
    assert set(train["label"][:]) == {0, 1, 2}
    bad = tmp_path / "bad.tsv"
    bad.write_text("p\th\tentailment\np\th\tmaybe\n")
    with pytest.raises(DataError, match=r"bad\.tsv, line 2: .*'maybe' is not one of entailment"):
        read_nli_tsv(bad, task.labels)
    cfg = _cfg("intermediate=nli_tsv")
    with pytest.raises(DataError, match="data.intermediate_path"):
        load_split(cfg, "intermediate", "train", ["en"])


# ---------------------------------------------------------------- the generalized setting


@needs_shared
def test_generalized_matrix_of_seven_languages():
    clean = load_pawsx("auto", "validation[1000:1200]", list(LANGUAGES), path=PAWSX)
    gen = build_generalized(clean)
    assert len(gen.datasets) == 49 and set(gen.matrix()) == set(LANGUAGES)
    en_ja = gen.datasets[("en", "ja")]
    ja = {r["id"]: r for r in clean["ja"].to_list()}
    en = {r["id"]: r for r in clean["en"].to_list()}
    for row in en_ja.to_list():
        assert row["sentence1"] == en[row["id"]]["sentence1"]
        assert row["sentence2"] == ja[row["id"]]["sentence2"]
        assert row["label"] == en[row["id"]]["label"] == ja[row["id"]]["label"]
    mismatched = sum(en[i]["label"] != ja[i]["label"] for i in en)
    assert len(en_ja) == 200 - mismatched and gen.label_mismatch[("en", "ja")] == mismatched
    assert gen.datasets[("de", "de")].to_list() == clean["de"].to_list()
    kept = build_generalized(clean, ["en", "de"], on_label_mismatch="keep")
    assert len(kept.datasets[("de", "en")]) == 200 and len(kept.datasets) == 4
    summary = gen.summary()["de"]["en"]
    assert summary["rows"] + summary["label_mismatch"] == 200


def test_generalized_counts_ids_missing_in_one_language():
    a = Dataset.from_dict({"id": [0, 1, 2], "sentence1": ["a0", "a1", "a2"], "sentence2": ["x", "y", "z"], "label": [0, 1, 0]})
    b = Dataset.from_dict({"id": [2, 1, 5], "sentence1": ["b2", "b1", "b5"], "sentence2": ["B2", "B1", "B5"], "label": [0, 0, 1]})
    gen = build_generalized({"en": a, "de": b})
    assert gen.datasets[("en", "de")].to_list() == [{"id": 2, "sentence1": "a2", "sentence2": "B2", "label": 0}]
    assert gen.label_mismatch[("en", "de")] == 1 and gen.missing[("en", "de")] == 2
    with pytest.raises(ValueError, match="not unique"):
        build_generalized({"en": a, "de": Dataset.from_dict({**b.to_dict(), "id": [1, 1, 2]})})


# ---------------------------------------------------------------- models and experiments


def test_missing_model_error_says_name_hub_local_dir_and_tiny():
    from robust_transfer.models.encoder import ModelLoadError, load_encoder, load_tokenizer

    with pytest.raises(ModelLoadError) as err:
        load_tokenizer("no-such-org/no-such-model-xyz")
    message = str(err.value)
    for part in ("'no-such-org/no-such-model-xyz'", "hub is unreachable", "model.name_or_path=/path/to/dir", "model=tiny"):
        assert part in message
    with pytest.raises(ModelLoadError, match="'no-such-org/no-such-model-xyz'.*hub is unreachable"):
        load_encoder("no-such-org/no-such-model-xyz")


def test_package_dir_resolver_falls_back_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="robust_transfer"):
        assert package_dir("no_such_package_xyz", "model", "tiny") == "tiny"
    assert "not installed" in caplog.text and "no-such-package-xyz" in caplog.text


@pytest.mark.parametrize("experiment", ["pawsx_real_cpu", "paper_xlmr", "paper_mbert"])
def test_real_experiments_compose(experiment):
    cfg = _cfg(f"experiment={experiment}")
    assert cfg.target.task == "pawsx" and cfg.model.max_length == (96 if experiment == "pawsx_real_cpu" else 128)
    if experiment == "pawsx_real_cpu":
        assert cfg.data.train_split == "validation[:1000]" and cfg.data.test_split == "validation[1000:]"
        assert cfg.intermediate.task == "nli_tsv"
    else:
        assert cfg.data.source == "hub" and cfg.intermediate.task == "mnli"
        assert cfg.target.lr == cfg.intermediate.lr == 2e-5 and cfg.data.batch_size == 32
        assert cfg.model.name_or_path == {"paper_xlmr": "xlm-roberta-base", "paper_mbert": "bert-base-multilingual-cased"}[experiment]
    for model in ("xlmr_base", "xlmr_large", "mbert", "minilm"):
        assert _cfg(f"model={model}").model.max_length == 128
