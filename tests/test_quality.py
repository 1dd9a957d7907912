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
from engine.tools.charts import comparison_grid, plot_curves
from engine.tools.quality import compare_runs, compare_suites, measure, suite_table
from engine.tools.quality_tables import time_to_reach, value_at
from engine.tools.tasks import PHOTOS, SIZE, SUITES, TASKS, get_task, load_photo, photo_windows, suite
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
    """With G = T exactly (a per-pixel affine map) PSNR(G(x), T(x)) is infinite; the identity baseline is
    hand-computed."""
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

def _png(path):
    with Image.open(path) as im:
        return np.array(im.convert("RGB"))


PER_PIXEL = ("dusk", "faded", "grey", "tone", "sepia", "falsecolor", "demo")
LOCAL = ("sketch", "sharpen", "blur", "edges", "cartoon")
WIDE = ("vignette", "bloom")  # a grade that follows the position in the frame; a glow that reaches far


def test_the_suite_has_every_kind_and_a_held_out_check_set():
    assert len(TASKS) >= 8 and set(PER_PIXEL + LOCAL + WIDE) == set(TASKS)
    assert {t.kind for t in TASKS.values()} == {"colour", "texture", "spatial", "large"}
    check = suite("check")
    assert len(check) >= 3 and {t.kind for t in check} == {"colour", "texture", "large"}
    assert set(SUITES["tuning"]).isdisjoint(SUITES["check"]) and set(SUITES["all"]) == set(TASKS)
    assert any(t.ill_posed for t in suite("tuning")) and any(t.ill_posed for t in check)
    with pytest.raises(ValueError, match="unknown suite"):
        suite("everything")


@pytest.mark.parametrize("name", PER_PIXEL)
def test_global_maps_are_per_pixel(name):
    img = np.random.default_rng(1).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    t = get_task(name).transform
    out = t(img)
    assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
    # A pixel's value depends on that pixel alone, not on its neighbours or the array's shape.
    assert np.array_equal(t(img[3:5, 7:9]), out[3:5, 7:9])
    with pytest.raises(ValueError, match="uint8"):
        t(img.astype(np.float32))


@pytest.mark.parametrize("name", LOCAL)
def test_local_maps_read_a_neighbourhood(name):
    img = np.full((32, 32, 3), 126, np.uint8)  # just under a cartoon posterisation step (126/255·4 = 1.98)
    t = get_task(name).transform
    out = t(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    changed = img.copy()
    changed[16, 16] = 255
    diff = np.abs(t(changed).astype(int) - out.astype(int)).sum(-1)
    ring = diff[12:21, 12:21].copy()
    ring[4, 4] = 0
    assert ring.any()  # neighbours of the changed pixel see it
    assert diff[0, 0] == 0 and diff[31, 31] == 0  # pixels far away do not


def test_maps_match_hand_computed_values():
    px = lambda *rgb: np.array([[rgb]], np.uint8)  # noqa: E731
    # dusk on white: clip(M·1 + o)^γ = (1.05→1, 0.80, 0.80)^(1.35, 1.5, 1.25).
    assert get_task("dusk").transform(px(255, 255, 255))[0, 0].tolist() == [255, round(0.80**1.5 * 255),
                                                                           round(0.80**1.25 * 255)]
    assert get_task("dusk").transform(px(0, 0, 0))[0, 0].tolist() == [0, 0, round(0.12**1.25 * 255)]
    # grey: ITU-R 601 luma in all three channels.
    assert (get_task("grey").transform(px(200, 100, 50))[0, 0].tolist()
            == [round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)] * 3)
    # sepia of white clips to (255, 255, 239): the blue row sums to 0.937.
    assert get_task("sepia").transform(px(255, 255, 255))[0, 0].tolist() == [255, 255, round(0.937 * 255)]
    # false colour rotates the channels (R ← B, G ← R, B ← G) and stretches about mid-grey by 1.3.
    out = get_task("falsecolor").transform(px(255, 0, 128))[0, 0].tolist()
    assert out == [round(((128 / 255 - 0.5) * 1.3 + 0.5) * 255), 255, 0]
    # A flat image has no edges: sharpening leaves it, the sketch of it is white.
    flat = np.full((24, 24, 3), 90, np.uint8)
    assert np.array_equal(get_task("sharpen").transform(flat), flat)
    assert (get_task("sketch").transform(flat) == 255).all()


