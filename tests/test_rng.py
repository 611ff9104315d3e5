"""RngState: every generator a regularizer may draw from is saved in the checkpoint and restored."""

import io
import random

import numpy as np
import pytest
import torch

from robust_transfer.callbacks import RngState

CUDA = torch.cuda.is_available()


def _draws() -> dict:
    out = {"torch": torch.rand(4), "numpy": np.random.rand(4), "python": [random.random() for _ in range(4)]}
    if CUDA:
        out["torch.cuda"] = [torch.rand(4, device=f"cuda:{d}").cpu() for d in range(torch.cuda.device_count())]
    return out


def _equal(a: dict, b: dict) -> bool:
    assert a.keys() == b.keys()
    return (torch.equal(a["torch"], b["torch"]) and np.array_equal(a["numpy"], b["numpy"])
            and a["python"] == b["python"]
            and all(torch.equal(x, y) for x, y in zip(a.get("torch.cuda", []), b.get("torch.cuda", []), strict=True)))


def _through_checkpoint(state: dict) -> dict:
    """What Lightning's resume reads back: torch.save, then torch.load(weights_only=True)."""
    buffer = io.BytesIO()
    torch.save({"callbacks": {"RngState": state}}, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)["callbacks"]["RngState"]


def test_the_state_holds_every_generator_kind():
    state = RngState().state_dict()
    assert {"torch", "torch.cuda", "numpy", "python"} <= state.keys()
    assert len(state["torch.cuda"]) == (torch.cuda.device_count() if CUDA else 0)


def test_draws_after_restore_equal_draws_after_save():
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    callback = RngState()
    state = _through_checkpoint(callback.state_dict())
    first = _draws()
    torch.manual_seed(2), np.random.seed(2), random.seed(2)  # move every generator elsewhere
    assert not _equal(_draws(), first)
    callback.load_state_dict(state)
    assert _equal(_draws(), first)


def test_a_checkpoint_with_cpu_state_only_still_loads():
    """The format written before the CUDA states: torch, python and numpy (as a list)."""
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    old = {"torch": torch.get_rng_state(), "python": random.getstate(),
           "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)]}
    old = _through_checkpoint(old)
    cpu = {k: v for k, v in _draws().items() if k != "torch.cuda"}
    cuda_before = [torch.cuda.get_rng_state(d) for d in range(torch.cuda.device_count())] if CUDA else []
    RngState().load_state_dict(old)
    cuda_after = [torch.cuda.get_rng_state(d) for d in range(torch.cuda.device_count())] if CUDA else []
    assert all(torch.equal(a, b) for a, b in zip(cuda_before, cuda_after, strict=True))  # left as they were
    again = {k: v for k, v in _draws().items() if k != "torch.cuda"}
    assert _equal(again, cpu)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device: the CUDA generators exist only there")
def test_cuda_generators_round_trip_on_every_device():
    callback = RngState()
    state = _through_checkpoint(callback.state_dict())
    assert len(state["torch.cuda"]) == torch.cuda.device_count()
    first = [torch.randn(8, device=f"cuda:{d}").cpu() for d in range(torch.cuda.device_count())]
    for d in range(torch.cuda.device_count()):
        torch.cuda.manual_seed_all(12345 + d)
    callback.load_state_dict(state)
    again = [torch.randn(8, device=f"cuda:{d}").cpu() for d in range(torch.cuda.device_count())]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def test_more_saved_cuda_states_than_devices_warns_and_restores_the_rest(caplog):
    state = RngState().state_dict()
    state["torch.cuda"] = [*state["torch.cuda"], torch.zeros(16, dtype=torch.uint8)]  # one device too many
    with caplog.at_level("WARNING"):
        RngState().load_state_dict(_through_checkpoint(state))
    assert "random state of" in caplog.text and "CUDA device" in caplog.text
