"""The command line end to end, translation of any size, and one-line errors with exit code 2."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.__main__ import main
from engine.io.translate import TranslationModel, pad_to_multiple, translate_tensor
from engine.models.families import ColourGenerator
from engine.models.networks import ResnetGenerator
from engine.tools.cli_support import eval_line
from engine.wasserstein.monitor import AT_FLOOR, Reading
from tests.helpers import make_domains

TINY = ["--set", "load_size=36", "--set", "crop_size=32", "--set", "ngf=8", "--set", "ndf=8", "--set", "n_blocks=1",
        "--set", "n_layers_D=2", "--set", "log_every=2", "--set", "preview_every=2", "--set", "save_every=2",
        "--set", "netG=resnet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    assert main(["demo-data", str(tmp / "d"), "--n-train", "8", "--n-test", "4", "--size", "48"]) == 0
    assert main(["train", str(tmp / "d/trainA"), str(tmp / "d/trainB"), "--out", str(tmp / "r"), "--steps", "4",
                 "--device", "cpu", "--quiet", *TINY]) == 0
    return tmp


def test_train_writes_the_run_folder(trained):
    r = trained / "r"
    assert (r / "config.json").is_file() and (r / "checkpoints" / "latest.pt").is_file()
    assert sorted(p.name for p in (r / "previews").iterdir()) == ["step_0000002.png", "step_0000004.png"]
    rows = [json.loads(line) for line in (r / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if row["type"] == "progress"] == [2, 4]


def test_score_prints_psnr_and_identity_baseline(trained, capsys):
    assert main(["score", str(trained / "r"), str(trained / "d"), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert {"psnr_AtoB", "psnr_identity", "psnr_cycle", "psnr_BtoA"} <= set(scores)
    assert all(np.isfinite(v) for v in scores.values())


@pytest.mark.parametrize("mode,size", [("RGB", (37, 23)), ("L", (16, 50)), ("RGBA", (5, 3)), ("P", (64, 48))])
def test_translate_any_size_and_mode(trained, mode, size):
    src = trained / f"in_{mode}.png"
    Image.new(mode, size, color=100 if mode in ("L", "P") else (10, 200, 30, 128)[: len(mode)]).save(src)
    out = trained / "out"
    assert main(["translate", str(trained / "r"), str(src), "--out", str(out), "--direction", "BtoA"]) == 0
    with Image.open(out / f"in_{mode}_BtoA.png") as res:
        assert res.size == size and res.mode == "RGB"


def test_pad_and_crop_back_is_exact():
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)
    padded, (h, w) = pad_to_multiple(x, 4)
    assert padded.shape[-2:] == (8, 8) and (h, w) == (5, 7)
    assert torch.equal(padded[..., :5, :7], x)
    identity = torch.nn.Identity()
    assert torch.equal(translate_tensor(identity, x), x)
    tiny, _ = pad_to_multiple(torch.zeros(1, 3, 1, 2))
    assert tiny.shape[-2:] == (8, 8)


def test_translation_model_matches_the_generator(tmp_path):
    torch.manual_seed(0)
    g = ResnetGenerator(3, 3, ngf=8, n_blocks=1).eval()
    model = TranslationModel(g, None, None, "mem")
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 20, 3), dtype=np.uint8))
    out = np.asarray(model.translate(img, "AtoB"), dtype=np.float32)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    with torch.no_grad():
        ref = g(torch.nn.functional.pad(x, (0, 0, 0, 0), mode="reflect"))
    ref = ((ref[0].clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy()
    assert out.shape == (12, 20, 3) and np.array_equal(out, ref)
    assert model.describe_directions() == "A→B only"
    with pytest.raises(ValueError, match="no BtoA generator"):
        model.translate(img, "BtoA")


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True, cwd=cwd,
                          env={"PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("args,fragment", [
    (["train", "nope_a", "nope_b", "--out", "r"], "folder not found"),
    (["train", "A", "B", "--out", "r", "--set", "crop_size=7"], "crop_size=7"),
    (["train", "A", "B", "--out", "r", "--set", "colour=1"], "unknown setting 'colour'"),
    (["train", "A", "B", "--out", "r", "--steps", "0"], "expected a positive integer"),
    (["train", "A", "A", "--out", "r"], "same folder"),
    (["train", "A", "B"], "the following arguments are required: --out"),
    (["resume", "nowhere"], "does not exist"),
    (["translate", "missing.pt", "x.png", "--out", "o"], "does not exist"),
    (["fly"], "invalid choice"),
    (["train", "A", "B", "--out", "r", "--config", "bad.json"], "not valid JSON"),
])
def test_bad_arguments_get_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, fragment):
    make_domains(tmp_path, 2, 2)
    (tmp_path / "bad.json").write_text("{oops")
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2  # an exception would escape main() and fail the test
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert fragment in lines[0]


def test_a_real_process_prints_no_traceback(tmp_path):
    p = _run("train", "nope_a", "nope_b", "--out", "r", cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.startswith("error: ") and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def test_train_refuses_to_overwrite_a_run(trained):
    assert main(["train", str(trained / "d/trainA"), str(trained / "d/trainB"), "--out", str(trained / "r")]) == 2


def test_budget_and_plateau_flags_reach_the_run_config(tmp_path):
    """--minutes, --time-limit and --stop-on-plateau land in the config the run records."""
    assert main(["demo-data", str(tmp_path / "d"), "--n-train", "6", "--n-test", "2", "--size", "40"]) == 0
    assert main(["train", str(tmp_path / "d/trainA"), str(tmp_path / "d/trainB"), "--out", str(tmp_path / "r"),
                 "--minutes", "0.02", "--time-limit", "5", "--stop-on-plateau", "--device", "cpu", "--quiet",
                 *TINY]) == 0
    sched = json.loads((tmp_path / "r" / "config.json").read_text())["schedule"]
    assert (sched["minutes"], sched["time_limit"], sched["stop_on_plateau"]) == (0.02, 5.0, True)


def test_the_log_says_each_evaluation_in_the_monitors_words():
    """One line per held-out evaluation, by the rule the app's W plot shows (``Reading.standing``)."""
    far, near = Reading(0.55, 0.53, 0.57, 1.0, 1.0, 0.1, 0.0, 0.0, 0.15), Reading(0.14, 0.135, 0.145, 1.0, 1.0, 0.1,
                                                                                   0.0, 0.0, 0.15)
    row = {**far.metrics("AtoB"), **near.metrics("BtoA"), "psnr_AtoB": 21.234}
    assert eval_line(300, row) == (f"held-out at step 300: A→B 50 % of the way left · B→A {AT_FLOOR} · "
                                   "PSNR A→B 21.23 dB")
    # best.pt's steps, each direction's where they differ
    row.update({"w_mon_best_step": 300.0, "w_mon_best_step_AtoB": 200.0, "w_mon_best_step_BtoA": 300.0})
    assert eval_line(300, row).endswith("PSNR A→B 21.23 dB · best.pt: A→B of step 200, B→A of step 300")
    shaky = Reading(0.55, 0.53, 0.57, 3.0, 1.0, 0.1, 0.0, 0.0, 0.15).metrics("AtoB")
    assert "A→B 50 % of the way left (not trustworthy: critic slope 3.00" in eval_line(1, shaky)
    assert eval_line(1, {"cycle_A_val": 0.2}) == ""  # no monitor, no ground truth: nothing to say


def test_translate_names_how_each_image_went(tmp_path, capfd):
    """A colour map's large photo goes through its look-up table; the log says so, not "N tiles"."""
    model = TranslationModel(ColourGenerator().eval(), None, None, "test")
    path = model.save(tmp_path / "colour.safetensors")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (600, 500, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    assert main(["translate", str(path), str(tmp_path / "p.png"), "--out", str(tmp_path / "o")]) == 0
    assert "p.png: a checked 65³ LUT" in capfd.readouterr().err
