"""Checkpoints: atomic, weights-only, clear about foreign files and architecture mismatches."""

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from engine.__main__ import main
from engine.config import Config
from engine.errors import CheckpointError
from engine.io.atomic import atomic_write_bytes
from engine.io.checkpoint_files import (
    FORMAT_VERSION,
    CheckpointFolder,
    check_architecture,
    load_checkpoint,
    save_checkpoint,
)
from engine.io.reference import read_reference_state_dict
from engine.io.translate import TranslationModel
from engine.models.networks import ResnetGenerator
from tests.evil import make_evil_checkpoint, make_evil_reference


# --- malicious pickles: refused before anything in them runs, at every entry point -------------------------
def _evil_files(tmp_path: Path) -> SimpleNamespace:
    """A malicious checkpoint, a run folder around one, a malicious reference .pth, and the harmless inputs
    each entry point needs besides. Unpickling any of the malicious files would create ``marker``."""
    marker = tmp_path / "pwned"
    run = tmp_path / "evil-run"
    make_evil_checkpoint(run / "checkpoints" / "latest.pt", marker)
    image = tmp_path / "in.png"
    Image.new("RGB", (8, 8)).save(image)
    demo = tmp_path / "demo"
    for sub in ("testA", "testA_to_B"):
        (demo / sub).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(demo / sub / "0.png")
    good_reference = tmp_path / "good.pth"
    torch.save(ResnetGenerator(3, 3, 8, 6).state_dict(), good_reference)
    return SimpleNamespace(marker=marker, run=run, image=image, demo=demo, good_reference=good_reference,
                           checkpoint=make_evil_checkpoint(tmp_path / "evil.pt", marker),
                           reference=make_evil_reference(tmp_path / "evil.pth", marker),
                           out=tmp_path / "out")


# Python entry points: each raises a CheckpointError that says why.
_LOADERS = {
    "load_checkpoint": lambda f: load_checkpoint(f.checkpoint),
    "load_checkpoint of a run folder": lambda f: load_checkpoint(f.run),
    "TranslationModel.load of a checkpoint": lambda f: TranslationModel.load(f.checkpoint),
    "TranslationModel.load of a run folder": lambda f: TranslationModel.load(f.run),
    "TranslationModel.load of a reference .pth": lambda f: TranslationModel.load(f.reference),
    "TranslationModel.from_reference": lambda f: TranslationModel.from_reference(f.reference),
    "read_reference_state_dict": lambda f: read_reference_state_dict(f.reference),
}
# Command lines: each exits 2 with a one-line error.
_COMMANDS = {
    "translate a checkpoint": lambda f: ["translate", f.checkpoint, f.image, "--out", f.out],
    "translate a run folder": lambda f: ["translate", f.run, f.image, "--out", f.out],
    "translate a reference .pth": lambda f: ["translate", f.reference, f.image, "--out", f.out],
    "resume": lambda f: ["resume", f.run],
    "score": lambda f: ["score", f.checkpoint, f.demo],
    "export": lambda f: ["export", f.checkpoint, "--format", "safetensors", "--out", f.out / "x.safetensors"],
    "import-reference": lambda f: ["import-reference", f.reference, "--out", f.out / "m.safetensors"],
    "import-reference --other": lambda f: ["import-reference", f.good_reference, "--other", f.reference,
                                           "--out", f.out / "m.safetensors"],
}


@pytest.mark.parametrize("entry", [*_LOADERS, *_COMMANDS])
def test_malicious_pickles_are_refused_everywhere_and_never_run(tmp_path, capsys, entry):
    files = _evil_files(tmp_path)
    if entry in _LOADERS:
        with pytest.raises(CheckpointError, match="refused: it contains Python objects or code"):
            _LOADERS[entry](files)
    else:
        assert main([str(a) for a in _COMMANDS[entry](files)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and "refused" in err, err
        assert not [p for p in files.out.rglob("*") if p.is_file()]  # nothing written
    assert not files.marker.exists()


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
    m = CheckpointFolder(tmp_path, keep=2)
    for step in (10, 20, 30, 40):
        m.save(step, {"step": step, "config": "{}"})
    assert [s for s, _ in m.numbered()] == [30, 40]
    assert load_checkpoint(m.latest)["step"] == 40
    assert load_checkpoint(tmp_path)["step"] == 40  # a run folder resolves to its latest
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest.pt", "step_0000030.pt",
                                                                              "step_0000040.pt"]


def test_a_save_cut_short_never_leaves_latest_behind_a_numbered_checkpoint(tmp_path, monkeypatch):
    """latest.pt is written first and the numbered file linked from it: a kill between the two (here, the link
    and the copy failing) leaves latest.pt the newest checkpoint on disk, as a resume expects. (Written the other
    way round, a SIGKILL there once left latest.pt at step 198 beside step_0000201.pt.)"""
    m = CheckpointFolder(tmp_path, keep=3)
    m.save(3, {"step": 3, "config": "{}"})

    def cut(*_args, **_kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "link", cut)
    monkeypatch.setattr(Path, "write_bytes", cut)
    with pytest.raises(CheckpointError, match="step_0000006.pt"):
        m.save(6, {"step": 6, "config": "{}"})
    assert load_checkpoint(m.latest)["step"] == 6
    assert [s for s, _ in m.numbered()] == [3]
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))


def test_a_checkpoint_whose_critics_have_another_depth_is_refused_by_name():
    from engine.training.distributed import SINGLE
    from engine.training.state import TrainingState

    cfg = Config().with_values(netG="colour", ndf=8, n_layers_D=3, n_layers_D_map=1, ema_decay=0.0)
    ck = TrainingState(cfg, torch.device("cpu"), SINGLE).payload(epoch=0, total_steps=1, elapsed_s=0.0,
                                                                  data_paths=("a", "b"))
    deep = TrainingState(cfg.with_values(n_layers_D_map=0), torch.device("cpu"), SINGLE)
    with pytest.raises(CheckpointError, match="ndf=8 and depth 3, found ndf=8 and depth 1"):
        deep.restore(ck, "ck", torch.device("cpu"))
    TrainingState(cfg, torch.device("cpu"), SINGLE).restore(ck, "ck", torch.device("cpu"))
