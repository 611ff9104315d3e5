"""Settings that are valid everywhere but a trap on some machines: said once, before training.

bf16 autocast on a CPU is fast only where the CPU computes bf16 natively (AVX512_BF16 or AMX);
elsewhere PyTorch emulates it. Measured on the project's 2-core machines with multilingual-e5-small
(batch 16, one thread): 27 s a training step at `bf16-mixed` against 1.5 s at fp32 on an AVX2-only
EPYC, while an EPYC with AVX512_BF16 ran bf16 steps 1.45x faster than fp32. Nothing is changed
for the user (a fallback would change the numbers): the run says so and how to fix it.
"""

from __future__ import annotations

import torch


def cpu_has_native_bf16() -> bool:
    """AVX512_BF16 or AMX, as PyTorch's own CPU dispatch sees them (torch.cpu's probes are the only
    API that says this; they are private, so a missing probe counts as "not native")."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def precision_warnings(
    precision: str, accelerator: str, *, native_bf16: bool | None = None
) -> list[str]:
    """One sentence when bf16 autocast will run emulated on this CPU, else nothing."""
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    if not (str(precision).startswith("bf16") and on_cpu):
        return []
    if native_bf16 is None:
        native_bf16 = cpu_has_native_bf16()
    if native_bf16:
        return []
    return [
        f"trainer.precision={precision} on a CPU without native bf16 (no AVX512_BF16 or AMX; PyTorch "
        f"reports {torch.backends.cpu.get_cpu_capability()}): bf16 is emulated, about 18x slower than "
        "fp32 on our AVX2 machines. Use trainer.precision=32 on this machine."
    ]
