"""Test-wide settings: headless Qt, and which kind of CPU the bf16 path believes it runs on.

``--native-bf16 yes|no`` makes ``engine.devices.native_bf16`` answer that for the CPU in every test, so that
the whole suite can run the other path on either kind of machine: ``yes`` on a CPU without AVX512-BF16 (the
arithmetic is then emulated: the same numbers, slower), ``no`` on one with it. The default, ``machine``,
leaves the machine's own answer.
"""

import os

import pytest
import torch

from engine import devices

# GUI tests run headless; this must be set before Qt is imported anywhere.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_addoption(parser):
    parser.addoption("--native-bf16", choices=("machine", "yes", "no"), default="machine",
                     help="what engine.devices.native_bf16 answers for the CPU (default: the machine's own answer)")


def pytest_report_header(config):
    choice = config.getoption("--native-bf16")
    machine = devices.native_bf16("cpu")
    told = machine if choice == "machine" else choice == "yes"
    return f"native bf16 on this CPU: {'yes' if machine else 'no'}; the tests see: {'yes' if told else 'no'}"


@pytest.fixture(autouse=True)
def cpu_bf16_kind(request, monkeypatch):
    """Stand in for the other kind of CPU when ``--native-bf16`` asks for it."""
    choice = request.config.getoption("--native-bf16")
    if choice != "machine":
        machine = devices.native_bf16
        monkeypatch.setattr(devices, "native_bf16",
                            lambda d: choice == "yes" if torch.device(d).type == "cpu" else machine(d))
