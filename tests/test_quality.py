"""Quality against ground truth: PSNR, the tasks' construction, the measurement loop and the CLI."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from engine.__main__ import main
from engine.config import RECIPE_FIELDS, RECIPES, Config, ConfigError, preset, with_recipe
from engine.metrics import GroundTruth, psnr
from engine.tools.quality import _time_to_reach, _value_at, compare_runs, comparison_grid, measure, plot_curves
from engine.tools.tasks import CELL, PHOTOS, crop_photo, dusk_transform, get_task, load_photo
from tests.helpers import tiny_config

# --- PSNR ---------------------------------------------------------------------------------------

def test_psnr_matches_hand_computed_values():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 12  # MSE = 144 / 48 = 3
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 3))
    assert psnr(a, a) == math.inf
    # Every value off by 1: MSE 1, PSNR = 20·log10(255) = 48.1308 dB.
    assert psnr(a, a + 1) == pytest.approx(48.130803608679102)
    # Tensors and arrays agree; peak is honoured (off by 0.1 at peak 1: 20 dB).
    assert psnr(torch.zeros(2, 3), torch.full((2, 3), 0.1), peak=1.0) == pytest.approx(20.0)
    with pytest.raises(ValueError, match="equal shapes"):
        psnr(np.zeros((2, 2)), np.zeros((2, 3)))


def test_ground_truth_scores_a_known_map_exactly():
    """With G = T exactly (a per-pixel affine map) PSNR(G(x), T(x)) is infinite; the identity baseline is hand-computed."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 128, size=(3, 8, 8, 3), dtype=np.uint8)
    tx = (x + 100).astype(np.uint8)  # T(x) = x + 100 grey levels, no overflow below 128
    gt = GroundTruth.from_arrays(x, tx)
    shift = 100 / 127.5
    G = torch.nn.Identity()
    G.forward = lambda t: t + shift  # noqa: E731 - exactly T on [-1, 1]
    F = torch.nn.Identity()
    F.forward = lambda t: t - shift  # noqa: E731 - exactly T⁻¹
    s = gt.score(G, F)
    assert s["psnr_AtoB"] == math.inf and s["psnr_BtoA"] == math.inf and s["psnr_cycle"] == math.inf
    assert s["psnr_identity"] == pytest.approx(20 * math.log10(255 / 100))
    with pytest.raises(ValueError, match="equal"):
        GroundTruth.from_arrays(x, tx[:2])


# --- tasks ----------------------------------------------------------------------------------------

