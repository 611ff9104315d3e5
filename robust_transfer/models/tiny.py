"""A tiny XLM-R stand-in, built once and cached, loadable exactly like a hub checkpoint.

``build_tiny_encoder(spec, cache_root)`` trains a BPE tokenizer on generated multilingual text
(the synthetic task's languages), creates a randomly initialised ``XLMRobertaForMaskedLM`` and
pretrains it on pairs of sentences that state the same fact (in two languages, as XLM's
translation-LM, or in one language with two templates). Besides the usual random masking,
names and years ("anchors") are masked at a higher rate so the model must copy them from the
other sentence of the pair: it learns to align roles across sentences and languages, which is
what XLM-R's multilingual pretraining provides for the real task. The result is saved with
``save_pretrained`` into ``cache_root/<fingerprint>/`` so ``AutoTokenizer.from_pretrained`` and
``AutoModel.from_pretrained`` load it.

Cache integrity: ``build_info.json`` lists the SHA-256 of every file the build wrote. A cached
directory is verified before use; a missing, truncated or altered file (a half-copied weights
file, deleted tokenizer files) makes it rebuild with a warning, since the build is deterministic.
A cache written before checksums existed is hashed once and trusted from then on. A build
happens in a hidden ``.<fingerprint>.*`` directory holding the builder's pid; one left behind by
a killed build (SIGKILL runs no cleanup) is removed by the next build once its process is gone.

The default spec's build ships with the package (``models/tiny_default/``, about 1.5 MB): its
``build_info.json`` records the fingerprint and the SHA-256 of every file. ``tiny_encoder_dir``
returns it when the requested spec has that fingerprint and its files match their checksums, so a
first run trains at once; any other spec (or a damaged shipped copy, with a warning saying how to
restore it) is built into the cache as above. ``python -m robust_transfer.models.tiny`` rebuilds
the shipped copy after the default spec or the build procedure changed; a slow test rebuilds it
from scratch and compares it bit for bit.

Bit for bit across machines: the build is deterministic on one machine, but PyTorch, MKL and oneDNN
pick their kernels by CPU (AVX2, AVX-512, ...) and each sums floats in its own order, so on a
2-core AVX-512 EPYC a fresh build differed from the shipped one (built on an AVX2 EPYC) in the
low-order bits (equal to 4 decimals, not bit for bit). Both the shipped build and its check
therefore run with the AVX2 kernels (``SHIPPED_KERNELS``, set before torch loads: a subprocess),
which any x86-64 CPU since 2013 has; so pinned, the AVX-512 machine's build equalled the shipped
one in all 39 tensors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import random
import shutil
import string
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from robust_transfer.checksums import directory_checksums, first_mismatch

log = logging.getLogger(__name__)

TINY_VERSION = 3  # bump when the build procedure changes (invalidates caches)
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # XLM-R order: ids 0..4
WORD_MARK = "\u2581"  # "▁", XLM-R's (SentencePiece's) start-of-word marker


@dataclass
class TinyEncoderSpec:
    """Every knob of the tiny encoder and its one-time pretraining (``model.tiny`` config)."""

    vocab_size: int = 2000  # BPE vocabulary size (upper bound)
    hidden_size: int = 64  # transformer width
    num_hidden_layers: int = 2  # transformer depth
    num_attention_heads: int = 4  # attention heads per layer
    intermediate_size: int = 256  # feed-forward width
    max_position_embeddings: int = 130  # must be >= max sequence length + 2 (XLM-R padding offset)
    initializer_range: float = 0.2  # std of the random init (0.02 never leaves the ln 2 plateau)
    hidden_dropout_prob: float = 0.0  # dropout in the encoder (none works best for tiny models)
    attention_probs_dropout_prob: float = 0.0  # dropout on attention weights
    corpus_size: int = 20000  # sentences of generated multilingual text for the tokenizer
    corpus_num_names: int = 12  # names used in the generated pretraining text
    pretrain_objective: str = "tlm"  # "tlm" (pairs of same-fact sentences), "mlm" (single sentences) or "none"
    pretrain_steps: int = 8000  # optimisation steps of the pretraining
    pretrain_batch_size: int = 32  # sequences per pretraining step
    pretrain_lr: float = 1e-3  # AdamW peak learning rate of the pretraining
    pretrain_warmup: int = 200  # linear warm-up steps of the pretraining
    pretrain_max_length: int = 64  # max tokens per pretraining sequence
    mask_prob: float = 0.15  # BERT-style random masking rate
    anchor_mask_prob: float = 0.3  # extra masking rate of name/year tokens (copy from the other sentence)
    anchor_replace_prob: float = 0.5  # share of chosen name/year tokens replaced by another name/year (else <mask>)
    same_language_rate: float = 0.3  # share of pretraining pairs in one language (else two languages)
    seed: int = 0  # seed of corpus, initialisation and pretraining
    num_threads: int = 2  # torch threads used by the build


def fingerprint(spec: TinyEncoderSpec) -> str:
    payload = json.dumps({"version": TINY_VERSION, **dataclasses.asdict(spec)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _synthetic_spec(spec: TinyEncoderSpec):
    from robust_transfer.data.synthetic import SyntheticPawsSpec

    return SyntheticPawsSpec(num_names=spec.corpus_num_names)


def train_tokenizer(spec: TinyEncoderSpec, texts: list[str]):
    """BPE over whitespace/script/digit pre-tokens: a name is the same token in every language.

    Each pre-token starts with XLM-R's word marker "▁", a character of the alphabet. An
    end-of-word suffix would also mark words, but the trainer creates suffixed tokens in
    hash-map order, so the vocabulary ids and tie-breaking merges differ from one process
    to the next (huggingface/tokenizers#1794); with the marker every build is identical.
    """
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    from robust_transfer.data.synthetic import NAMES

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Whitespace(),
        pre_tokenizers.UnicodeScripts(),
        pre_tokenizers.Digits(individual_digits=False),
        pre_tokenizers.Metaspace(replacement=WORD_MARK, prepend_scheme="always", split=False),
    ])
    tok.decoder = decoders.Metaspace(replacement=WORD_MARK, prepend_scheme="always", split=False)
    # every character (and ASCII letter/digit) in the alphabet, so misspelt text has no <unk>
    chars = sorted(set("".join(texts)) | set(string.ascii_letters + string.digits) - set(string.whitespace))
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size, special_tokens=list(SPECIAL_TOKENS), min_frequency=2,
        initial_alphabet=[*chars, WORD_MARK], show_progress=False)
    # every name at least a few times so each becomes one token even if rare in the corpus;
    # every character alone, so it exists both word-inside and word-initial
    extra = list(NAMES) * 5 + [" ".join(chars)] * 2
    tok.train_from_iterator(texts + extra, trainer=trainer)
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(  # XLM-R layout: <s> A </s></s> B </s>
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)])
    return tok


def wrap_tokenizer(tok, model_max_length: int):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
        cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
        model_max_length=model_max_length)


def _model_config(spec: TinyEncoderSpec, vocab_size: int, tokenizer):
    from transformers import XLMRobertaConfig

    return XLMRobertaConfig(
        vocab_size=vocab_size, hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_hidden_layers, num_attention_heads=spec.num_attention_heads,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_position_embeddings,
        initializer_range=spec.initializer_range, hidden_dropout_prob=spec.hidden_dropout_prob,
        attention_probs_dropout_prob=spec.attention_probs_dropout_prob,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, type_vocab_size=1)


def _pretrain(model, tokenizer, spec: TinyEncoderSpec, log_every: int = 500) -> dict:
    import torch

    from robust_transfer.data.synthetic import NAMES, parallel_pairs, unlabelled_corpus

    synth = _synthetic_spec(spec)
    n_seq = spec.pretrain_steps * spec.pretrain_batch_size
    if spec.pretrain_objective == "tlm":
        pairs = parallel_pairs(synth, spec.seed + 1, n_seq, same_language_rate=spec.same_language_rate)
        enc = tokenizer([p[0] for p in pairs], [p[1] for p in pairs], truncation=True,
                        max_length=spec.pretrain_max_length)
    elif spec.pretrain_objective == "mlm":
        enc = tokenizer(unlabelled_corpus(synth, spec.seed + 1, n_seq), truncation=True,
                        max_length=spec.pretrain_max_length)
    else:
        raise ValueError(f"unknown pretrain_objective {spec.pretrain_objective!r}")
    def single_tokens(words):
        ids = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(w)) for w in words]
        return sorted({i[0] for i in ids if len(i) == 1})

    name_ids = single_tokens(NAMES[: synth.num_names])
    year_ids = single_tokens(str(y) for y in range(synth.year_min, synth.year_min + synth.num_years))
    anchor_ids = set(name_ids) | set(year_ids)
    special = set(tokenizer.all_special_ids)
    n_vocab = len(tokenizer)

    gen = torch.Generator().manual_seed(spec.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.pretrain_lr, weight_decay=0.01)
    from transformers import get_linear_schedule_with_warmup

    sched = get_linear_schedule_with_warmup(opt, spec.pretrain_warmup, spec.pretrain_steps)
    ids_all = enc["input_ids"]
    is_anchor_lut = torch.zeros(n_vocab, dtype=torch.bool)
    is_anchor_lut[list(anchor_ids)] = True
    is_special_lut = torch.zeros(n_vocab, dtype=torch.bool)
    is_special_lut[list(special)] = True
    is_name_lut = torch.zeros(n_vocab, dtype=torch.bool)
    is_name_lut[name_ids] = True
    name_t, year_t = torch.tensor(name_ids or [0]), torch.tensor(year_ids or [0])
    model.train()
    losses = []
    for step in range(spec.pretrain_steps):
        batch = ids_all[step * spec.pretrain_batch_size:(step + 1) * spec.pretrain_batch_size]
        width = max(len(x) for x in batch)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
        for r, x in enumerate(batch):
            ids[r, : len(x)] = torch.tensor(x)
        attn = (ids != tokenizer.pad_token_id).long()
        u = torch.rand(ids.shape, generator=gen)
        prob = torch.full(ids.shape, spec.mask_prob)
        prob[is_anchor_lut[ids]] = spec.mask_prob + spec.anchor_mask_prob
        chosen = (u < prob) & ~is_special_lut[ids]
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        v = torch.rand(ids.shape, generator=gen)
        inp = ids.clone()
        anchor = is_anchor_lut[ids]
        plain = chosen & ~anchor
        inp[plain & (v < 0.8)] = tokenizer.mask_token_id
        rand_tok = torch.randint(len(special), n_vocab, ids.shape, generator=gen)
        swap = plain & (v >= 0.8) & (v < 0.9)
        inp[swap] = rand_tok[swap]
        # anchors: replaced by another anchor of the same kind (the model must notice the
        # wrong name/year from the other sentence and restore it), else masked
        rep = chosen & anchor & (v < spec.anchor_replace_prob)
        rand_name = name_t[torch.randint(len(name_t), ids.shape, generator=gen)]
        rand_year = year_t[torch.randint(len(year_t), ids.shape, generator=gen)]
        inp[rep] = torch.where(is_name_lut[ids], rand_name, rand_year)[rep]
        inp[chosen & anchor & ~rep] = tokenizer.mask_token_id
        out = model(input_ids=inp, attention_mask=attn, labels=labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(out.loss.item())
        if (step + 1) % log_every == 0:
            log.info("tiny encoder pretraining step %d/%d loss %.3f", step + 1,
                     spec.pretrain_steps, sum(losses[-log_every:]) / log_every)
    model.eval()
    return {"final_loss": sum(losses[-100:]) / max(1, len(losses[-100:]))}


CHECKSUMS = "files"  # build_info.json key: {file name: sha256}
OWNER = ".owner-pid"  # inside a partial build directory: the pid of the building process
SHIPPED = Path(__file__).resolve().with_name("tiny_default")  # the default spec's build, shipped
# the kernels of the shipped build: environment of the process that builds it (read when torch loads)
SHIPPED_KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def _checksums(directory: Path) -> dict[str, str]:
    return directory_checksums(directory, skip=("build_info.json", OWNER))


def verify_cache(target: Path) -> str | None:
    """None when the cached build at ``target`` is intact, else what is wrong with it."""
    try:
        info = json.loads((target / "build_info.json").read_text())
    except (OSError, ValueError) as err:
        return f"build_info.json is unreadable ({err})"
    expected = info.get(CHECKSUMS)
    if expected is None:  # written before checksums: trust it once, record what it holds now
        try:
            info[CHECKSUMS] = _checksums(target)
            tmp = target / "build_info.json.tmp"
            tmp.write_text(json.dumps(info, indent=2))
            os.replace(tmp, target / "build_info.json")
            log.info("tiny encoder cache %s: recorded checksums of %d files", target, len(info[CHECKSUMS]))
        except OSError:
            pass  # a read-only cache stays unverified
        return None
    return first_mismatch(target, expected)


def _remove_abandoned_builds(cache_root: Path, name: str) -> None:
    """Delete partial build directories of ``name`` whose building process no longer exists."""
    for partial in cache_root.glob(f".{name}.*"):
        try:
            pid = int((partial / OWNER).read_text())
            os.kill(pid, 0)
            continue  # still building
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            # no pid file: a build older than pid files, or one killed before writing it
            if time.time() - partial.stat().st_mtime < 3600:
                continue
        log.warning("removing %s, left by a tiny-encoder build that was killed", partial)
        shutil.rmtree(partial, ignore_errors=True)


def build_tiny_encoder(spec: TinyEncoderSpec | None = None, cache_root: Path | str = ".cache/tiny") -> Path:
    """Build (once) and return the directory of the tiny encoder described by ``spec``."""
    spec = spec or TinyEncoderSpec()
    cache_root = Path(cache_root)
    target = cache_root / fingerprint(spec)
    if (target / "build_info.json").exists() or target.is_dir():
        problem = verify_cache(target)
        if problem is None:
            log.info("tiny encoder cached at %s", target)
            return target
        log.warning("tiny encoder cache %s is damaged: %s. Building it again.", target, problem)
        damaged = target.with_name(f".{target.name}.damaged-{os.getpid()}")
        try:
            os.replace(target, damaged)
        except OSError:
            pass  # another process moved it already
        shutil.rmtree(damaged, ignore_errors=True)

    import torch
    from transformers import XLMRobertaForMaskedLM, XLMRobertaModel

    from robust_transfer.data.synthetic import unlabelled_corpus

    if spec.max_position_embeddings < spec.pretrain_max_length + 2:
        raise ValueError("max_position_embeddings must be >= pretrain_max_length + 2")
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(spec.num_threads)
    cache_root.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(cache_root, target.name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=cache_root))
    (tmp / OWNER).write_text(str(os.getpid()))
    try:
        t0 = time.perf_counter()
        texts = unlabelled_corpus(_synthetic_spec(spec), spec.seed, spec.corpus_size)
        tok = train_tokenizer(spec, texts)
        tokenizer = wrap_tokenizer(tok, spec.max_position_embeddings - 2)
        t_tok = time.perf_counter() - t0
        log.info("tiny encoder: tokenizer trained (%d tokens) in %.1fs", len(tokenizer), t_tok)

        torch.manual_seed(spec.seed)
        random.seed(spec.seed)
        config = _model_config(spec, len(tokenizer), tokenizer)
        model = XLMRobertaForMaskedLM(config)
        stats = {}
        t1 = time.perf_counter()
        if spec.pretrain_objective != "none" and spec.pretrain_steps > 0:
            stats = _pretrain(model, tokenizer, spec)
        t_pre = time.perf_counter() - t1
        log.info("tiny encoder: pretraining (%s, %d steps) in %.1fs", spec.pretrain_objective,
                 spec.pretrain_steps, t_pre)

        base = XLMRobertaModel(config)  # save the bare encoder (with a pooler) like a hub encoder
        missing, unexpected = base.load_state_dict(model.roberta.state_dict(), strict=False)
        assert not unexpected and all(k.startswith("pooler.") for k in missing), (missing, unexpected)
        base.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / OWNER).unlink()
        info = {"version": TINY_VERSION, "fingerprint": target.name, "spec": dataclasses.asdict(spec),
                "tokenizer_seconds": round(t_tok, 2), "pretrain_seconds": round(t_pre, 2), **stats,
                CHECKSUMS: _checksums(tmp)}
        (tmp / "build_info.json").write_text(json.dumps(info, indent=2))
        try:
            os.replace(tmp, target)
        except OSError:
            if (target / "build_info.json").exists():  # another process won the race
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                raise
        log.info("tiny encoder: saved to %s (%.1fs total)", target, time.perf_counter() - t0)
        return target
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        torch.set_num_threads(prev_threads)


def shipped_encoder(spec: TinyEncoderSpec) -> Path | None:
    """The shipped build if ``spec`` has its fingerprint and its files are intact, else None
    (with a warning naming the damage and the way to restore it when they are not)."""
    info_file = SHIPPED / "build_info.json"
    if not SHIPPED.is_dir():
        return None  # an install without it: build into the cache
    try:
        info = json.loads(info_file.read_text())
        shipped_fingerprint, checksums = info["fingerprint"], info[CHECKSUMS]
    except (OSError, ValueError, KeyError, TypeError) as err:
        problem = f"{info_file.name} is unreadable ({type(err).__name__}: {err})"
    else:
        if shipped_fingerprint != fingerprint(spec):
            return None  # another spec: its build lives in the cache
        problem = first_mismatch(SHIPPED, checksums)
        if problem is None:
            log.info("tiny encoder: the shipped build %s (fingerprint %s)", SHIPPED, shipped_fingerprint)
            return SHIPPED
    log.warning(
        "the tiny encoder shipped in %s is damaged: %s. Restore it with `git checkout -- "
        "robust_transfer/models/tiny_default` (or reinstall the package); until then it is built "
        "into the cache (a few minutes, once).", SHIPPED, problem)
    return None


def tiny_encoder_dir(spec: TinyEncoderSpec | None = None, cache_root: Path | str = ".cache/tiny") -> Path:
    """The directory of the tiny encoder described by ``spec``: the shipped build for the default
    spec, else (or if the shipped copy is damaged) a cached build in ``cache_root``."""
    spec = spec or TinyEncoderSpec()
    return shipped_encoder(spec) or build_tiny_encoder(spec, cache_root)


def ship(built: Path, destination: Path = SHIPPED) -> Path:
    """Replace the shipped build by the build in ``built`` (a ``build_tiny_encoder`` directory)."""
    info = json.loads((built / "build_info.json").read_text())
    problem = first_mismatch(built, info[CHECKSUMS])
    if problem:
        raise ValueError(f"{built} is damaged: {problem}")
    staging = destination.with_name(f".{destination.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for name in [*info[CHECKSUMS], "build_info.json"]:
        shutil.copyfile(built / name, staging / name)
    shutil.rmtree(destination, ignore_errors=True)
    os.replace(staging, destination)
    return destination


if __name__ == "__main__":  # rebuild the shipped default encoder (after the spec or the build changed)
    import subprocess
    import sys

    if any(os.environ.get(k) != v for k, v in SHIPPED_KERNELS.items()):  # again, with the shipped kernels
        sys.exit(subprocess.call([sys.executable, "-m", "robust_transfer.models.tiny"], env={**os.environ, **SHIPPED_KERNELS}))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory() as root:
        built = build_tiny_encoder(TinyEncoderSpec(), root)
        print(ship(built))
