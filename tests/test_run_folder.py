"""engine.io.run_folder: the layout in one place, and the lock that keeps a run to one writer."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine.__main__ import main
from engine.errors import RunLockedError
from engine.io.run_folder import RunFolder
from engine.io.translate import TranslationModel
from engine.training.reports import FinishedReport
from engine.training.trainer import Trainer
from tests.helpers import make_domains, tiny_config

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def lock_held_elsewhere(run: Path):
    """Another process holds the run's lock for the duration of the block, then is killed (no release)."""
    proc = hold_lock(run)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def hold_lock(run: Path) -> subprocess.Popen:
    """Another process that takes the run's lock and keeps it until killed."""
    code = textwrap.dedent(f"""
        import sys, time
        from engine.io.run_folder import RunFolder
        lock = RunFolder({str(run)!r}).lock()
        print("locked", flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_process_is_refused_with_the_folder_and_the_holder_named(tmp_path):
    run = tmp_path / "run"
    with lock_held_elsewhere(run) as proc:
        with pytest.raises(RunLockedError) as e:
            RunFolder(run).lock()
        assert str(run) in str(e.value) and f"process {proc.pid}" in str(e.value)
    # The OS released the lock of the killed process: no stale lock.
    with RunFolder(run).lock():
        pass


def test_the_lock_is_reentrant_within_a_process_and_released_at_the_last_release(tmp_path):
    run = tmp_path / "run"
    outer = RunFolder(run).lock()
    inner = RunFolder(run).lock()  # the CLI takes it before the data scan, the trainer again
    inner.release()
    code = f"from engine.io.run_folder import RunFolder\nRunFolder({str(run)!r}).lock()"
    probe = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert probe.returncode != 0 and "RunLockedError" in probe.stderr  # still held by outer
    outer.release()
    probe = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr


def test_cli_train_into_a_folder_in_use_is_a_one_line_error(tmp_path, capsys):
    a, b = make_domains(tmp_path)
    run = tmp_path / "run"
    with lock_held_elsewhere(run):
        rc = main(["train", str(a), str(b), "--out", str(run), "--steps", "2", "--set", "ngf=8", "--set",
                   "crop_size=32", "--set", "load_size=36"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "in use by process" in err and str(run) in err
    assert not (run / "metrics.jsonl").exists()  # nothing of the run was written


def test_a_trainer_refuses_a_run_folder_another_process_writes(tmp_path):
    a, b = make_domains(tmp_path)
    run = tmp_path / "run"
    with lock_held_elsewhere(run):
        t = Trainer.from_folders(tiny_config(max_steps=2), a, b, run_dir=run)
        with pytest.raises(RunLockedError):
            next(t.run())
    reps = list(t.run())  # the holder is gone: the same trainer now runs
    assert isinstance(reps[-1], FinishedReport) and reps[-1].reason == "completed"


def test_reading_a_run_needs_no_lock(tmp_path):
    a, b = make_domains(tmp_path)
    run = tmp_path / "run"
    list(Trainer.from_folders(tiny_config(max_steps=2), a, b, run_dir=run).run())
    with lock_held_elsewhere(run):
        info = RunFolder(run).read()
        assert info.has_checkpoint and info.last_step == 2 and info.data_paths == (str(a.resolve()), str(b.resolve()))
        assert TranslationModel.load(run).step == 2


def test_the_lock_file_says_who_holds_it(tmp_path):
    run = tmp_path / "run"
    with RunFolder(run).lock():
        info = json.loads((run / ".lock.json").read_text())
        assert info["pid"] == os.getpid() and info["since"] <= time.time()
    assert not (run / ".lock.json").exists()  # released: nobody holds it


def test_prepare_drops_metric_rows_after_the_resumed_checkpoint(tmp_path):
    rf = RunFolder(tmp_path / "run")
    rf.prepare(tiny_config(), {"total_steps": 10}, resume_step=0)
    for step in (1, 2, 3, 4):
        rf.append_metrics("progress", step, float(step), {"G_A": 1.0})
    with open(rf.metrics_file, "a") as f:
        f.write('{"type": "progress", "st')  # a torn last line from a kill
    (rf.checkpoints_dir / ".latest.123.tmp").write_bytes(b"half a checkpoint")
    rf.prepare(tiny_config(), {"total_steps": 10}, resume_step=2)
    assert [r["step"] for r in rf.metric_rows()] == [1, 2]
    assert not list(rf.checkpoints_dir.glob(".*.tmp"))
