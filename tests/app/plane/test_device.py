"""device: TEXTCLS_DEVICE selection and GPU set-up.

No GPU exists on the test machine, so the GPU cases inject a fake list of physical devices
and a recording ``set_memory_growth`` (the only mocks here, standing in for hardware).
"""

from __future__ import annotations

import pytest

from app.errors import DeviceError
from app.plane.device import CPU, GPU, choose_device, configure_device

FAKE_GPUS = ["PhysicalDevice(name='/physical_device:GPU:0', device_type='GPU')"]


def test_auto_uses_gpu_when_present_else_cpu() -> None:
    assert choose_device("auto", FAKE_GPUS) is GPU
    assert choose_device("auto", []) is CPU


def test_cpu_is_honoured_even_with_a_gpu() -> None:
    assert choose_device("cpu", FAKE_GPUS) is CPU


def test_gpu_without_gpu_is_a_clear_error() -> None:
    with pytest.raises(DeviceError, match="TEXTCLS_DEVICE=gpu"):
        choose_device("gpu", [])


def test_gpu_turns_memory_growth_on_for_every_gpu() -> None:
    grown: list[tuple[object, bool]] = []
    gpus = FAKE_GPUS * 2
    device = configure_device("gpu", lambda: gpus, lambda g, on: grown.append((g, on)))
    assert device is GPU
    assert grown == [(g, True) for g in gpus]


def test_cpu_leaves_gpus_alone() -> None:
    grown: list[object] = []
    assert configure_device("cpu", lambda: FAKE_GPUS, lambda g, on: grown.append(g)) is CPU
    assert grown == []


def test_real_tensorflow_on_this_machine_is_cpu() -> None:
    assert configure_device("auto") is CPU
    with pytest.raises(DeviceError):
        configure_device("gpu")
