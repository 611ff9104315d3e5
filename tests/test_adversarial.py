"""Regularizers and the eval-time attack on tiny real encoders (XLM-R and BERT), no mocks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

from robust_transfer import registry
from robust_transfer.adversarial import (
    AdversarialBatch,
    build_regularizer,
    embedding_pgd_attack,
)

from .conftest import first_token_logits

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "adversary"
B, T, H, C = 6, 12, 32, 3
PAD = 1  # XLM-R's padding id; BERT uses 0


class Classifier(torch.nn.Module):
    """A tiny encoder with a linear head on the first token."""

    def __init__(self, kind: str, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        common = dict(
            vocab_size=100,
            hidden_size=H,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=40,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
        if kind == "xlmr":
            self.encoder = XLMRobertaModel(
                XLMRobertaConfig(pad_token_id=PAD, **common), add_pooling_layer=False
            )
        else:
            self.encoder = BertModel(
                BertConfig(pad_token_id=0, type_vocab_size=2, **common), add_pooling_layer=False
            )
        self.kind = kind
        self.head = torch.nn.Linear(H, C)

    def logits(self, inputs: dict, inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        return first_token_logits(self, inputs, inputs_embeds)


def make_inputs(kind: str, seed: int = 0) -> tuple[dict, torch.Tensor]:
    """Random ids, right-padded to different lengths (one example unpadded), and labels."""
    g = torch.Generator().manual_seed(seed)
    pad = PAD if kind == "xlmr" else 0
    ids = torch.randint(5, 100, (B, T), generator=g)
    lengths = torch.tensor([T, 9, 7, 5, 11, 3])
    mask = (torch.arange(T)[None] < lengths[:, None]).long()
    ids = ids.masked_fill(mask == 0, pad)
    inputs = {"input_ids": ids, "attention_mask": mask}
    if kind == "bert":
        segment = (torch.arange(T)[None] >= (lengths[:, None] // 2)).long() * mask
        inputs["token_type_ids"] = segment
    else:
        # With inputs_embeds XLM-R cannot see the padding, so bind the positions it would
        # derive from input_ids (identical for right padding, but exact in every case).
        positions = torch.cumsum(mask, dim=1) * mask + pad
        inputs["position_ids"] = positions
    labels = torch.randint(0, C, (B,), generator=g)
    return inputs, labels


def make_batch(
    model: Classifier,
    inputs: dict,
    labels: torch.Tensor,
    record: list | None = None,
    embed_hook=None,
):
    embedding = model.encoder.get_input_embeddings()

    def embed():
        e = embedding(inputs["input_ids"])
        return e if embed_hook is None else embed_hook(e)

    def forward(embeds):
        if record is not None:
            record.append(embeds.detach().clone())
        return model.logits(inputs, inputs_embeds=embeds)

    return AdversarialBatch(
        embed=embed, forward=forward, mask=inputs["attention_mask"], labels=labels
    )


def backward(loss: torch.Tensor) -> None:
    loss.backward()


def grads(model: torch.nn.Module) -> dict[str, torch.Tensor | None]:
    return {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}


def run(model, name, params, inputs, labels, seed=0, record=None, embed_hook=None):
    model.zero_grad(set_to_none=True)
    reg = build_regularizer(name, params, generator=torch.Generator().manual_seed(seed))
    out = reg.step(make_batch(model, inputs, labels, record, embed_hook), backward)
    return out, grads(model)


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test of this module runs on one torch thread (conftest.one_torch_thread)."""


@pytest.fixture(scope="module", params=["xlmr", "bert"])
def setup(request):
    model = Classifier(request.param)
    inputs, labels = make_inputs(request.param)
    return model, inputs, labels


# ------------------------------------------------------------------ the batch itself


def test_inputs_embeds_path_matches_input_ids(setup):
    model, inputs, labels = setup
    batch = make_batch(model, inputs, labels)
    with torch.no_grad():
        assert torch.equal(batch.forward(batch.embed()), model.logits(inputs))


# ------------------------------------------------------------------ perturbations: ball and mask

