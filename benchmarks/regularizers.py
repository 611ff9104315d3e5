"""Cost of one training step under each regularizer, relative to a clean step.

    python benchmarks/regularizers.py [--json PATH] [--repeats N] [--smart-effect]

One full training step is `optimizer.zero_grad(); regularizer.step(...); optimizer.step()`
(AdamW) on the same BERT-style encoder and batch. After a warm-up, the step of every
regularizer is timed `--repeats` times, interleaved with the clean step (so a change in
machine load hits all of them alike), and the medians are compared.

Columns
- step_ratio: median over repeats of (step time / the clean step time just before it).
- theoretical: passes through the network / clean passes, from `Regularizer.cost()`:
  forward = 1, activation-gradient backward = 1, weight-gradient backward = 1, so a clean
  step is 3 units. A backward wrt the perturbation only (`torch.autograd.grad`, used by
  the PGD and SMART ascent steps) costs 1 unit, not 2; a no-grad forward 1. Counts:
  fgsm 2 full passes (6/3); pgd-K from a random start (Madry): clean full + K ascent
  fwd+input-bwd + adversarial full = (2K+6)/3; freelb-K: K full; smart-k: clean and
  perturbed forwards, k ascent fwd+input-bwd, one full backward through both graphs =
  (2k+6)/3, plus one teacher forward with the Bregman term (smart+bregman, (2k+7)/3; its
  EMA update of the teacher after each step is not counted); r3f and random: 2 full.
  Optimizer and Python overhead are not counted, so measured ratios sit a little below it.
- peak_mem_ratio: peak of (bytes allocated - bytes freed) by PyTorch's CPU allocator during
  one profiled step, from `torch.profiler` allocation events, relative to the clean step:
  activations, gradients and temporaries; the weights and the AdamW state allocated before
  the step are excluded (on a GPU, `torch.cuda.max_memory_allocated` minus the pre-step
  value is the same quantity).

`smart+bregman` gets a momentum teacher (torch's AveragedModel with an EMA, as the
LightningModule keeps it) updated after each optimizer step.

`--smart-effect`: on the default task (the default config's encoder and intermediate data,
from ROBUST_TRANSFER_CACHE), the relative difference ||g_smart - g_clean|| / ||g_clean|| of
the parameter gradient of the first batches at the shipped `smart` defaults.

Then, for the clean step of a MiniLM-sized encoder (hidden 384, 6 layers, 12 heads,
intermediate 1536, batch 16 x 128), the achieved FLOP/s (6 x non-embedding parameters x
tokens per step; embedding lookups do no matmul) over the machine's dense fp32 matmul FLOP/s.

Threads: one by default. On a shared machine with more runnable processes than cores,
OpenMP's barriers make every multi-threaded op wait for descheduled peers: on our 2-core box
under load a clean step took 7 s with 2 threads and 0.6 s with 1. `--threads N` on a quiet box.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from transformers import BertConfig, BertModel  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from robust_transfer.adversarial import AdversarialBatch, Regularizer, build_regularizer  # noqa: E402

hf_logging.set_verbosity_error()

# The ratio-table model: big enough that a step is matmul-bound, small enough for < 2 min.
RATIO_MODEL = dict(
    vocab_size=2000,
    hidden_size=256,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=1024,
    max_position_embeddings=128,
)
RATIO_BATCH = (16, 64)
MINILM_MODEL = dict(
    vocab_size=30522,
    hidden_size=384,
    num_hidden_layers=6,
    num_attention_heads=12,
    intermediate_size=1536,
    max_position_embeddings=512,
)
MINILM_BATCH = (16, 128)
REGULARIZERS = [
    ("none", {}),
    ("fgsm", {}),
    ("pgd", {"steps": 3}),
    ("freelb", {"steps": 3}),
    ("smart", {"steps": 1}),
    ("smart+bregman", {"steps": 1, "bregman_mu": 1.0}),
    ("r3f", {}),
    ("random", {}),
]


class Classifier(torch.nn.Module):
    def __init__(self, config: BertConfig, num_labels: int = 2):
        super().__init__()
        self.encoder = BertModel(config, add_pooling_layer=False)
        self.head = torch.nn.Linear(config.hidden_size, num_labels)

    def forward(self, inputs: dict, inputs_embeds: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(inputs_embeds=inputs_embeds, **inputs).last_hidden_state
        return self.head(hidden[:, 0])


def make_setup(model_kwargs: dict, batch: tuple[int, int], seed: int = 0):
    torch.manual_seed(seed)
    model = Classifier(BertConfig(**model_kwargs)).train()
    b, t = batch
    ids = torch.randint(5, model_kwargs["vocab_size"], (b, t))
    lengths = torch.randint(t // 2, t + 1, (b,))
    lengths[0] = t  # the longest example fixes the padded length
    mask = (torch.arange(t)[None] < lengths[:, None]).long()
    inputs = {"attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    labels = torch.randint(0, 2, (b,))
    embedding = model.encoder.get_input_embeddings()
    ids = ids.masked_fill(mask == 0, 0)
    teacher = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.99)).eval().requires_grad_(False)
    teacher.update_parameters(model)  # the copy; later updates are the EMA
    adv = AdversarialBatch(
        embed=lambda: embedding(ids),
        forward=lambda e: model(inputs, e),
        mask=mask,
        labels=labels,
        teacher=lambda: teacher.module(inputs, teacher.module.encoder.get_input_embeddings()(ids)),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    optimizer.teacher = (teacher, model)  # updated after each step of a regularizer that wants it
    return model, adv, optimizer


def train_step(reg: Regularizer, adv: AdversarialBatch, optimizer: torch.optim.Optimizer) -> None:
    optimizer.zero_grad(set_to_none=True)
    out = reg.step(adv, lambda loss: loss.backward())
    if not out.skipped:
        optimizer.step()
        if reg.wants_teacher:
            teacher, model = optimizer.teacher
            teacher.update_parameters(model)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_bytes(fn) -> int:
    """Peak net bytes allocated by the CPU allocator while `fn` runs, from profiler events."""
    gc.collect()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        stack.extend(event.children)
        if event.tag == torch._C._profiler._EventType.Allocation:
            events.append((event.start_time_ns, event.extra_fields.alloc_size))
    live = peak = 0
    for _, size in sorted(events):
        live += size
        peak = max(peak, live)
    return peak


def ratio_table(repeats: int) -> dict[str, dict[str, float]]:
    model, adv, optimizer = make_setup(RATIO_MODEL, RATIO_BATCH)
    regs = {name: build_regularizer(name.split("+")[0], params) for name, params in REGULARIZERS}
    clean = regs["none"]
    train_step(clean, adv, optimizer)
    for reg in regs.values():  # warm-up: allocator, AdamW state, one-time dispatch costs
        train_step(reg, adv, optimizer)
    # Each regularizer step is paired with the clean step just before it; the median of the
    # paired ratios cancels slow drifts in machine load better than a ratio of medians.
    times: dict[str, list[float]] = {name: [] for name in regs}
    ratios: dict[str, list[float]] = {name: [] for name in regs}
    clean_times: list[float] = []
    for _ in range(repeats):
        for name, reg in regs.items():
            clean_times.append(timed(lambda: train_step(clean, adv, optimizer)))
            times[name].append(timed(lambda reg=reg: train_step(reg, adv, optimizer)))
            ratios[name].append(times[name][-1] / clean_times[-1])
    clean_s = statistics.median(clean_times)
    peak_bytes(
        lambda: train_step(clean, adv, optimizer)
    )  # the profiler's own first-use allocations
    clean_mem = peak_bytes(lambda: train_step(clean, adv, optimizer))
    results = {}
    for name, reg in regs.items():
        step_s = statistics.median(times[name])
        mem = peak_bytes(lambda reg=reg: train_step(reg, adv, optimizer))
        results[name] = {
            "step_ratio": statistics.median(ratios[name]),
            "theoretical": reg.cost().total / 3,
            "peak_mem_ratio": mem / clean_mem,
            "step_s": step_s,
            "clean_step_s": clean_s,
            "peak_mem_mb": mem / 2**20,
            "clean_peak_mem_mb": clean_mem / 2**20,
        }
    del model
    return results


def smart_effect(batches: int = 8, overrides: list[str] | None = None) -> list[float]:
    """||g_smart - g_clean|| / ||g_clean|| per batch, at the shipped smart defaults, on the
    default task: the default config's encoder, its first stage's training data and batch size,
    a fresh head, the module's own adversarial batch (frozen embeddings as configured)."""
    from robust_transfer.config import compose
    from robust_transfer.data.datamodule import PairDataModule
    from robust_transfer.data.tasks import get_task
    from robust_transfer.models.encoder import load_encoder, load_tokenizer, resolve_model_path
    from robust_transfer.models.module import PairClassifier
    from robust_transfer.pipeline import load_split

    cfg = compose(list(overrides or []))
    path = resolve_model_path(cfg)
    tokenizer, encoder = load_tokenizer(path), load_encoder(path)
    if cfg.model.freeze_embeddings:
        encoder.get_input_embeddings().weight.requires_grad_(False)
    task = get_task(cfg.intermediate.task)
    train = load_split(cfg, "intermediate", "train", [cfg.data.train_language])[cfg.data.train_language]
    data = PairDataModule(tokenizer, train=train, batch_size=cfg.data.batch_size,
                          max_length=cfg.model.max_length, seed=cfg.seed)
    data.setup("fit")
    torch.manual_seed(cfg.seed)
    module = PairClassifier(encoder, task.num_labels, pooling=cfg.model.pooling).train()
    smart = build_regularizer("smart", {})
    clean = build_regularizer("none", {})
    diffs = []
    for i, batch in enumerate(data.train_dataloader()):
        if i == batches:
            break
        grads = []
        for reg in (clean, smart):
            module.zero_grad(set_to_none=True)
            torch.manual_seed(i)
            reg.step(module.adversarial_batch(batch, reg), lambda loss: loss.backward())
            grads.append(torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None]))
        diffs.append(float((grads[1] - grads[0]).norm() / grads[0].norm()))
    return diffs