def test_dusk_transform_is_per_pixel_and_changes_colour():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    out = dusk_transform(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    # Per pixel: a pixel's value does not depend on its neighbours or the array's shape.
    assert np.array_equal(dusk_transform(img[3:5, 7:9]), out[3:5, 7:9])
    # Hand-computed for white: clip(M·1 + o)^γ = (1.05→1, 0.80, 0.80)^(1.35, 1.5, 1.25).
    white = dusk_transform(np.full((1, 1, 3), 255, np.uint8))[0, 0]
    assert white.tolist() == [255, round(0.80**1.5 * 255), round(0.80**1.25 * 255)]
    assert dusk_transform(np.zeros((1, 1, 3), np.uint8))[0, 0].tolist() == [0, 0, round(0.12**1.25 * 255)]
    with pytest.raises(ValueError, match="uint8"):
        dusk_transform(img.astype(np.float32))


def _png(path):
    with Image.open(path) as im:
        return np.array(im.convert("RGB"))


def test_photo_task_is_unpaired_disjoint_and_transforms_b_only(tmp_path):
    pytest.importorskip("skimage")
    data = get_task("photo").build(tmp_path, load_size=40, crop_size=32, seed=3, n_train=12, n_test=5)
    manifest = json.loads((tmp_path / "task.json").read_text())
    cells = {k: {tuple(c) for c in v} for k, v in manifest["cells"].items()}
    # Every cell belongs to exactly one split, and the splits cover whole photos' cells.
    assert not (cells["A"] & cells["B"]) and not (cells["A"] & cells["test"]) and not (cells["B"] & cells["test"])
    assert len(cells["A"]) > 10 and len(cells["B"]) > 10 and len(cells["test"]) >= 4
    photos = {n: load_photo(n) for n in PHOTOS}
    for split, folder, transform in (("A", data.dir_a, None), ("B", data.dir_b, dusk_transform)):
        files = sorted(folder.glob("*.png"))
        assert len(files) == 12
        for f, (name, y, x, s) in zip(files, manifest["crops"][split]):
            # The crop lies inside one cell of its own split ...
            cell = (name, y // CELL * CELL, x // CELL * CELL)
            assert cell in cells[split] and y + s <= cell[1] + CELL and x + s <= cell[2] + CELL
            # ... and the file is that crop, with T applied in B only.
            crop = crop_photo(photos[name], (y, x, s), 40)
            assert np.array_equal(_png(f), transform(crop) if transform else crop)
    # Held-out pairs: x is a centre crop of a test-cell crop, and tx is exactly T(x).
    assert data.x.shape == (5, 32, 32, 3) and np.array_equal(data.tx, np.stack([dusk_transform(x) for x in data.x]))
    name, y, x, s = manifest["crops"]["test"][0]
    assert np.array_equal(data.x[0], crop_photo(photos[name], (y, x, s), 40)[4:36, 4:36])
    # Same seed, same task; another seed, other crops.
    again = get_task("photo").build(tmp_path / "again", load_size=40, crop_size=32, seed=3, n_train=12, n_test=5)
    assert np.array_equal(again.x, data.x)
    other = get_task("photo").build(tmp_path / "other", load_size=40, crop_size=32, seed=4, n_train=12, n_test=5)
    assert not np.array_equal(other.x, data.x)


def test_demo_task_holds_out_its_pairs(tmp_path):
    data = get_task("demo").build(tmp_path, load_size=36, crop_size=32, n_train=6, n_test=3)
    assert data.x.shape == (3, 32, 32, 3)
    assert len(list(data.dir_a.glob("*.png"))) == 6 and len(list(data.dir_b.glob("*.png"))) == 6
    # Held-out x are test images, none of which is a training image of A.
    train = [_png(p) for p in data.dir_a.glob("*.png")]
    assert not any(np.array_equal(t[2:34, 2:34], x) for t in train for x in data.x)
    assert np.array_equal(data.tx, np.stack([get_task("demo").transform(x) for x in data.x]))
    with pytest.raises(ValueError, match="unknown task"):
        get_task("horses")
    with pytest.raises(ValueError, match="crop_size"):
        get_task("demo").build(tmp_path, load_size=30, crop_size=32)


# --- recipes --------------------------------------------------------------------------------------

def test_recipes_set_only_method_fields_and_paper_is_the_published_recipe():
    assert set(RECIPES) == {"paper", "studio"}
    assert RECIPES["paper"] == {}
    assert set(RECIPES["studio"]) <= set(RECIPE_FIELDS) and RECIPES["studio"]
    quick = preset("cpu-quick")
    # cpu-quick uses the studio recipe; paper recipe at cpu-quick widths changes only recipe fields.
    assert all(quick.get(k) == v for k, v in RECIPES["studio"].items())
    as_paper = with_recipe(quick, "paper")
    assert all(as_paper.get(k) == Config().get(k) for k in RECIPE_FIELDS)
    assert (as_paper.model.ngf, as_paper.data.crop_size) == (quick.model.ngf, quick.data.crop_size)
    assert with_recipe(preset("paper"), "paper") == preset("paper")
    with pytest.raises(ConfigError, match="unknown recipe"):
        with_recipe(quick, "fast")


# --- measuring ------------------------------------------------------------------------------------

def _tiny_task(tmp_path):
    return get_task("demo").build(tmp_path / "task", load_size=36, crop_size=32, n_train=6, n_test=3)


def test_measure_scores_at_the_start_every_n_steps_and_at_the_end(tmp_path):
    data = _tiny_task(tmp_path)
    seen = []
    res = measure(tiny_config(ema_decay=0.9), data, steps=4, score_every_steps=2, on_point=seen.append, device="cpu")
    assert [p["step"] for p in res["points"]] == [0, 2, 4] and seen == res["points"]
    assert res["steps"] == 4 and res["identity_baseline"] == pytest.approx(psnr(data.x, data.tx))
    assert {"psnr_AtoB_raw", "psnr_BtoA", "psnr_cycle"} <= set(res["points"][-1])  # EMA: raw weights too
    assert res["images"]["gx"].shape == data.x.shape and res["images"]["gx"].dtype == np.uint8
    grid = comparison_grid(res["images"], "title")
    assert grid.width == 4 * (64 + 4) + 4
    with pytest.raises(ValueError, match="one budget"):
        measure(tiny_config(), data, minutes=1, steps=1)


def test_curve_comparison_interpolates_hand_made_curves(tmp_path):
    pts = lambda ys: [{"minutes": float(i), "step": 10 * i, "psnr_AtoB": y, "psnr_BtoA": y, "psnr_cycle": y}  # noqa: E731
                      for i, y in enumerate(ys)]
    paper, studio = pts([10, 12, 14, 15]), pts([10, 16, 18, 19])
    assert _time_to_reach(studio, 15.0) == pytest.approx(0.8333333)  # 10 → 16 over minute 0–1
    assert _time_to_reach(paper, 20.0) is None
    assert _value_at(studio, 2.5) == pytest.approx(18.5)
    lines = compare_runs([{"label": "paper", "task": "demo", "identity_baseline": 9.0, "steps_per_s": 1.0, "points": paper},
                          {"label": "studio", "task": "demo", "identity_baseline": 9.0, "steps_per_s": 1.0, "points": studio}])
    text = "\n".join(lines)
    assert "reaches paper's final 15.00 dB at 0.83 min (28% of its time)" in text and "lead at 3.00 min: +4.00 dB" in text
    out = plot_curves({"paper": [(p["minutes"], p["psnr_AtoB"]) for p in paper]}, 9.0, tmp_path / "c.png", title="t")
    with Image.open(out) as im:
        assert im.size == (760, 460)


def test_quality_cli_writes_curve_plot_and_grid(tmp_path, capsys):
    out = tmp_path / "q"
    args = ["quality", "--task", "demo", "--steps", "2", "--score-every-steps", "1", "--recipe", "paper", "--out", str(out),
            "--set", "load_size=36", "--set", "crop_size=32", "--set", "ngf=8", "--set", "ndf=8", "--set", "n_blocks=1",
            "--set", "n_layers_D=2", "--json"]
    assert main(args) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["recipe"] == "paper" and [p["step"] for p in res["points"]] == [0, 1, 2]
    assert res["config"]["model"]["upsample"] == "transpose"  # the paper recipe, at the --set widths
    assert json.loads((out / "curve.json").read_text())["points"] == res["points"]
    for name in ("curve.png", "grid.png"):
        with Image.open(out / name) as im:
            assert im.width > 100
    assert main(["quality", "--compare", str(out), str(out), "--out", str(tmp_path / "cmp.png")]) == 0
    assert "lead at" in capsys.readouterr().out
    # Usage errors: one line, exit 2, nothing written.
    assert main(["quality", "--task", "demo"]) == 2
    assert main(["quality", "--task", "nope", "--steps", "1"]) == 2
    assert main(["quality", "--task", "demo", "--minutes", "0"]) == 2
    assert main(["quality", "--compare", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "budget" in err and "unknown task" in err and "cannot read" in err