BALLS = [
    ("fgsm", {"epsilon": 0.5, "norm": "l2"}, 0.5, "l2"),
    ("fgsm", {"epsilon": 0.05, "norm": "linf"}, 0.05, "linf"),
    ("pgd", {"epsilon": 0.5, "alpha": 0.3, "steps": 3, "norm": "l2"}, 0.5, "l2"),
    ("pgd", {"epsilon": 0.05, "alpha": 0.02, "steps": 3, "norm": "linf"}, 0.05, "linf"),
    (
        "freelb",
        {"adv_lr": 0.3, "init_mag": 0.5, "max_norm": 0.4, "steps": 3, "norm": "l2"},
        0.4,
        "l2",
    ),
    (
        "freelb",
        {"adv_lr": 0.03, "init_mag": 0.02, "max_norm": 0.03, "steps": 3, "norm": "linf"},
        0.03,
        "linf",
    ),
    (
        "smart",
        {"epsilon": 1e-3, "step_size": 1e-2, "noise_var": 1e-3, "steps": 2, "perturbation_scale": "radius"},
        1e-3,
        "linf",
    ),
    (
        "smart",
        {"epsilon": 0.1, "step_size": 1.0, "norm": "l2", "norm_level": "sentence", "perturbation_scale": "radius"},
        0.1,
        "l2",
    ),
    ("smart", {}, 1.0, "linf"),  # the default (mt-dnn): unit max-abs per token
    ("r3f", {"epsilon": 0.01}, 0.01, "linf"),
    ("random", {"sigma": 0.01, "noise": "uniform"}, 0.01, "linf"),
]


def check_ball(delta: torch.Tensor, mask: torch.Tensor, epsilon: float, norm: str) -> None:
    pad = mask == 0
    assert torch.equal(delta[pad], torch.zeros_like(delta[pad])), "padding was perturbed"
    if norm == "l2":
        assert (delta.flatten(1).norm(dim=1) <= epsilon * (1 + 1e-5)).all()
    else:
        assert delta.abs().max() <= epsilon * (1 + 1e-6)
    assert delta.abs().sum() > 0


