"""PAWS-X and other sentence-pair sources: the hub, local XTREME-layout and original-layout TSVs.

Every loader returns `datasets.Dataset`s with the columns `id` (int), `sentence1`, `sentence2`
and `label` (int), whatever the source, so the same data in any layout gives identical rows.

Split names are the hub's (`train`, `validation`, `test`) with the `datasets` slicing syntax
(`validation[:1000]`, `validation[1000:]`, `train[:10%]`, `a+b`), resolved by datasets' own
`ReadInstruction`. Local slices count the data lines of the file (line 0 is the first data
line; the original layout's header is not counted), before any row is dropped, so two slices of
one file are disjoint line ranges whatever is skipped inside them.

Local layouts (see `README.md`, "Real models and data"):
- xtreme: `{split}-{lang}.tsv`, no header, columns sentence1, sentence2, label (`dev` is the file
  name of the `validation` split); `id` is the line index in the file.
- original: `{lang}/train.tsv` (en) or `{lang}/translated_train.tsv`, `{lang}/dev_2k.tsv`,
  `{lang}/test_2k.tsv`, header `id sentence1 sentence2 label`; `id` is the file's column.

Rows labelled -1 (unlabelled) are dropped and counted. A malformed line (wrong field count, bad
label, non-integer or repeated id) raises a `DataError` naming the file and line number, or with
`on_bad_line="skip"` is skipped and counted. Bytes that are not UTF-8 are an error naming the file,
line and column, and a selection that keeps no row (an empty file, a slice past the end, only
unlabelled rows) is an error that says what the file holds: nothing is ever trained or scored on
zero rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, ReadInstruction

from robust_transfer.keys import DATA_SPLITS

log = logging.getLogger(__name__)

SOURCES = ("synthetic", "hub", "xtreme", "original", "auto")
PAWSX_HUB = "google-research-datasets/paws-x"
COLUMNS = ("id", "sentence1", "sentence2", "label")
XTREME_FILE = {"train": "train-{lang}.tsv", "validation": "dev-{lang}.tsv", "test": "test-{lang}.tsv"}
ORIGINAL_FILE = {"validation": "dev_2k.tsv", "test": "test_2k.tsv"}


class DataError(ValueError):
    """A data file or directory that cannot be read as asked; the message says where and why."""


@dataclass
class ReadStats:
    """What one read dropped: unlabelled rows (-1) and skipped malformed lines (1-based line numbers)."""

    path: str = ""
    rows: int = 0
    unlabelled: int = 0
    bad_lines: list[int] = field(default_factory=list)

    def log(self) -> None:
        if self.unlabelled or self.bad_lines:
            shown = ", ".join(map(str, self.bad_lines[:10])) + (" ..." if len(self.bad_lines) > 10 else "")
            log.warning(
                "%s: kept %d rows; dropped %d unlabelled (label -1) rows and skipped %d malformed "
                "lines%s",
                self.path, self.rows, self.unlabelled, len(self.bad_lines),
                f" (lines {shown})" if self.bad_lines else "",
            )


# ---------------------------------------------------------------- split specs


def split_name(spec: str) -> str:
    """The split a spec reads from: `validation[:1000]` -> `validation` (first part of a `+`)."""
    return spec.split("+")[0].split("[")[0].strip()


def slice_ranges(spec: str, length: int, name: str | None = None) -> list[tuple[int, int]]:
    """The (start, stop) line ranges of `spec` in a split of `length` rows (datasets' semantics).

    `name` overrides the split name every part must carry (a local file is one split).
    """
    try:
        instruction = ReadInstruction.from_spec(spec)
        parts = instruction.to_absolute({split_name(p): length for p in spec.split("+")})
    except (ValueError, AssertionError, KeyError) as err:
        raise DataError(
            f"Cannot read the split '{spec}': {err}. Use the datasets slicing syntax, e.g. "
            "validation, validation[:1000], validation[1000:], train[:10%]."
        ) from None
    names = {p.splitname for p in parts}
    if name is not None and names - {name}:
        raise DataError(f"The split '{spec}' mixes splits ({', '.join(sorted(names))}); use one split.")
    return [(p.from_, p.to) for p in parts]


# ---------------------------------------------------------------- TSV parsing


Row = dict


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"Data file not found: {path}")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"Cannot read {path}: {err.strerror}. Check the file's permissions.") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line_start = raw.rfind(b"\n", 0, err.start) + 1
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataError(
            f"{path}, line {line}, column {err.start - line_start + 1}: byte 0x{raw[err.start]:02x} is not "
            "valid UTF-8 (the file is in another encoding, e.g. Latin-1, or damaged). Data files must be "
            f"UTF-8: convert it, e.g. iconv -f latin1 -t utf-8 {path} > fixed.tsv."
        ) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]  # CRLF tolerated


def read_tsv(
    path: str | Path,
    parse: Callable[[list[str], int], Row],
    *,
    header: Sequence[str] | None = None,
    spec: str | None = None,
    on_bad_line: str = "error",
    num_fields: int,
) -> tuple[list[Row], ReadStats]:
    """Rows of a TSV file, sliced by `spec` over data lines; `parse(fields, index)` builds one row.

    `parse` raises ValueError for a malformed row. With `header`, the first line must hold those
    column names (in any order; `parse` receives fields reordered to `header`'s order).
    """
    path = Path(path)
    lines = _read_lines(path)
    order = list(range(num_fields))
    first = 1
    if header is not None:
        if not lines:
            raise DataError(f"{path}: empty file; expected a header line {' '.join(header)}")
        names = [c.strip() for c in lines[0].split("\t")]
        missing = [c for c in header if c not in names]
        if missing:
            raise DataError(
                f"{path}, line 1: header {names} lacks column(s) {', '.join(missing)}; expected "
                f"the original PAWS-X header {' '.join(header)}"
            )
        order, lines, first = [names.index(c) for c in header], lines[1:], 2
        num_fields = len(names)
    ranges = slice_ranges(spec, len(lines)) if spec else [(0, len(lines))]
    stats = ReadStats(path=str(path))
    rows: list[Row] = []
    seen: dict[int, int] = {}  # id -> the line that first held it
    for start, stop in ranges:
        for index in range(start, stop):
            fields = lines[index].split("\t")
            try:
                if len(fields) != num_fields:
                    raise ValueError(f"expected {num_fields} tab-separated fields, found {len(fields)}")
                row = parse([fields[i] for i in order], index)
                if row["id"] in seen:  # predictions pair up across languages and seeds by id
                    raise ValueError(f"id {row['id']} repeats line {seen[row['id']]}; ids must be unique")
                seen[row["id"]] = index + first
            except ValueError as err:
                if on_bad_line != "skip":
                    raise DataError(
                        f"{path}, line {index + first}: malformed line ({err}). Fix the file or "
                        "pass data.on_bad_line=skip to skip and count such lines."
                    ) from None
                stats.bad_lines.append(index + first)
                continue
            if row["label"] == -1:
                stats.unlabelled += 1
                continue
            rows.append(row)
    stats.rows = len(rows)
    stats.log()
    if not rows:
        selected = sum(stop - start for start, stop in ranges)
        what = f"the selection '{spec}' ({selected} of {len(lines)} data lines)" if spec else f"its {len(lines)} data lines"
        dropped = f"; {stats.unlabelled} unlabelled (label -1)" if stats.unlabelled else ""
        skipped = f"; {len(stats.bad_lines)} malformed lines skipped" if stats.bad_lines else ""
        raise DataError(
            f"{path}: no labelled row in {what}{dropped}{skipped}. Fix the file or choose a split "
            "that selects labelled lines (a slice inside the file's length)."
        )
    return rows, stats


def parse_label(value: str, labels: Sequence[str] | int) -> int:
    """An integer label id (or -1), from an id or a label name; anything else is a ValueError."""
    value = value.strip()
    names = list(labels) if not isinstance(labels, int) else []
    count = labels if isinstance(labels, int) else len(names)
    if value in names:
        return names.index(value)
    try:
        label = int(value)
    except ValueError:
        valid = ", ".join(names) if names else f"0..{count - 1}"
        raise ValueError(f"label {value!r} is not one of {valid} (or -1)") from None
    if not -1 <= label < count:
        raise ValueError(f"label {label} is outside 0..{count - 1} (or -1 for unlabelled)")
    return label


def _pair(s1: str, s2: str, label: int, id_: int) -> Row:
    return {"id": id_, "sentence1": s1, "sentence2": s2, "label": label}


def _to_dataset(rows: list[Row]) -> Dataset:
    if not rows:
        return Dataset.from_dict({"id": [], "sentence1": [], "sentence2": [], "label": []})
    return Dataset.from_list(rows)


# ---------------------------------------------------------------- PAWS-X layouts


def detect_layout(path: str | Path) -> str:
    """`xtreme` or `original`, from the files in a local PAWS-X directory."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(
            f"data.path '{path}' is not a directory. Point it at a PAWS-X folder in the XTREME layout "
            "(dev-en.tsv, ...) or the original layout (en/dev_2k.tsv, ...), or use data.source=hub."
        )
    if any(root.glob("*-*.tsv")):
        return "xtreme"
    if any(root.glob("*/dev_2k.tsv")) or any(root.glob("*/test_2k.tsv")) or any(root.glob("*/*train.tsv")):
        return "original"
    raise DataError(
        f"Cannot tell the layout of '{path}': expected XTREME files such as dev-en.tsv or original "
        "files such as en/dev_2k.tsv. Set data.source=xtreme or data.source=original explicitly."
    )


def pawsx_file(root: str | Path, layout: str, split: str, lang: str) -> Path:
    """The file holding `split` of language `lang` in a local directory of the given layout."""
    if split not in DATA_SPLITS:
        raise DataError(f"Unknown PAWS-X split '{split}'. Valid splits: {', '.join(DATA_SPLITS)}.")
    root = Path(root)
    if layout == "xtreme":
        return root / XTREME_FILE[split].format(lang=lang)
    if split == "train":
        return root / lang / ("train.tsv" if lang == "en" else "translated_train.tsv")
    return root / lang / ORIGINAL_FILE[split]


def read_pawsx_file(
    path: str | Path, layout: str, spec: str | None = None, on_bad_line: str = "error"
) -> tuple[Dataset, ReadStats]:
    """One local PAWS-X file (either layout) as a Dataset of id, sentence1, sentence2, label."""
    if layout == "xtreme":
        rows, stats = read_tsv(
            path,
            lambda f, i: _pair(f[0], f[1], parse_label(f[2], 2), i),
            spec=spec, on_bad_line=on_bad_line, num_fields=3,
        )
    elif layout == "original":
        rows, stats = read_tsv(
            path,
            lambda f, i: _pair(f[1], f[2], parse_label(f[3], 2), _int(f[0], "id")),
            header=COLUMNS, spec=spec, on_bad_line=on_bad_line, num_fields=4,
        )
    else:
        raise DataError(f"Unknown PAWS-X layout '{layout}': use xtreme or original.")
    return _to_dataset(rows), stats


def _int(value: str, what: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError(f"{what} {value!r} is not an integer") from None


def load_pawsx(
    source: str,
    split: str,
    languages: Sequence[str],
    *,
    path: str | Path | None = None,
    on_bad_line: str = "error",
) -> dict[str, Dataset]:
    """`{lang: Dataset}` of PAWS-X `split` (slicing syntax) from the hub or a local directory."""
    if source == "hub":
        return {lang: load_hub_pairs(PAWSX_HUB, lang, split) for lang in languages}
    if source in ("auto", "xtreme", "original") and path is None:
        raise DataError(f"data.source={source} reads a local directory: set data.path=/path/to/pawsx.")
    layout = detect_layout(path) if source == "auto" else source
    if layout not in ("xtreme", "original"):
        raise DataError(f"data.source={source} is not a PAWS-X source: use hub, xtreme, original or auto.")
    name = split_name(split)
    out = {}
    for lang in languages:
        file = pawsx_file(path, layout, name, lang)
        if not file.is_file():
            raise DataError(
                f"No {name} split for '{lang}' in {path} ({layout} layout): {file} is missing. "
                "Choose another split (data.train_split / data.val_split / data.test_split) or "
                "language (data.languages)."
            )
        out[lang], _ = read_pawsx_file(file, layout, split, on_bad_line)
    return out


# ---------------------------------------------------------------- the hub


def load_hub_pairs(
    repo: str,
    config: str | None,
    split: str,
    *,
    columns: tuple[str, str] = ("sentence1", "sentence2"),
    labels: Sequence[str] | None = None,
) -> Dataset:
    """A hub dataset's split as id, sentence1, sentence2, label; unlabelled (-1) rows dropped.

    `labels` (the task's label names) maps the hub's ClassLabel names onto the task's ids;
    `columns` names the hub's two text columns. Rows without an `id` column get `idx` or their
    position.
    """
    import datasets

    try:
        ds = datasets.load_dataset(repo, config, split=split)
    except Exception as err:  # offline, unknown name, unknown split: all user-fixable
        raise DataError(
            f"Cannot load {repo} ({config}) split '{split}' from the Hugging Face hub: {err}. "
            "Offline, use a local copy instead (data.source=xtreme/original with data.path=DIR, "
            "or intermediate=nli_tsv with data.intermediate_path=FILE)."
        ) from None
    remap = None
    feature = ds.features.get("label")
    if labels is not None and getattr(feature, "names", None):
        names = list(feature.names)
        missing = [n for n in names if n not in labels]
        if missing:
            raise DataError(f"{repo} ({config}) has label(s) {missing} that the task lacks: {list(labels)}")
        remap = [list(labels).index(n) for n in names]
    id_column = "id" if "id" in ds.column_names else "idx" if "idx" in ds.column_names else None
    first, second = columns

    def convert(batch: dict, indices: list[int]) -> dict:
        label = [int(y) for y in batch["label"]]
        if remap is not None:
            label = [remap[y] if y >= 0 else -1 for y in label]
        ids = batch[id_column] if id_column else indices
        return {"id": [int(i) for i in ids], "sentence1": batch[first], "sentence2": batch[second], "label": label}

    before = len(ds)
    ds = ds.map(convert, batched=True, with_indices=True, remove_columns=ds.column_names)
    ds = ds.filter(lambda batch: [y != -1 for y in batch["label"]], batched=True)
    if len(ds) < before:
        log.warning("%s (%s) %s: dropped %d unlabelled (label -1) rows", repo, config, split, before - len(ds))
    return ds


# ---------------------------------------------------------------- a local NLI TSV


def read_nli_tsv(
    path: str | Path, labels: Sequence[str], spec: str | None = None, on_bad_line: str = "error"
) -> tuple[Dataset, ReadStats]:
    """A premise, hypothesis, label-name TSV (no header) such as XNLI's dev-en.tsv.

    Label names map to ids in `labels`' order (`contradictory`, XTREME's spelling, reads as
    `contradiction`); a numeric label is taken as an id. `id` is the line index.
    """
    aliases = {"contradictory": "contradiction"}

    def parse(fields: list[str], index: int) -> Row:
        name = aliases.get(fields[2].strip(), fields[2].strip())
        return _pair(fields[0], fields[1], parse_label(name, labels), index)

    rows, stats = read_tsv(path, parse, spec=spec, on_bad_line=on_bad_line, num_fields=3)
    return _to_dataset(rows), stats
