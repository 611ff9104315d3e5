"""Each regularizer against a port of its public reference implementation.

Every test ports the reference's maths (never its code) into the test, feeds both sides the
same tiny real encoder (a BertConfig with hidden and attention dropout 0.1, so dropout masks
must line up too), the same batch and the same random draws (a seeded generator for the
perturbation, the same global seed for dropout), and compares the loss and every parameter
gradient within 1e-5 relative (per parameter tensor: ||got - ref|| <= 1e-5 ||ref||).
"""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertModel

from robust_transfer.adversarial import AdversarialBatch, build_regularizer

from .conftest import first_token_logits

B, T, H, C = 6, 12, 32, 3
REL = 1e-5
SEED = 1234  # the global seed both sides start from: the dropout masks


class Classifier(torch.nn.Module):
    """A tiny BERT with dropout 0.1 and a linear head on the first token."""

    def __init__(self, dropout: float = 0.1, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        config = BertConfig(
            vocab_size=100, hidden_size=H, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=40, type_vocab_size=2, pad_token_id=0,
            hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
            attn_implementation="eager",  # attention dropout through F.dropout, where the dp_masks port sees it
        )
        self.encoder = BertModel(config, add_pooling_layer=False)
        self.head = torch.nn.Linear(H, C)
        self.train()

    def word_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        return self.encoder.get_input_embeddings()(ids)

    def logits(self, inputs: dict, inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        return first_token_logits(self, inputs, inputs_embeds)


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test of this module runs on one torch thread (conftest.one_torch_thread)."""


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(5, 100, (B, T), generator=g)
    lengths = torch.tensor([T, 9, 7, 5, 11, 3])
    mask = (torch.arange(T)[None] < lengths[:, None]).long()
    segment = (torch.arange(T)[None] >= (lengths[:, None] // 2)).long() * mask
    inputs = {"input_ids": ids.masked_fill(mask == 0, 0), "attention_mask": mask, "token_type_ids": segment}
    labels = torch.randint(0, C, (B,), generator=g)
    return inputs, labels


def project_side(model: Classifier, name: str, params: dict, inputs: dict, labels: torch.Tensor, seed: int = 0):
    """The project's regularizer: one step, from the global seed SEED; its loss and gradients."""
    model.zero_grad(set_to_none=True)
    batch = AdversarialBatch(
        embed=lambda: model.word_embeddings(inputs["input_ids"]),
        forward=lambda e: model.logits(inputs, inputs_embeds=e),
        mask=inputs["attention_mask"],
        labels=labels,
    )
    reg = build_regularizer(name, params, generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(SEED)
    out = reg.step(batch, lambda loss: loss.backward())
    assert not out.skipped
    return out, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def reference_grads(model: Classifier) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_matches(out, got: dict, ref_loss: torch.Tensor, ref: dict) -> None:
    """Loss and every parameter gradient within REL relative. A gradient that is zero in exact
    arithmetic (the attention key bias: softmax ignores it) is float noise of ~1e-12 on both
    sides, so each tensor's scale is floored at 1e-6 of the whole gradient's norm."""
    assert out.loss.item() == pytest.approx(ref_loss.item(), rel=REL)
    assert set(got) == set(ref)
    floor = 1e-6 * sum(g.norm() ** 2 for g in ref.values()) ** 0.5
    for name, expected in ref.items():
        diff = (got[name] - expected).norm()
        scale = max(expected.norm(), floor)
        assert diff <= REL * scale, f"{name}: relative difference {diff / scale:.2e}"


def relative_difference(a: dict, b: dict) -> float:
    num = sum((a[n] - b[n]).norm() ** 2 for n in b) ** 0.5
    return float(num / sum(b[n].norm() ** 2 for n in b) ** 0.5)


# ------------------------------------------------------------------ FreeLB


class DropoutMasks:
    """FreeLB's `dp_masks`, ported: every dropout of the forward pass (nn.Dropout modules and
    the functional attention dropout alike go through torch.nn.functional.dropout) records its
    mask on the first pass (where its output is nonzero); later passes apply the recorded
    masks, call by call, instead of drawing new ones."""

    def __init__(self):
        self.masks: list[torch.Tensor] = []
        self.calls = 0
        self.replay = False
        self.original = F.dropout

    def start_pass(self, replay: bool) -> None:
        self.replay, self.calls = replay, 0

    def dropout(self, input, p=0.5, training=True, inplace=False):
        if not training or p == 0:
            return input
        if not self.replay:
            out = self.original(input, p, training, inplace)
            self.masks.append(out != 0)
            return out
        mask = self.masks[self.calls]
        self.calls += 1
        return input * mask / (1 - p)

    def __enter__(self):
        torch.nn.functional.dropout = self.dropout
        return self

    def __exit__(self, *exc):
        torch.nn.functional.dropout = self.original


def freelb_reference(model, inputs, labels, gen, *, steps, adv_lr, init_mag, max_norm, norm, shared):
    """zhuchen03/FreeLB, huggingface-transformers/examples/run_glue_freelb.py (the adversarial
    training loop of `train`): init delta in the ball of init_mag (l2: U(-1,1) masked, times
    init_mag / sqrt(len * H) per example), K passes each back-propagating loss / K, delta
    ascent by adv_lr * g / max(||g||, 1e-8), projection by reweighting (l2) or clamp (linf),
    word embeddings looked up afresh after each step, dropout masks `dp_masks` from the first
    pass reused by the others."""
    model.zero_grad(set_to_none=True)
    torch.manual_seed(SEED)
    ids, mask = inputs["input_ids"], inputs["attention_mask"].float()
    embeds_init = model.word_embeddings(ids)
    if norm == "l2":
        delta = (torch.rand(embeds_init.shape, generator=gen) * 2 - 1) * mask.unsqueeze(2)
        mag = init_mag / torch.sqrt(mask.sum(1) * H)
        delta = (delta * mag.view(-1, 1, 1)).detach()
    else:
        delta = (torch.rand(embeds_init.shape, generator=gen) * 2 - 1) * init_mag * mask.unsqueeze(2)
    masks = DropoutMasks() if shared else contextlib.nullcontext()
    total = torch.zeros(())
    with masks:
        for astep in range(steps):
            delta.requires_grad_()
            if shared:
                masks.start_pass(replay=astep > 0)
            loss = F.cross_entropy(model.logits(inputs, inputs_embeds=delta + embeds_init), labels) / steps
            if shared:
                assert masks.masks and masks.calls in (0, len(masks.masks))
            total = total + loss.detach()
            loss.backward()
            if astep == steps - 1:
                break
            g = delta.grad.clone().detach()
            p = 2 if norm == "l2" else float("inf")
            denorm = torch.clamp(torch.norm(g.view(B, -1), dim=1, p=p).view(-1, 1, 1), min=1e-8)
            delta = (delta + adv_lr * g / denorm).detach()
            if max_norm > 0:
                if norm == "l2":
                    dn = torch.norm(delta.view(B, -1), dim=1)
                    exceed = (dn > max_norm).float()
                    delta = (delta * (max_norm / dn * exceed + (1 - exceed)).view(-1, 1, 1)).detach()
                else:
                    delta = delta.clamp(-max_norm, max_norm).detach()
            embeds_init = model.word_embeddings(ids)
    return total, reference_grads(model)


FREELB = [
    {"steps": 3, "adv_lr": 0.1, "init_mag": 0.1, "max_norm": 0.0, "norm": "l2"},  # freelb.yaml
    {"steps": 3, "adv_lr": 0.3, "init_mag": 0.5, "max_norm": 0.4, "norm": "l2"},
    {"steps": 2, "adv_lr": 0.03, "init_mag": 0.02, "max_norm": 0.03, "norm": "linf"},
]


@pytest.mark.parametrize("params", FREELB)
def test_freelb_matches_reference_with_shared_dropout_masks(data, params):
    inputs, labels = data
    model = Classifier(dropout=0.1)
    ref_loss, ref = freelb_reference(model, inputs, labels, torch.Generator().manual_seed(3), shared=True, **params)
    out, got = project_side(model, "freelb", params, inputs, labels, seed=3)
    assert_matches(out, got, ref_loss, ref)
    # the masks matter: fresh masks (the option) give the reference with fresh masks, not this
    fresh_loss, fresh = freelb_reference(model, inputs, labels, torch.Generator().manual_seed(3), shared=False, **params)
    out_f, got_f = project_side(model, "freelb", {**params, "dropout_masks": "fresh"}, inputs, labels, seed=3)
    assert_matches(out_f, got_f, fresh_loss, fresh)
    assert relative_difference(got_f, got) > 1e-3


# ------------------------------------------------------------------ SMART


def mtdnn_stable_kl(logit, target, epsilon=1e-6):
    """namisan/mt-dnn mt_dnn/loss.py `stable_kl(..., reduce=False)`, ported."""
    p = F.log_softmax(logit.float(), 1).exp()
    y = F.log_softmax(target.float(), 1).exp()
    rp = -(1.0 / (p + epsilon) - 1 + epsilon).detach().log()
    ry = -(1.0 / (y + epsilon) - 1 + epsilon).detach().log()
    return (p * (rp - ry) * 2).sum()


def mtdnn_sym_kl(input, target):
    """namisan/mt-dnn mt_dnn/loss.py `SymKlCriterion` (batchmean, alpha 1), ported."""
    return F.kl_div(F.log_softmax(input.float(), -1), F.softmax(target.detach().float(), -1), reduction="batchmean") + \
        F.kl_div(F.log_softmax(target.float(), -1), F.softmax(input.detach().float(), -1), reduction="batchmean")


def smart_reference(model, inputs, labels, gen, *, epsilon, step_size, noise_var, steps, norm, sentence, adv_alpha=1.0):
    """namisan/mt-dnn mt_dnn/perturbation.py `SmartPerturbation.forward` with mt_dnn/model.py's
    use of it (loss = task loss + adv_alpha * adv_loss): the logits of the main forward, noise
    N(0, 1) * noise_var, K steps of noise <- _norm_grad(noise + step_size * d stable_kl / d noise)
    (v / (max-abs or L2 over H, or over (T, H) at sentence level, + epsilon)), then
    SymKlCriterion(logits, adv_logits). Ported on the word embeddings (mt-dnn perturbs the
    embedding layer's output). mt-dnn does not mask the noise on padding: at token level
    that cannot change the logits (the unmasked port shows it); at sentence level padding
    noise enters the norm, so there the port masks it as the project does (`mask_noise`)."""
    mask_noise = sentence
    model.zero_grad(set_to_none=True)
    torch.manual_seed(SEED)
    logits = model.logits(inputs)  # mt-dnn's main forward, from input_ids
    loss = F.cross_entropy(logits, labels)
    embed = model.word_embeddings(inputs["input_ids"])
    noise = torch.randn(embed.shape, generator=gen) * noise_var
    if mask_noise:
        noise = noise * inputs["attention_mask"].unsqueeze(-1)
    noise = noise.requires_grad_()
    dims = (-2, -1) if sentence else (-1,)
    for _ in range(steps):
        adv_logits = model.logits(inputs, inputs_embeds=embed + noise)
        adv_loss = mtdnn_stable_kl(adv_logits, logits.detach())
        (g,) = torch.autograd.grad(adv_loss, noise)
        v = noise + g * step_size
        if norm == "l2":
            noise = v / (torch.norm(v, dim=dims, keepdim=True) + epsilon)
        else:
            noise = v / (v.abs().amax(dims, keepdim=True) + epsilon)
        noise = noise.detach().requires_grad_()
    adv_logits = model.logits(inputs, inputs_embeds=embed + noise)
    total = loss + adv_alpha * mtdnn_sym_kl(logits, adv_logits)
    total.backward()
    return total.detach(), reference_grads(model)


SMART = [
    ({}, {"epsilon": 1e-6, "step_size": 1e-3, "noise_var": 1e-5, "steps": 1, "norm": "linf", "sentence": False}),
    (
        {"steps": 2, "norm": "l2", "norm_level": "sentence", "step_size": 1.0, "noise_var": 1e-3, "adv_weight": 2.0},
        {"epsilon": 1e-6, "step_size": 1.0, "noise_var": 1e-3, "steps": 2, "norm": "l2", "sentence": True, "adv_alpha": 2.0},
    ),
]


@pytest.mark.parametrize(("params", "ref_params"), SMART)
def test_smart_default_matches_mtdnn(data, params, ref_params):
    inputs, labels = data
    model = Classifier(dropout=0.1)
    ref_loss, ref = smart_reference(model, inputs, labels, torch.Generator().manual_seed(5), **ref_params)
    out, got = project_side(model, "smart", params, inputs, labels, seed=5)
    assert_matches(out, got, ref_loss, ref)


def test_smart_paper_reading_is_an_option_that_barely_moves_gradients(data):
    """perturbation_scale=radius at the paper's epsilon 1e-5: the regularizer is ~float noise."""
    inputs, labels = data
    model = Classifier(dropout=0.0)
    _, clean = project_side(model, "none", {}, inputs, labels)
    _, paper = project_side(model, "smart", {"perturbation_scale": "radius", "inner_loss": "symmetric_kl", "epsilon": 1e-5}, inputs, labels)
    _, default = project_side(model, "smart", {}, inputs, labels)
    assert relative_difference(paper, clean) < 1e-3
    assert relative_difference(default, clean) > 1e-2


def test_smart_bregman_term_adds_mu_times_symmetric_kl_to_the_teacher(data):
    inputs, labels = data
    model = Classifier(dropout=0.0)
    teacher = Classifier(dropout=0.0, seed=1)
    with torch.no_grad():
        teacher_logits = teacher.logits(inputs)
    batch = AdversarialBatch(
        embed=lambda: model.word_embeddings(inputs["input_ids"]),
        forward=lambda e: model.logits(inputs, inputs_embeds=e),
        mask=inputs["attention_mask"], labels=labels, teacher=lambda: teacher_logits,
    )
    reg = build_regularizer("smart", {"bregman_mu": 2.0}, generator=torch.Generator().manual_seed(0))
    assert reg.wants_teacher and reg.teacher_decay == 0.99
    assert reg.cost().forward == build_regularizer("smart", {}).cost().forward + 1
    model.zero_grad(set_to_none=True)
    out = reg.step(batch, lambda loss: loss.backward())
    with torch.no_grad():
        s = model.logits(inputs)
        kl = lambda p, q: (F.softmax(p, -1) * (F.log_softmax(p, -1) - F.log_softmax(q, -1))).sum(-1).mean()  # noqa: E731
        bregman = kl(s, teacher_logits) + kl(teacher_logits, s)
    assert out.loss.item() == pytest.approx((out.clean_loss + out.adv_loss + 2.0 * bregman).item(), rel=1e-5)
    no_teacher = AdversarialBatch(batch.embed, batch.forward, batch.mask, batch.labels)
    with pytest.raises(RuntimeError, match="needs batch.teacher"):
        reg.step(no_teacher, lambda loss: loss.backward())


# ------------------------------------------------------------------ R3F


def r3f_reference(model, inputs, labels, gen, *, eps, noise_type, r3f_lambda):
    """facebookresearch/fairseq examples/rxf/rxf_src/sentence_prediction_r3f.py
    (SentencePredictionR3F.forward, classification): token embeddings, the clean logits, noise
    from Uniform(-eps, eps) or Normal(0, eps) added to a detached copy of the embeddings,
    symm_kl = (KL_sum(clean || noised) + KL_sum(noised || clean)) / B, neither side detached,
    loss = NLL_sum + lambda * symm_kl * B, divided by sample_size B by the trainer."""
    model.zero_grad(set_to_none=True)
    torch.manual_seed(SEED)
    token_embeddings = model.word_embeddings(inputs["input_ids"])
    input_logits = model.logits(inputs, inputs_embeds=token_embeddings)
    if noise_type == "uniform":
        noise = -eps + torch.rand(token_embeddings.shape, generator=gen) * (2 * eps)
    else:
        noise = torch.randn(token_embeddings.shape, generator=gen) * eps
    noised_logits = model.logits(inputs, inputs_embeds=token_embeddings.detach().clone() + noise)
    symm_kl = (
        F.kl_div(F.log_softmax(noised_logits.float(), -1), F.softmax(input_logits.float(), -1), reduction="sum")
        + F.kl_div(F.log_softmax(input_logits.float(), -1), F.softmax(noised_logits.float(), -1), reduction="sum")
    ) / B
    loss = F.nll_loss(F.log_softmax(input_logits.float(), -1), labels, reduction="sum") + r3f_lambda * symm_kl * B
    (loss / B).backward()
    return (loss / B).detach(), reference_grads(model)


@pytest.mark.parametrize(
    ("params", "ref_params"),
    [
        ({}, {"eps": 1e-5, "noise_type": "uniform", "r3f_lambda": 1.0}),
        ({"epsilon": 0.1, "noise": "normal", "adv_weight": 0.5}, {"eps": 0.1, "noise_type": "normal", "r3f_lambda": 0.5}),
    ],
)
def test_r3f_matches_fairseq(data, params, ref_params):
    inputs, labels = data
    model = Classifier(dropout=0.1)
    ref_loss, ref = r3f_reference(model, inputs, labels, torch.Generator().manual_seed(9), **ref_params)
    out, got = project_side(model, "r3f", params, inputs, labels, seed=9)
    assert_matches(out, got, ref_loss, ref)


# ------------------------------------------------------------------ PGD (Madry)


def pgd_reference(model, inputs, labels, delta0, *, epsilon, alpha, steps):
    """Madry et al. 2018 (PGD adversarial training; e.g. MadryLab/robustness attack_steps.L2Step):
    from the start delta0, K steps delta <- Proj_eps(delta + alpha * g / ||g||_2), g the gradient of
    the loss at the current point x + delta (the start included), per example; the model is
    trained on (L(x) + L(x + delta_K)) / 2 (the project's default mix, clean_weight = adv_weight)."""
    model.zero_grad(set_to_none=True)
    torch.manual_seed(SEED)
    clean = F.cross_entropy(model.logits(inputs), labels)
    (clean / 2).backward()
    embeds = model.word_embeddings(inputs["input_ids"]).detach()
    mask = inputs["attention_mask"].unsqueeze(-1).float()
    delta = delta0.clone()
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = F.cross_entropy(model.logits(inputs, inputs_embeds=embeds + delta), labels)
        (g,) = torch.autograd.grad(loss, delta)
        g = g * mask
        delta = delta.detach() + alpha * g / g.flatten(1).norm(dim=1).view(-1, 1, 1)
        n = delta.flatten(1).norm(dim=1).view(-1, 1, 1)
        delta = torch.where(n > epsilon, delta * epsilon / n, delta) * mask
    adv = F.cross_entropy(model.logits(inputs, inputs_embeds=model.word_embeddings(inputs["input_ids"]) + delta), labels)
    (adv / 2).backward()
    return (clean + adv).detach() / 2, reference_grads(model)


# From a zero start the first gradient is the clean pass's: without dropout, a separate pass
# at x + 0 (the port) and the clean pass (reused by the project) are the same computation.
@pytest.mark.parametrize(("random_init", "dropout"), [(True, 0.1), (False, 0.0)])
def test_pgd_matches_madry_from_the_same_start(data, random_init, dropout):
    inputs, labels = data
    model = Classifier(dropout=dropout)
    params = {"epsilon": 1.0, "alpha": 0.3, "steps": 3, "random_init": random_init}
    # the start the project draws: record the first perturbed forward's input
    seen = []
    batch = AdversarialBatch(
        embed=lambda: model.word_embeddings(inputs["input_ids"]),
        forward=lambda e: (seen.append(e.detach().clone()), model.logits(inputs, inputs_embeds=e))[1],
        mask=inputs["attention_mask"], labels=labels,
    )
    torch.manual_seed(SEED)
    build_regularizer("pgd", params, generator=torch.Generator().manual_seed(4)).step(batch, lambda loss: loss.backward())
    with torch.no_grad():
        delta0 = seen[1] - model.word_embeddings(inputs["input_ids"]) if random_init else torch.zeros(B, T, H)
    assert delta0.abs().sum() > 0 or not random_init

    ref_loss, ref = pgd_reference(model, inputs, labels, delta0, epsilon=1.0, alpha=0.3, steps=3)
    out, got = project_side(model, "pgd", params, inputs, labels, seed=4)
    assert_matches(out, got, ref_loss, ref)
    if random_init:  # the old first step along the clean gradient is a different (the option's) algorithm
        _, old = project_side(model, "pgd", {**params, "first_step": "clean"}, inputs, labels, seed=4)
        assert relative_difference(old, ref) > 1e-4


# ------------------------------------------------------------------ FGSM / FGM (Miyato)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_fgm_matches_miyato_per_example_form(data, norm):
    """Miyato et al. 2017 (FGM, adversarial training for text; e.g. tensorflow/models
    research/adversarial_text adversarial_losses.py `_scale_l2`): r = epsilon * g / ||g||_2
    with the norm per example over its (T, H) embedding entries, g the gradient of the clean
    loss wrt the embeddings, no gradient through r; linf is Goodfellow's sign(g). Trained on
    (L(x) + L(x + r)) / 2."""
    inputs, labels = data
    model = Classifier(dropout=0.1)
    eps = 1.0 if norm == "l2" else 0.05
    model.zero_grad(set_to_none=True)
    torch.manual_seed(SEED)
    embeds = model.word_embeddings(inputs["input_ids"])
    clean = F.cross_entropy(model.logits(inputs, inputs_embeds=embeds), labels)
    (g,) = torch.autograd.grad(clean, embeds, retain_graph=True)
    (clean / 2).backward()
    mask = inputs["attention_mask"].unsqueeze(-1).float()
    g = g * mask
    r = eps * (g / g.flatten(1).norm(dim=1).view(-1, 1, 1) if norm == "l2" else g.sign())
    adv = F.cross_entropy(model.logits(inputs, inputs_embeds=model.word_embeddings(inputs["input_ids"]) + r.detach()), labels)
    (adv / 2).backward()
    ref = reference_grads(model)
    out, got = project_side(model, "fgsm", {"epsilon": eps, "norm": norm}, inputs, labels)
    assert_matches(out, got, (clean + adv).detach() / 2, ref)