@pytest.mark.parametrize(("name", "params", "epsilon", "norm"), BALLS)
def test_perturbations_respect_ball_and_padding(setup, name, params, epsilon, norm):
    model, inputs, labels = setup
    record: list[torch.Tensor] = []
    out, _ = run(model, name, params, inputs, labels, record=record)
    assert not out.skipped
    with torch.no_grad():
        clean = model.encoder.get_input_embeddings()(inputs["input_ids"])
    perturbed = [x for x in record if not torch.equal(x, clean)]
    assert perturbed, "no forward pass saw a perturbation"
    for x in perturbed:  # every pass, pads exactly equal to the clean embeddings
        check_ball(x - clean, inputs["attention_mask"], epsilon, norm)
    final = record[-1] - clean
    assert out.delta_norm == pytest.approx(final.flatten(1).norm(dim=1).mean().item(), rel=1e-4)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_attack_respects_ball_padding_and_accumulates_no_grad(setup, norm):
    model, inputs, labels = setup
    model.zero_grad(set_to_none=True)
    batch = make_batch(model, inputs, labels)
    eps = 0.5 if norm == "l2" else 0.05
    with torch.no_grad():  # as in an eval step
        delta = embedding_pgd_attack(batch, eps, eps / 2, 4, norm, seed=3)
        clean = F.cross_entropy(batch.forward(batch.embed()), labels)
        attacked = F.cross_entropy(batch.forward(batch.embed() + delta), labels)
    check_ball(delta, inputs["attention_mask"], eps, norm)
    assert not delta.requires_grad
    assert all(p.grad is None for p in model.parameters())
    assert attacked > clean
    again = embedding_pgd_attack(
        batch, eps, eps / 2, 4, norm, generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(delta, again)
    assert torch.equal(embedding_pgd_attack(batch, 0.0, 0.1, 3, norm), torch.zeros_like(delta))
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        embedding_pgd_attack(batch, eps, eps / 2, 2, norm)


# ------------------------------------------------------------------ the attacks attack


def test_adversarial_loss_exceeds_clean_and_pgd_beats_fgsm():
    eps = 0.3
    gaps, fgsm_adv, pgd_adv = [], [], []
    for kind in ("xlmr", "bert"):
        model = Classifier(kind, seed=1)
        for seed in range(4):
            inputs, labels = make_inputs(kind, seed=seed)
            f, _ = run(model, "fgsm", {"epsilon": eps}, inputs, labels)
            p, _ = run(
                model,
                "pgd",
                {"epsilon": eps, "alpha": eps / 2, "steps": 5},
                inputs,
                labels,
                seed=seed,
            )
            fl, _ = run(model, "freelb", {"adv_lr": eps / 2, "init_mag": 0.0}, inputs, labels)
            gaps += [
                f.adv_loss - f.clean_loss,
                p.adv_loss - p.clean_loss,
                fl.adv_loss - fl.clean_loss,
            ]
            fgsm_adv.append(f.adv_loss)
            pgd_adv.append(p.adv_loss)
    assert torch.stack(gaps).mean() > 0
    assert torch.stack(pgd_adv).mean() >= torch.stack(fgsm_adv).mean()


@pytest.mark.parametrize("name", ["fgsm", "pgd", "freelb", "smart", "r3f", "random"])
def test_total_loss_composition(setup, name):
    model, inputs, labels = setup
    params = {"smart": {"epsilon": 1e-2, "step_size": 1e-1}, "r3f": {"epsilon": 1e-2}}.get(name, {})
    out, g = run(model, name, {**params, "clean_weight": 1.0, "adv_weight": 3.0}, inputs, labels)
    assert not out.skipped and torch.isfinite(out.loss)
    if name in ("smart", "r3f"):  # clean + weight * symKL
        assert out.adv_loss >= 0
        assert out.loss == pytest.approx((out.clean_loss + 3.0 * out.adv_loss).item(), rel=1e-5)
    elif name != "freelb":  # normalised mix of clean and adversarial task losses
        assert out.loss == pytest.approx(
            ((out.clean_loss + 3.0 * out.adv_loss) / 4).item(), rel=1e-5
        )
    assert all(v is not None and torch.isfinite(v).all() for v in g.values())


# ------------------------------------------------------------------ FreeLB by hand


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_freelb_gradient_is_mean_of_per_step_gradients(setup, norm):
    model, inputs, labels = setup
    K, lr, mag, max_norm = 3, 0.2, 0.3, 0.25
    params = {"steps": K, "adv_lr": lr, "init_mag": mag, "max_norm": max_norm, "norm": norm}
    out, got = run(model, "freelb", params, inputs, labels, seed=11)

    # The reference algorithm, written out with explicit per-step parameter gradients.
    names, weights = zip(*[(n, p) for n, p in model.named_parameters()], strict=True)
    gen = torch.Generator().manual_seed(11)
    embedding = model.encoder.get_input_embeddings()
    mask = inputs["attention_mask"].unsqueeze(-1).float()
    lengths = inputs["attention_mask"].sum(1).float()
    shape = (B, T, H)
    if norm == "l2":
        delta = (
            (torch.rand(shape, generator=gen) * 2 - 1)
            * mask
            * (mag / torch.sqrt(lengths * H)).view(-1, 1, 1)
        )
    else:
        delta = (torch.rand(shape, generator=gen) * 2 - 1) * mag * mask
    per_step, losses = [], []
    for _ in range(K):
        delta.requires_grad_(True)
        loss = F.cross_entropy(
            model.logits(inputs, inputs_embeds=embedding(inputs["input_ids"]) + delta), labels
        )
        *g_params, g_delta = torch.autograd.grad(loss, [*weights, delta])
        per_step.append(g_params)
        losses.append(loss.detach())
        flat = g_delta.flatten(1)
        denom = (flat.norm(dim=1) if norm == "l2" else flat.abs().amax(1)).view(-1, 1, 1)
        delta = delta.detach() + lr * g_delta / denom
        if norm == "l2":
            n = delta.flatten(1).norm(dim=1).view(-1, 1, 1)
            delta = torch.where(n > max_norm, delta * max_norm / n, delta)
        else:
            delta = delta.clamp(-max_norm, max_norm)
    for i, name in enumerate(names):
        expected = sum(step[i] for step in per_step) / K
        torch.testing.assert_close(got[name], expected, rtol=1e-4, atol=1e-7, msg=name)
    assert out.loss == pytest.approx(torch.stack(losses).mean().item(), rel=1e-5)
    assert out.clean_loss == pytest.approx(losses[0].item(), rel=1e-6)
    assert out.adv_loss == pytest.approx(losses[-1].item(), rel=1e-6)


# ------------------------------------------------------------------ epsilon 0 is clean training

ZERO = [
    ("fgsm", {"epsilon": 0.0}),
    ("fgsm", {"epsilon": 0.0, "norm": "linf", "clean_weight": 0.3}),
    ("pgd", {"epsilon": 0.0}),
    ("pgd", {"steps": 0}),
    ("freelb", {"steps": 0}),
    ("freelb", {"adv_lr": 0.0, "init_mag": 0.0}),
    ("smart", {"epsilon": 0.0, "perturbation_scale": "radius"}),
    ("smart", {"adv_weight": 0.0}),
    ("r3f", {"epsilon": 0.0}),
    ("random", {"sigma": 0.0}),
]


@pytest.mark.parametrize(("name", "params"), ZERO)
def test_zero_epsilon_is_exactly_clean(setup, name, params):
    model, inputs, labels = setup
    ref, ref_grads = run(model, "none", {}, inputs, labels)
    out, got = run(model, name, params, inputs, labels)
    assert torch.equal(out.loss, ref.loss) and torch.equal(out.clean_loss, ref.loss)
    for n, g in ref_grads.items():
        assert torch.equal(got[n], g), n


def test_freelb_zero_ascent_with_init_zero_runs_k_identical_clean_passes(setup):
    """Not short-circuited when adv_lr > 0 and init 0: step 1 is then the clean point."""
    model, inputs, labels = setup
    ref, _ = run(model, "none", {}, inputs, labels)
    out, _ = run(model, "freelb", {"init_mag": 0.0, "adv_lr": 0.1, "steps": 2}, inputs, labels)
    assert torch.equal(out.clean_loss, ref.loss)
    assert out.adv_loss > ref.loss


# ------------------------------------------------------------------ non-finite values are skipped


def nan_on_call(n: int):
    """An embed hook that injects one NaN into the embeddings from the n-th call on."""
    calls = {"count": 0}

    def hook(e):
        calls["count"] += 1
        if calls["count"] < n:
            return e
        poison = torch.zeros_like(e)
        poison[0, 0, 0] = float("nan")
        return e + poison

    return hook


SKIP = [(name, 1) for name in registry.names("regularizer")] + [
    ("fgsm", 2),
    ("pgd", 2),
    ("freelb", 2),
    ("freelb", 3),
    ("random", 2),
]


@pytest.mark.parametrize(("name", "call"), SKIP)
def test_nan_embeddings_are_skipped_and_weights_unchanged(setup, name, call):
    """call=1 poisons the first pass; call>1 a later pass, after gradients were accumulated."""
    model, inputs, labels = setup
    params = {"clean_weight": 1.0} if (name, call) == ("freelb", 3) else {}
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer.zero_grad()
    reg = build_regularizer(name, params, generator=torch.Generator().manual_seed(0))
    out = reg.step(make_batch(model, inputs, labels, embed_hook=nan_on_call(call)), backward)
    assert out.skipped
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    if not out.skipped:  # pragma: no cover - the caller's contract, as in the LightningModule
        optimizer.step()
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]) and torch.isfinite(p).all(), n


