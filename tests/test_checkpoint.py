"""Checkpoints: atomic, weights-only, clear about foreign files and architecture mismatches."""

import os

import pytest
import torch

from engine.config import Config
from engine.errors import CheckpointError
from engine.io.atomic import atomic_write_bytes
from engine.io.checkpoint import FORMAT_VERSION, CheckpointManager, check_architecture, load_checkpoint, save_checkpoint
from engine.models.networks import ResnetGenerator
from tests.evil import make_evil_checkpoint


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    ck = make_evil_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(CheckpointError, match="refused: it contains Python objects or code"):
        load_checkpoint(ck)
    assert not marker.exists()


def test_round_trip_and_format_marker(tmp_path):
    p = save_checkpoint(tmp_path / "c.pt", {"step": 7, "models": {"x": torch.arange(3)}, "config": "{}"})
    ck = load_checkpoint(p)
    assert ck["format_version"] == FORMAT_VERSION and ck["step"] == 7
    assert torch.equal(ck["models"]["x"], torch.arange(3))


@pytest.mark.parametrize("content,fragment", [
    (b"", "not a readable checkpoint"),
    (b"hello, not a checkpoint", "not a readable checkpoint"),
])
def test_garbage_files_get_a_message(tmp_path, content, fragment):
    p = tmp_path / "x.pt"
    p.write_bytes(content)
    with pytest.raises(CheckpointError, match=fragment):
        load_checkpoint(p)


def test_foreign_state_dict_and_future_version(tmp_path):
    torch.save({"model.1.weight": torch.zeros(1)}, tmp_path / "ref.pth")
    with pytest.raises(CheckpointError, match="not a CycleGAN Studio checkpoint"):
        load_checkpoint(tmp_path / "ref.pth")
    torch.save({"format": "cyclegan-studio", "format_version": 99}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="folder without a checkpoint"):
        load_checkpoint(tmp_path)


def test_architecture_mismatch_names_it():
    sd = ResnetGenerator(3, 3, ngf=8, n_blocks=6).state_dict()
    with pytest.raises(CheckpointError, match="expected 9 residual blocks, found 6"):
        check_architecture(Config().with_values(ngf=8, n_blocks=9), sd, "ck")
    with pytest.raises(CheckpointError, match="expected 16 generator width ngf, found 8"):
        check_architecture(Config().with_values(ngf=16, n_blocks=6), sd, "ck")
    check_architecture(Config().with_values(ngf=8, n_blocks=6), sd, "ck")


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")

    def boom(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(CheckpointError, match="No space left on device"):
        atomic_write_bytes(target, b"new" * 1000)
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temp file left behind


def test_atomic_files_get_the_mode_a_plain_open_would(tmp_path):
    """mkstemp's 0o600 must not leak into checkpoints, previews and exports the user shares."""
    import stat

    mask = os.umask(0)
    os.umask(mask)
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    target = atomic_write_bytes(tmp_path / "atomic", b"x")
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~mask


def test_read_only_folder_is_an_error_message(tmp_path, monkeypatch):
    import tempfile

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)  # root ignores chmod, so simulate the read-only folder
    with pytest.raises(CheckpointError, match="could not write .*: Permission denied"):
        save_checkpoint(tmp_path / "x.pt", {"step": 1})
    assert list(tmp_path.iterdir()) == []


def test_manager_keeps_last_k_plus_latest(tmp_path):
    m = CheckpointManager(tmp_path, keep=2)
    for step in (10, 20, 30, 40):
        m.save(step, {"step": step, "config": "{}"})
    assert [s for s, _ in m.numbered()] == [30, 40]
    assert load_checkpoint(m.latest)["step"] == 40
    assert load_checkpoint(tmp_path)["step"] == 40  # a run folder resolves to its latest
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest.pt", "step_0000030.pt",
                                                                              "step_0000040.pt"]