def matmul_flops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    return 2 * n**3 / statistics.median(timed(lambda: torch.mm(a, b)) for _ in range(repeats))


def minilm_utilisation(repeats: int = 2) -> dict[str, float]:
    model, adv, optimizer = make_setup(MINILM_MODEL, MINILM_BATCH)
    clean = build_regularizer("none", {})
    train_step(clean, adv, optimizer)
    step_s = statistics.median(
        timed(lambda: train_step(clean, adv, optimizer)) for _ in range(repeats)
    )
    embedding = sum(p.numel() for n, p in model.named_parameters() if "embeddings." in n)
    params = sum(p.numel() for p in model.parameters())
    tokens = MINILM_BATCH[0] * MINILM_BATCH[1]
    achieved = 6 * (params - embedding) * tokens / step_s
    peak = matmul_flops()
    return {
        "params": params,
        "non_embedding_params": params - embedding,
        "tokens": tokens,
        "step_s": step_s,
        "achieved_flops": achieved,
        "matmul_flops": peak,
        "utilisation": achieved / peak,
        "utilisation_all_params": 6 * params * tokens / step_s / peak,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--json", type=Path, help="write {name: {step_ratio, theoretical, peak_mem_ratio}}"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed steps per regularizer (median)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (see the docstring)"
    )
    parser.add_argument(
        "--smart-effect", action="store_true", help="only SMART's gradient change on the default task"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.smart_effect:
        diffs = smart_effect()
        print("smart at its shipped defaults, default task: ||g_smart - g_clean|| / ||g_clean|| per batch: "
              + ", ".join(f"{d:.2%}" for d in diffs) + f"; median {statistics.median(diffs):.2%}")
        return

    start = time.perf_counter()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}"
    )
    b, t = RATIO_BATCH
    print(f"ratio model: BERT {RATIO_MODEL}, batch {b} x {t}")
    results = ratio_table(args.repeats)
    print(
        f"clean step {results['none']['clean_step_s'] * 1e3:.0f} ms, peak {results['none']['clean_peak_mem_mb']:.0f} MB"
    )
    print(
        f"{'regularizer':<12}{'step_ratio':>11}{'theoretical':>13}{'off by':>9}{'peak_mem_ratio':>16}"
    )
    for name, r in results.items():
        off = r["step_ratio"] / r["theoretical"] - 1
        print(
            f"{name:<12}{r['step_ratio']:>11.2f}{r['theoretical']:>13.2f}{off:>+9.0%}{r['peak_mem_ratio']:>16.2f}"
        )

    m = minilm_utilisation()
    print(
        f"MiniLM-sized clean step ({m['non_embedding_params'] / 1e6:.1f}M non-embedding of {m['params'] / 1e6:.1f}M "
        f"params, {m['tokens']} tokens): {m['step_s']:.2f} s, {m['achieved_flops'] / 1e9:.1f} GFLOP/s achieved / "
        f"{m['matmul_flops'] / 1e9:.1f} GFLOP/s dense fp32 matmul = {m['utilisation']:.0%} "
        f"({m['utilisation_all_params']:.0%} counting embedding parameters)"
    )
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