# ------------------------------------------------------------------ registry and configs


def test_registry_errors_name_the_valid_options():
    with pytest.raises(
        ValueError,
        match="unknown adversary 'pgdd'.*Did you mean 'pgd'.*fgsm, freelb, none, pgd, r3f, random, smart",
    ):
        build_regularizer("pgdd", {})
    with pytest.raises(
        ValueError, match="unknown parameter 'epsilom' for adversary 'pgd'. Did you mean 'epsilon'"
    ):
        build_regularizer("pgd", {"epsilom": 1.0})
    with pytest.raises(ValueError, match="norm must be one of l2, linf"):
        build_regularizer("fgsm", {"norm": "l3"})
    with pytest.raises(ValueError, match="steps must be an integer"):
        build_regularizer("pgd", {"steps": -1})
    with pytest.raises(ValueError, match="clean_weight \\+ adv_weight"):
        build_regularizer("pgd", {"clean_weight": 0.0, "adv_weight": 0.0})


def test_option_files_hold_only_what_differs_and_compose_to_the_dataclass_defaults():
    """The defaults live in the parameter dataclasses (registry/regularizers.py) only: an option
    file sets its name and what it changes; selecting it spells out every parameter."""
    from robust_transfer.config import compose

    files = {p.stem: p for p in CONFIGS.glob("*.yaml")}
    assert set(files) >= set(registry.names("regularizer"))
    for stem, path in files.items():
        cfg = OmegaConf.to_container(OmegaConf.load(path))
        name = cfg.pop("name")
        defaults = registry.defaults("regularizer", name)
        assert stem == name or cfg, f"{path.name} repeats {name}.yaml"
        assert {k: v for k, v in cfg.items() if defaults.get(k) == v} == {}, f"{path.name} repeats a default"
        OmegaConf.merge(OmegaConf.structured(registry.entry("regularizer", name).params), cfg)  # typed schema
        composed = compose([f"adversary={stem}"]).target.adversary
        assert dict(composed) == {"name": name, **defaults, **cfg}
        reg = build_regularizer(name, composed)
        assert dataclasses.asdict(reg.params) == {**defaults, **cfg}


