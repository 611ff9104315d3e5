"""The regularizers' parameters, with the papers' defaults: the one place those defaults live.

`configs/adversary/*.yaml` hold only what an option changes; composing one fills in the rest
from these dataclasses. Each implementation (robust_transfer/adversarial/) documents the maths.
"""

from __future__ import annotations

from dataclasses import dataclass

from robust_transfer.registry.checks import (
    NORMS,
    check_budget,
    check_choice,
    check_nonnegative,
    check_steps,
    combine_weights,
)
from robust_transfer.registry.core import register

_AT = "robust_transfer.adversarial"


@register("regularizer", "none", f"{_AT}.none:NoRegularizer")
@dataclass
class NoneParams:
    """Clean training: the task loss only."""

    clean_weight: float = 1.0  # kept for a uniform schema: the loss is the clean loss whatever its value
    adv_weight: float = 0.0  # unused: there is no adversarial term

    def __post_init__(self):
        check_nonnegative(clean_weight=self.clean_weight, adv_weight=self.adv_weight)


@register("regularizer", "fgsm", f"{_AT}.fgsm:FGSM")
@dataclass
class FGSMParams:
    """FGM (l2, Miyato et al. 2017) / FGSM (linf, Goodfellow et al. 2015) in word-embedding space."""

    epsilon: float = 1.0  # perturbation size: per-example L2 norm (l2) or per-entry bound (linf)
    norm: str = "l2"  # l2: FGM (normalised gradient); linf: FGSM (sign of the gradient)
    clean_weight: float = 1.0  # weight of the clean task loss in the normalised mix
    adv_weight: float = 1.0  # weight of the adversarial task loss in the normalised mix

    def __post_init__(self):
        check_budget(epsilon=self.epsilon)
        check_choice("norm", self.norm, NORMS)
        combine_weights(self.clean_weight, self.adv_weight)


@register("regularizer", "pgd", f"{_AT}.pgd:PGD")
@dataclass
class PGDParams:
    """PGD-K in word-embedding space (Madry et al. 2018); K+2 forward passes."""

    epsilon: float = 1.0  # radius of the ball: per-example L2 norm (l2) or per-entry bound (linf)
    alpha: float = 0.3  # ascent step size (same units as epsilon)
    steps: int = 3  # number of ascent steps K; 0 trains clean
    norm: str = "l2"  # l2 (per example over real tokens) or linf (elementwise)
    random_init: bool = True  # start uniformly inside the ball (else at zero)
    first_step: str = "at_start"  # at_start: gradient at the random start (Madry); clean: the clean gradient
    clean_weight: float = 1.0  # weight of the clean task loss in the normalised mix
    adv_weight: float = 1.0  # weight of the adversarial task loss in the normalised mix

    def __post_init__(self):
        check_budget(epsilon=self.epsilon, alpha=self.alpha)
        check_steps("steps", self.steps)
        check_choice("norm", self.norm, NORMS)
        check_choice("first_step", self.first_step, ("at_start", "clean"))
        combine_weights(self.clean_weight, self.adv_weight)


@register("regularizer", "freelb", f"{_AT}.freelb:FreeLB")
@dataclass
class FreeLBParams:
    """FreeLB (Zhu et al. ICLR 2020); the reference flags of run_glue_freelb.py in brackets."""

    adv_lr: float = 0.1  # ascent step size (--adv-lr)
    steps: int = 3  # ascent steps K, each one forward+backward (--adv-steps); 0 trains clean
    init_mag: float = 0.1  # magnitude of the random initial perturbation (--adv-init-mag)
    max_norm: float = 0.0  # radius of the perturbation ball; 0 = unbounded (--adv-max-norm)
    norm: str = "l2"  # l2 or linf (--norm-type)
    clean_weight: float = 0.0  # weight of an extra clean loss term (0 = the reference objective)
    adv_weight: float = 1.0  # weight of the averaged adversarial loss
    dropout_masks: str = "shared"  # shared: one set of masks for the K passes (reference dp_masks); fresh: new per pass

    def __post_init__(self):
        check_budget(adv_lr=self.adv_lr, init_mag=self.init_mag, max_norm=self.max_norm)
        check_steps("steps", self.steps)
        check_choice("norm", self.norm, NORMS)
        check_choice("dropout_masks", self.dropout_masks, ("shared", "fresh"))
        combine_weights(self.clean_weight, self.adv_weight)


