"""Shared test helpers: tiny configs and tiny generated image folders."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from engine.config import Config, preset


def tiny_config(**overrides) -> Config:
    """The ResNet family at ngf 8, 32-px crops, one residual block: a step takes milliseconds on a CPU.

    In fp32 (amp off) on every CPU: with ``auto`` a CPU with native bf16 would train in bf16, and tests of
    the fp32 mathematics would compare bf16 rounding. The bf16 tests ask for ``amp="on"`` themselves.

    A colour or local map starts untouched (``map_order="rgb"``): reading the order from the folders takes seconds
    per trainer, and ``tests/test_channel_order.py``, which tests it, asks for ``auto``."""
    base = dict(load_size=36, crop_size=32, ngf=8, ndf=8, n_blocks=1, n_layers_D=2, batch_size=1,
                n_epochs=1, n_epochs_decay=1, log_every=1, preview_every=2, eval_every=2, save_every=4,
                val_fraction=0.0, val_min=0, pool_size=4, cache_mb=64, device="cpu", amp="off", netG="resnet",
                eval_share=1.0,  # evaluations at exactly every eval_every steps (none put off for their cost)
                map_order="rgb")
    base.update(overrides)
    return preset("cpu-quick").with_values(base)


def make_folder(path: Path, n: int, size: int = 40, seed: int = 0, tint=(1.0, 1.0, 1.0)) -> Path:
    """n smooth random RGB PNGs; ``tint`` scales the channels so two domains differ visibly."""
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        f = rng.uniform(1, 4, size=3)
        ph = rng.uniform(0, 6.28, size=3)
        img = np.stack([0.5 + 0.5 * np.sin(f[c] * 6.28 * (xx + yy * (c + 1) / 3) + ph[c]) for c in range(3)], -1)
        img = np.clip(img * np.array(tint), 0, 1)
        Image.fromarray((img * 255).astype(np.uint8)).save(path / f"img_{i:03d}.png")
    return path


def make_domains(tmp_path: Path, n_a: int = 6, n_b: int = 5) -> tuple[Path, Path]:
    return (make_folder(tmp_path / "A", n_a, seed=1, tint=(1.0, 0.6, 0.3)),
            make_folder(tmp_path / "B", n_b, seed=2, tint=(0.3, 0.6, 1.0)))


def run_process_tree(cmd: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)``, in a session of its own, so that a
    timeout kills what it started too: a launcher's workers (torchrun) would otherwise go on using the CPU for the
    rest of the test session."""
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                          **kw) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