def test_photo_task_is_unpaired_disjoint_and_transforms_b_only(tmp_path):
    pytest.importorskip("skimage")
    pytest.importorskip("sklearn")
    task = get_task("faded")
    data = task.build(tmp_path, seed=3, n_train=12)
    manifest = json.loads((tmp_path / "task.json").read_text())
    cells = {s: {n: np.array(m, bool) for n, m in per.items()} for s, per in manifest["cells"].items()}
    photos = {n: load_photo(n) for n in PHOTOS}
    # Every cell belongs to exactly one split.
    for name in PHOTOS:
        owners = sum(cells[s][name].astype(int) for s in ("A", "B", "test"))
        assert (owners == 1).all()
    for split, folder, transform in (("A", data.dir_a, None), ("B", data.dir_b, task.transform)):
        files = sorted(folder.glob("*.png"))
        assert len(files) == 12
        for f, (name, y, x) in zip(files, manifest["windows"][split]):
            # The window lies in cells of its own split only ...
            assert cells[split][name][y // SIZE:(y + SIZE - 1) // SIZE + 1, x // SIZE:(x + SIZE - 1) // SIZE + 1].all()
            # ... and the file is that window at the photo's own resolution, with T applied in B only.
            crop = photos[name][y:y + SIZE, x:x + SIZE]
            assert np.array_equal(_png(f), transform(crop) if transform else crop)
    # Held-out pairs: exactly the test cells, at full size, and tx is exactly T(x).
    assert data.x.shape[1:] == (SIZE, SIZE, 3) and len(data.x) == len(manifest["windows"]["test"]) >= 12
    assert np.array_equal(data.tx, np.stack([task.transform(x) for x in data.x]))
    name, y, x = manifest["windows"]["test"][0]
    assert cells["test"][name][y // SIZE, x // SIZE] and np.array_equal(data.x[0], photos[name][y:y + SIZE, x:x + SIZE])
    # Same seed, same task; another seed, other cells.
    again = task.build(tmp_path / "again", seed=3, n_train=12)
    assert np.array_equal(again.x, data.x)
    other = task.build(tmp_path / "other", seed=4, n_train=12)
    assert not np.array_equal(other.x[:5], data.x[:5])


def test_photo_windows_stay_inside_owned_cells():
    owned = {"p": np.array([[True, True], [False, True]])}
    wins = photo_windows(owned)
    assert ("p", 0, 0) in wins and ("p", 0, SIZE) in wins and ("p", SIZE, SIZE) in wins
    assert ("p", SIZE, 0) not in wins  # the bottom-left cell is someone else's
    assert all(y + SIZE <= 2 * SIZE and x + SIZE <= 2 * SIZE for _, y, x in wins)
    assert ("p", 0, SIZE // 2) in wins and ("p", SIZE // 2, 0) not in wins


def test_demo_task_holds_out_its_pairs(tmp_path):
    data = get_task("demo").build(tmp_path, n_train=6, n_test=3)
    assert data.x.shape == (3, SIZE, SIZE, 3)
    assert len(list(data.dir_a.glob("*.png"))) == 6 and len(list(data.dir_b.glob("*.png"))) == 6
    # Held-out x are test images, none of which is a training image of A.
    train = [_png(p) for p in data.dir_a.glob("*.png")]
    assert not any(np.array_equal(t, x) for t in train for x in data.x)
    assert np.array_equal(data.tx, np.stack([get_task("demo").transform(x) for x in data.x]))
    with pytest.raises(ValueError, match="unknown task"):
        get_task("horses")


# --- recipes --------------------------------------------------------------------------------------

def test_the_vignette_follows_the_position_and_the_bloom_reaches_far():
    flat = np.full((48, 48, 3), 150, np.uint8)
    vignetted = get_task("vignette").transform(flat).astype(int)
    assert (vignetted[24, 24] > vignetted[0, 0]).all()  # the same colour, darker towards the corners
    assert np.array_equal(vignetted[24, 24], vignetted[23, 24]) or abs(vignetted[24, 24] - vignetted[23, 24]).max() <= 1
    dark = np.full((64, 64, 3), 30, np.uint8)
    lit = dark.copy()
    lit[30:34, 30:34] = 255
    glow = np.abs(get_task("bloom").transform(lit).astype(int) - get_task("bloom").transform(dark).astype(int))
    assert glow[32, 20].sum() > 0  # 10 px from the highlight: further than a local filter reaches


def test_recipes_set_only_method_fields_and_paper_is_the_published_recipe():
    assert set(RECIPES) == {"paper", "studio", "auto"}
    assert RECIPES["paper"] == {}
    assert set(RECIPES["studio"]) <= set(RECIPE_FIELDS) and RECIPES["studio"]
    quick = preset("cpu-quick")
    # cpu-quick uses the auto recipe (studio's method, the family search); paper at its widths changes only
    # recipe fields.
    assert set(RECIPES["auto"]) <= set(RECIPE_FIELDS) and RECIPES["auto"]["netG"] == "auto"
    assert all(quick.get(k) == v for k, v in RECIPES["auto"].items())
    as_paper = with_recipe(quick, "paper")
    assert all(as_paper.get(k) == Config().get(k) for k in RECIPE_FIELDS)
    assert (as_paper.model.ngf, as_paper.data.crop_size) == (quick.model.ngf, quick.data.crop_size)
    assert with_recipe(preset("paper"), "paper") == Config()
    with pytest.raises(ConfigError, match="unknown recipe"):
        with_recipe(quick, "fast")


# --- measuring ------------------------------------------------------------------------------------

def _tiny_task(tmp_path):
    return get_task("demo").build(tmp_path / "task", n_train=6, n_test=3)


def test_measure_scores_at_the_start_every_n_steps_and_at_the_end(tmp_path):
    data = _tiny_task(tmp_path)
    seen = []
    res = measure(tiny_config(ema_decay=0.9), data, steps=4, score_every_steps=2, on_point=seen.append, device="cpu")
    assert [p["step"] for p in res["points"]] == [0, 2, 4] and seen == res["points"]
    assert res["steps"] == 4 and res["identity_baseline"] == pytest.approx(psnr(data.x, data.tx))
    assert {"psnr_AtoB_raw", "psnr_BtoA", "psnr_cycle", "moved"} <= set(res["points"][-1])  # EMA: raw weights too
    assert res["points"][0]["moved"] > 0.0  # the studio generator starts random, not as the identity
    # Held-out images are translated whole, at their full size, not at the training crop.
    assert res["images"]["gx"].shape == data.x.shape == (3, SIZE, SIZE, 3) and res["images"]["gx"].dtype == np.uint8
    grid = comparison_grid(res["images"], "title")
    assert grid.width == 4 * (2 * SIZE + 4) + 4
    with pytest.raises(ValueError, match="one budget"):
        measure(tiny_config(), data, minutes=1, steps=1)


def test_curve_comparison_interpolates_hand_made_curves(tmp_path):
    pts = lambda ys: [{"minutes": float(i), "step": 10 * i, "psnr_AtoB": y, "psnr_BtoA": y, "psnr_cycle": y}  # noqa: E731
                      for i, y in enumerate(ys)]
    paper, studio = pts([10, 12, 14, 15]), pts([10, 16, 18, 19])
    assert time_to_reach(studio, 15.0) == pytest.approx(0.8333333)  # 10 → 16 over minute 0–1
    assert time_to_reach(paper, 20.0) is None
    assert value_at(studio, 2.5) == pytest.approx(18.5)
    lines = compare_runs([{"label": "paper", "task": "demo", "identity_baseline": 9.0, "steps_per_s": 1.0,
                           "points": paper},
                          {"label": "studio", "task": "demo", "identity_baseline": 9.0, "steps_per_s": 1.0,
                           "points": studio}])
    text = "\n".join(lines)
    assert ("reaches paper's final 15.00 dB at 0.83 min (28% of its time)" in text
            and "lead at 3.00 min: +4.00 dB" in text)
    out = plot_curves({"paper": [(p["minutes"], p["psnr_AtoB"]) for p in paper]}, 9.0, tmp_path / "c.png", title="t")
    with Image.open(out) as im:
        assert im.size == (760, 460)


TINY = ["--set", "load_size=36", "--set", "crop_size=32", "--set", "ngf=8", "--set", "ndf=8", "--set", "n_blocks=1",
        "--set", "n_layers_D=2"]


def test_quality_cli_runs_tasks_and_writes_the_table_curves_and_grids(tmp_path, capsys):
    out = tmp_path / "q"
    args = ["quality", "--task", "demo", "--task", "grey", "--steps", "2", "--score-every-steps", "1",
            "--recipe", "paper", "--out", str(out), "--json", *TINY]
    assert main(args) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["label"] == "paper" and [t["task"] for t in res["tasks"]] == ["demo", "grey"]
    demo = res["tasks"][0]
    assert [p["step"] for p in demo["points"]] == [0, 1, 2] and demo["split"] == "check" and demo["kind"] == "large"
    assert demo["config"]["model"]["upsample"] == "transpose"  # the paper recipe, at the --set widths
    assert demo["config"]["schedule"]["max_steps"] == 2  # the schedule fitted into the budget
    summary = json.loads((out / "summary.json").read_text())
    assert [t["task"] for t in summary["tasks"]] == ["demo", "grey"]
    table = (out / "table.md").read_text()
    assert table.startswith("| task | kind | split | identity |") and "| demo | large | check |" in table
    for task in ("demo", "grey"):
        assert json.loads((out / task / "curve.json").read_text())["points"] == \
            next(t for t in res["tasks"] if t["task"] == task)["points"]
        for name in ("curve.png", "grid.png"):
            with Image.open(out / task / name) as im:
                assert im.width > 100
    # Two saved suites side by side (here the same one twice: a zero lead everywhere).
    assert main(["quality", "--compare", str(out), str(out), "--out", str(tmp_path / "cmp.md")]) == 0
    text = capsys.readouterr().out
    assert "| demo |" in text and "mean lead of paper over paper: +0.00 dB over 2 tasks" in text
    assert (tmp_path / "cmp.md").read_text().strip() == text.strip()
    # Usage errors: one line, exit 2, nothing written.
    assert main(["quality", "--task", "demo"]) == 2
    assert main(["quality", "--steps", "1"]) == 2
    assert main(["quality", "--task", "nope", "--steps", "1"]) == 2
    assert main(["quality", "--suite", "all", "--minutes", "0"]) == 2
    assert main(["quality", "--compare", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "budget" in err and "name the tasks" in err and "unknown task" in err and "cannot read" in err


def _result(task, finals, identity=10.0, moved=0.5, minutes=3.0):
    pts = [{"minutes": minutes * i / (len(finals) - 1), "step": 100 * i, "psnr_AtoB": v, "psnr_BtoA": v,
            "psnr_cycle": v, "moved": moved} for i, v in enumerate(finals)]
    return {"task": task, "kind": "colour", "split": "tuning", "identity_baseline": identity, "points": pts,
            "stuck": moved < 0.05, "steps": 300, "steps_per_s": 1.5, "budget": {"minutes": minutes, "steps": None}}


def test_suite_table_and_comparison_from_hand_made_results():
    a = [_result("dusk", [10, 14, 16, 18]), _result("sketch", [5, 5, 5, 5], identity=5.0, moved=0.0)]
    b = [_result("dusk", [10, 12, 13, 15]), _result("sketch", [5, 9, 11, 12], identity=5.0)]
    table = "\n".join(suite_table(a))
    assert "| 1 min | 2 min | 3 min | final |" in table
    assert "| dusk | colour | tuning | 10.00 | 14.00 | 16.00 | 18.00 | **18.00** | +8.00 | 0.50 | no |" in table
    assert "| sketch | colour | tuning | 5.00 | 5.00 | 5.00 | 5.00 | **5.00** | +0.00 | 0.00 | **yes** |" in table
    assert "stuck on 1 of 2 tasks" in table and "mean gain over the identity +4.00 dB" in table
    cmp = "\n".join(compare_suites([{"label": "new", "tasks": a}, {"label": "old", "tasks": b}]))
    assert ("| dusk | 10.00 | 18.00 | 15.00 | +3.00 |" in cmp
            and "| sketch | 5.00 | 5.00 (stuck) | 12.00 | -7.00 |" in cmp)
    assert "mean lead of new over old: -2.00 dB over 2 tasks; ahead (or within 0.5 dB) on 1 of 2" in cmp
