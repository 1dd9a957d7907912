"""kill -9 at random moments: no checkpoint is ever corrupt, little work is lost, resume always works."""

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.io.checkpoint_files import load_checkpoint
from tests.helpers import make_domains

ROOT = Path(__file__).resolve().parents[1]
SAVE_EVERY = 3
TINY = ["--set", "load_size=36", "--set", "crop_size=32", "--set", "ngf=8", "--set", "ndf=8", "--set", "n_blocks=1",
        "--set", "n_layers_D=2", "--set", "log_every=1", "--set", f"save_every={SAVE_EVERY}", "--set", "val_fraction=0",
        "--set", "preview_every=5", "--set", "eval_every=1000", "--set", "keep_checkpoints=2", "--set", "netG=resnet"]


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.mark.slow
def test_sigkill_at_random_moments_never_corrupts_or_loses_more_than_a_save_interval(tmp_path):
    a, b = make_domains(tmp_path, n_a=6, n_b=6)
    run = tmp_path / "run"
    rng = random.Random(1234)
    last_ckpt_step = 0
    kills = 0
    for i in range(10):
        if i == 0:
            cmd = [sys.executable, "-m", "engine", "train", str(a), str(b), "--out", str(run), "--steps", "100000",
                   "--device", "cpu", *TINY]
        else:
            cmd = [sys.executable, "-m", "engine", "resume", str(run), "--device", "cpu"]
        out_path = tmp_path / f"out{i}.txt"
        with open(out_path, "w") as out:
            p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_env(), cwd=tmp_path)
            # Wait for training to start, then kill at a random moment (saves happen every 3 steps).
            deadline = time.time() + 120
            while time.time() < deadline and "step " not in out_path.read_text():
                if p.poll() is not None:
                    pytest.fail(out_path.read_text())
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 1.5))
            p.send_signal(signal.SIGKILL)
            p.wait()
            kills += 1
        printed = [int(m) for m in re.findall(r"^step (\d+)/", out_path.read_text(), re.M)]
        # Every checkpoint on disk loads.
        ckpts = sorted((run / "checkpoints").glob("*.pt"))
        assert ckpts
        steps = {c.name: load_checkpoint(c)["step"] for c in ckpts}
        latest = steps["latest.pt"]
        assert latest == max(steps.values())
        assert latest >= last_ckpt_step  # never goes backwards
        if printed:
            assert max(printed) - latest <= SAVE_EVERY  # at most the steps since the last save are lost
        last_ckpt_step = latest
    assert kills == 10 and last_ckpt_step > 0
    # A clean resume sweeps away the temp file of any save the kills interrupted.
    p = subprocess.run([sys.executable, "-m", "engine", "resume", str(run), "--steps", "1", "--device", "cpu"],
                       capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert not list((run / "checkpoints").glob(".*.tmp"))
