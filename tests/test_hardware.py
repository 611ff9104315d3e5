"""The bf16-on-CPU warning: said exactly when autocast would run emulated."""

from pathlib import Path

import pytest

from robust_transfer.hardware import cpu_has_native_bf16, precision_warnings


def test_emulated_bf16_on_cpu_is_named_with_its_fix():
    (line,) = precision_warnings("bf16-mixed", "cpu", native_bf16=False)
    assert "trainer.precision=bf16-mixed" in line
    assert "Use trainer.precision=32" in line


@pytest.mark.parametrize(
    ("precision", "accelerator", "native"),
    [
        ("bf16-mixed", "cpu", True),
        ("32-true", "cpu", False),
        ("16-mixed", "gpu", False),
        ("bf16-mixed", "gpu", False),
    ],
)
def test_no_warning_where_bf16_is_native_or_unused(precision, accelerator, native):
    assert precision_warnings(precision, accelerator, native_bf16=native) == []


def test_native_bf16_probe_agrees_with_the_cpu_flags():
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo on this system")
    flags = next(
        (line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), ""
    ).split()
    assert cpu_has_native_bf16() == ("avx512_bf16" in flags or "amx_tile" in flags)