@register("regularizer", "smart", f"{_AT}.smart:SMART")
@dataclass
class SMARTParams:
    """SMART (Jiang et al. ACL 2020) as mt-dnn computes it; the paper's reading is
    perturbation_scale=radius, inner_loss=symmetric_kl."""

    epsilon: float = 1e-6  # unit: stabiliser of the normalisation (mt-dnn --adv_epsilon); radius: ball radius
    step_size: float = 1e-3  # ascent step size eta (paper: 1e-3)
    noise_var: float = 1e-5  # std of the initial Gaussian noise sigma (paper and mt-dnn: 1e-5)
    steps: int = 1  # ascent steps T_x (paper and mt-dnn: 1); 0 = noise only
    norm: str = "linf"  # norm of the normalisation (and ball): linf (mt-dnn default) or l2
    norm_level: str = "token"  # over H per token (mt-dnn default) or over (T, H) per example (sentence)
    perturbation_scale: str = "unit"  # unit: rescale delta to unit norm (mt-dnn); radius: project on the epsilon ball (paper)
    inner_loss: str = "stable_kl"  # ascent objective: stable_kl (mt-dnn) or symmetric_kl (paper)
    clean_weight: float = 1.0  # scale of the task loss (1 = the paper)
    adv_weight: float = 1.0  # lambda_s, the weight of the symmetric-KL smoothness term (mt-dnn --adv_alpha)
    bregman_mu: float = 0.0  # mu, the weight of the Bregman proximal point term (paper: 1); 0 = off (mt-dnn)
    bregman_beta: float = 0.99  # beta, the momentum of the Bregman teacher (paper: 0.99)

    def __post_init__(self):
        check_budget(epsilon=self.epsilon, step_size=self.step_size, noise_var=self.noise_var)
        check_nonnegative(clean_weight=self.clean_weight, adv_weight=self.adv_weight, bregman_mu=self.bregman_mu)
        check_steps("steps", self.steps)
        check_choice("norm", self.norm, ("linf", "l2"))
        check_choice("norm_level", self.norm_level, ("token", "sentence"))
        check_choice("perturbation_scale", self.perturbation_scale, ("unit", "radius"))
        check_choice("inner_loss", self.inner_loss, ("stable_kl", "symmetric_kl"))
        if not (isinstance(self.bregman_beta, int | float) and 0 <= self.bregman_beta < 1):
            raise ValueError(f"bregman_beta must be a number in [0, 1); got {self.bregman_beta!r}")


@register("regularizer", "r3f", f"{_AT}.r3f:R3F")
@dataclass
class R3FParams:
    """R3F (Aghajanyan et al. 2020); fairseq's sentence_prediction_r3f flags in brackets."""

    epsilon: float = 1e-5  # noise scale: half-width (uniform) or std (normal) (fairseq --eps)
    noise: str = "uniform"  # uniform or normal (fairseq --noise-type)
    clean_weight: float = 1.0  # scale of the task loss (1 = the paper)
    adv_weight: float = 1.0  # lambda, the weight of the symmetric KL (fairseq --r3f-lambda)

    def __post_init__(self):
        check_budget(epsilon=self.epsilon)
        check_nonnegative(clean_weight=self.clean_weight, adv_weight=self.adv_weight)
        check_choice("noise", self.noise, ("uniform", "normal"))


@register("regularizer", "random", f"{_AT}.random_noise:RandomNoise")
@dataclass
class RandomNoiseParams:
    """Randomized smoothing by random embedding noise (Huang et al. EMNLP 2021)."""

    sigma: float = 0.01  # noise scale per embedding entry: std (normal) or half-width (uniform)
    noise: str = "normal"  # normal (Gaussian smoothing) or uniform
    clean_weight: float = 1.0  # weight of the clean task loss in the normalised mix
    adv_weight: float = 1.0  # weight of the noisy task loss in the normalised mix

    def __post_init__(self):
        check_budget(sigma=self.sigma)
        check_choice("noise", self.noise, ("normal", "uniform"))
        combine_weights(self.clean_weight, self.adv_weight)