# ------------------------------------------------------------------ huge budgets


def test_norms_and_projections_do_not_overflow():
    """A float32 L2 norm of entries ~1e20 overflows to inf; projecting by epsilon / inf gave a
    silent zero perturbation. The scaled norms give the true size and a projection onto the ball."""
    from robust_transfer.adversarial.base import direction, example_l2, project

    big = torch.full((2, 4, 8), 1e30)
    big[1] = 0.0
    assert torch.isinf(big.flatten(1).norm(dim=1)[0])  # what torch computes unscaled
    assert example_l2(big)[0].item() == pytest.approx(1e30 * 32**0.5, rel=1e-6)
    assert example_l2(big)[1].item() == 0.0
    projected = project(big, 1.0, "l2")
    assert projected[0].norm().item() == pytest.approx(1.0, rel=1e-6)
    assert torch.equal(projected[1], torch.zeros_like(projected[1]))
    assert direction(big, "l2")[0].norm().item() == pytest.approx(1.0, rel=1e-6)
    assert example_l2(torch.tensor([[float("inf"), 1.0]])).isnan().all()  # caught as non-finite


@pytest.mark.parametrize(
    ("name", "key"),
    [("pgd", "epsilon"), ("pgd", "alpha"), ("fgsm", "epsilon"), ("freelb", "adv_lr"), ("freelb", "max_norm"),
     ("smart", "noise_var"), ("r3f", "epsilon"), ("random", "sigma")],
)
def test_budgets_too_large_to_represent_are_rejected(name, key):
    with pytest.raises(ValueError, match=f"{key} = 1e\\+30 is too large to represent.*Use {key} <= 1.84e\\+19"):
        build_regularizer(name, {key: 1e30})
    with pytest.raises(ValueError, match=f"{key} must be a number >= 0"):
        build_regularizer(name, {key: float("nan")})
    build_regularizer(name, {key: 1e19})  # large but representable: accepted


def test_a_large_representable_budget_perturbs_or_skips_never_zero(setup):
    model, inputs, labels = setup
    record: list[torch.Tensor] = []
    out, _ = run(model, "pgd", {"epsilon": 1e18, "alpha": 1e17}, inputs, labels, record=record)
    with torch.no_grad():
        clean = model.encoder.get_input_embeddings()(inputs["input_ids"])
    final = record[-1] - clean
    assert out.skipped or final.abs().amax() > 1e15


# ------------------------------------------------------------------ attack restarts


def test_attack_restarts_keep_each_examples_strongest_perturbation(setup):
    model, inputs, labels = setup
    batch = make_batch(model, inputs, labels)
    eps, alpha, steps = 2.0, 0.5, 2
    singles = []
    gen = torch.Generator().manual_seed(5)
    for _ in range(3):  # the restarts one by one, drawing from the same generator in turn
        singles.append(embedding_pgd_attack(batch, eps, alpha, steps, generator=gen))
    best = embedding_pgd_attack(batch, eps, alpha, steps, restarts=3, generator=torch.Generator().manual_seed(5))
    check_ball(best, inputs["attention_mask"], eps, "l2")
    with torch.no_grad():
        def scored(delta):
            logits = batch.forward(batch.embed() + delta)
            return F.cross_entropy(logits, labels, reduction="none"), logits.argmax(-1) != labels

        loss, wrong = scored(best)
        for delta in singles:
            other_loss, other_wrong = scored(delta)
            assert (wrong | ~other_wrong).all()  # wrong under any restart -> wrong under the kept one
            assert ((loss >= other_loss - 1e-6) | (wrong & ~other_wrong) | (wrong & other_wrong)).all()
    with pytest.raises(ValueError, match="restarts must be an integer >= 1"):
        embedding_pgd_attack(batch, eps, alpha, steps, restarts=0)
    with pytest.raises(ValueError, match="restarts > 1 needs random_init"):
        embedding_pgd_attack(batch, eps, alpha, steps, restarts=2, random_init=False)
